"""Shared fixtures: an isolated LAB_HOME, a real PostgreSQL server, moto's S3 server, one in-process Ray and one
local multi-node cluster for the session, the `lab` command (a subprocess, or in-process for bad input), the
TF-Agents multiprocessing set-up."""
from __future__ import annotations

import contextlib
import glob
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# every `lab` a test starts runs in its own process: a lab server (and its warm Ray) per test's LAB_HOME would
# outlive the test; tests/cli/test_server.py turns the server on for its own tests
os.environ["LAB_NO_SERVER"] = "1"


def pytest_configure(config):
    # TF-Agents' ParallelPyEnvironment needs its multiprocessing context (docs/stack.md)
    try:
        from tf_agents.system.default import multiprocessing_core
    except ImportError:
        return
    if not multiprocessing_core.initialized():
        multiprocessing_core.enable_interactive_mode()


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch):
    """Every test gets its own LAB_HOME (registry, experiments) unless it asks otherwise."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.delenv("LAB_REGISTRY_URL", raising=False)
    monkeypatch.delenv("LAB_STORAGE", raising=False)
    monkeypatch.delenv("LAB_RAY_ADDRESS", raising=False)
    return home


def lab(*args: str, env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `lab` console script in a subprocess."""
    command = [str(Path(sys.executable).parent / "lab"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)


def lab_in_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`lab.cli.main(args)` in this process, for commands that end before any Ray or TensorFlow work (bad
    input, listings): its exit code and output as `lab()` returns them, the environment and the SIGHUP
    handler it may set restored afterwards."""
    import signal

    from lab.cli import main

    saved_env, saved_hup = dict(os.environ), signal.getsignal(signal.SIGHUP)
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGHUP, saved_hup)
    return subprocess.CompletedProcess(["lab", *args], code, out.getvalue(), err.getvalue())


# ------------------------------------------------------------------ one in-process Ray for the session
def _ray_up() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def stop_ray() -> None:
    """Shut down this process's Ray (the shared one included): for tests that need a Ray of their own."""
    if _ray_up():
        sys.modules["ray"].shutdown()


@pytest.fixture(scope="session")
def _shared_ray_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ray-home")
    yield home
    stop_ray()


@pytest.fixture
def ray_shared(_shared_ray_home):
    """A local Ray in this process, started by the first test that asks and kept for the session (as Ray's own
    `ray_start_regular_shared`); its workers have a LAB_HOME of their own. A test that shut it down (to start
    a Ray of its own) leaves it to be started again by the next one that asks."""
    if not _ray_up():
        from lab.infra.connect import connect

        saved = os.environ.get("LAB_HOME")
        os.environ["LAB_HOME"] = str(_shared_ray_home)
        try:
            connect(None, num_cpus=2)
        finally:
            if saved is None:
                os.environ.pop("LAB_HOME")
            else:
                os.environ["LAB_HOME"] = saved
    yield


# ------------------------------------------------------------------ PostgreSQL
def _pg_bin() -> Path | None:
    """The folder with initdb, pg_ctl and pg_isready: Debian's versioned folder first, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, started with the system's initdb/pg_ctl.

    Skipped when PostgreSQL is not installed, unless LAB_REQUIRE_POSTGRES=1 (set by .ci/run): then it fails.
    """
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("LAB_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    run_as: list[str] = []
    data_root = Path(tempfile.mkdtemp(prefix="lab-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root: use the postgres system user
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data_root, "postgres")
    data, port = data_root / "data", _free_port()
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "lab", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data_root / "log"), "-w", "start",
         "-o", f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"],
        check=True, capture_output=True,
    )
    try:
        base = f"postgresql://lab@127.0.0.1:{port}"
        for _ in range(50):
            if subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        psql = str(bindir / "psql") if (bindir / "psql").exists() else "psql"
        subprocess.run([psql, f"{base}/postgres", "-c", "CREATE DATABASE lab_test"], check=True, capture_output=True)
        yield f"{base}/lab_test"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data_root, ignore_errors=True)


def env_steps_to_the_end(workload, most: int = 10) -> list[int]:
    """step() until the workload says done (at most `most` steps), then close it: each step's env step count."""
    try:
        results = [workload.step()]
        while not results[-1]["done"]:
            results.append(workload.step())
            assert len(results) < most
    finally:
        workload.close()
    return [r["charts/env_steps"] for r in results]


def trained_workload(name: str, params: dict, steps: int = 2):
    """A module-scoped fixture: workload `name` made from `params` (seed 1) after `steps` steps, and each
    step's metrics: `trained = trained_workload("dqn", TINY)` in a test module."""

    @pytest.fixture(scope="module")
    def trained(tmp_path_factory):
        from lab.workload.testing import make

        workload = make(name, {**params, "seed": 1}, trial_dir=str(tmp_path_factory.mktemp(name)))
        results = [workload.step() for _ in range(steps)]
        yield workload, results
        workload.close()

    return trained


def clean_postgres(url: str) -> str:
    """The PostgreSQL database emptied: every table dropped, so each test starts from nothing."""
    import sqlalchemy as sa

    from lab.registry import normalize_url

    with sa.create_engine(normalize_url(url)).begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    return url


# ------------------------------------------------------------------ S3 (moto's server)
BUCKET = "lab-bucket"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 with one bucket; yields the environment that points at it, and a client."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "lab-test-key",
           "AWS_SECRET_ACCESS_KEY": "lab-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=BUCKET)
    try:
        yield env, client
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    env, client = s3_server
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env, client


# ------------------------------------------------------------------ local multi-node clusters
CLUSTER_SCRIPT = ROOT / "cluster" / "local_cluster.sh"


@contextlib.contextmanager
def local_cluster_of(workers: int, cpus: int, env: dict | None = None):
    """cluster/local_cluster.sh on free ports, its nodes started with `env` added: yields (ray address,
    dashboard URL, env for the script)."""
    env = {**os.environ, **(env or {}), "RAY": str(Path(sys.executable).parent / "ray"), "RAY_PORT": str(_free_port()),
           "DASHBOARD_PORT": str(_free_port())}
    env["CLUSTER_DIR"] = f"/tmp/lab-test-cluster-{env['RAY_PORT']}"
    started = subprocess.run([str(CLUSTER_SCRIPT), "start", str(workers), str(cpus)], capture_output=True,
                             text=True, env=env, timeout=240)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield started.stdout.strip().splitlines()[-1], f"http://127.0.0.1:{env['DASHBOARD_PORT']}", env
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop"], capture_output=True, env=env, timeout=120)
        leftover = subprocess.run([str(CLUSTER_SCRIPT), "pids"], capture_output=True, text=True, env=env).stdout.split()
        assert not leftover, f"local_cluster.sh stop left processes behind: {leftover}"


class _SharedCluster:
    """A head and one worker node of one CPU, started on first use, stopped after the last test that used it
    (pytest_runtest_teardown below), so that it does not idle beside the tests that follow."""

    def __init__(self):
        self.stack: contextlib.ExitStack | None = None
        self.address = self.dashboard = ""

    def get(self) -> _SharedCluster:
        if self.stack is None:
            stack = contextlib.ExitStack()
            self.address, self.dashboard, _env = stack.enter_context(local_cluster_of(1, 1))
            self.stack = stack
        return self

    def close(self) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            stack.close()


_shared_cluster = _SharedCluster()


@pytest.fixture
def shared_cluster():
    """The session's local two-node cluster (for the tests that only run on it; a test that kills a node
    starts a cluster of its own)."""
    return _shared_cluster.get()


def pytest_runtest_teardown(item, nextitem):
    if _shared_cluster.stack is not None and (nextitem is None or "shared_cluster" not in nextitem.fixturenames):
        _shared_cluster.close()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reads the groups
def pytest_collection_modifyitems(items):
    """The tests of the shared cluster run one after the other (where the first of them is), so that it is
    started once. Under pytest-xdist (`make test`: `-n 3 --dist loadgroup`) a module's tests that share a
    module-scoped fixture (trained agents, a server) stay on one worker, so that it is made once, and the
    multi-node cluster tests run one after another; the other tests go to whichever worker is free."""
    users = [item for item in items if "shared_cluster" in item.fixturenames]
    if users:
        first = items.index(users[0])
        rest = [item for item in items if "shared_cluster" not in item.fixturenames]
        items[:] = rest[:first] + users + rest[first:]
    groups = {item.nodeid: _worker_group(item) for item in items}
    for item in items:
        if groups[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))


@pytest.hookimpl(trylast=True)  # after pytest-xdist's worker has put each group into its tests' node ids
def pytest_collection_finish(session):
    """Fail the grouped tests where `--dist loadgroup` cannot group (a pytest whose node ids pytest-xdist no
    longer rewrites, pytest-xdist#1386): the groups would be silently ignored, and each worker would build
    the same module-scoped fixtures (trained agents, servers) again."""
    if session.config.getoption("loadgroup", default=False):
        _ungrouped.update(item.nodeid for item in session.items if item.get_closest_marker("xdist_group")
                          and "@" not in item.nodeid.rsplit("]", 1)[-1])


_ungrouped: set[str] = set()


def pytest_runtest_setup(item):
    if item.nodeid in _ungrouped:
        pytest.fail(f"--dist loadgroup did not group this test under pytest {pytest.__version__} and this "
                    "pytest-xdist (pytest-xdist#1386): install the versions of requirements.lock", pytrace=False)


def _worker_group(item) -> str | None:
    """The pytest-xdist group of a test: tests/cluster/'s (one multi-node cluster at a time: several at once
    on 2 cores starve each other's nodes; even the multi-host harness beside one local cluster got a live
    local worker node declared dead), its module's when it uses a module-scoped fixture of its module,
    else none."""
    if "shared_cluster" in item.fixturenames or Path(str(item.path)).parent.name == "cluster":
        return "clusters"
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info else ()):
        if any(definition.scope == "module" for definition in definitions):
            return item.module.__name__
    return None


# ------------------------------------------------------------------ hostile parts (registry and storage tests)
class Planted:
    """A pickle that runs `touch MARKER` when loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Listener:
    """A TCP listener on 127.0.0.1 that records whatever arrives (an S3 endpoint a row might name)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 500 no\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

"""A warm local Ray instance: `lab up`, `lab down`, `lab status`.

`lab up` starts a keeper process (its own session) that runs `ray start --head --block` on 127.0.0.1
with token authentication (a token of its own, in $LAB_HOME/ray/auth_token), no dashboard unless asked,
and the lab's worker environment in the raylet's environment. Ray workers import TensorFlow, TF-Agents
and the lab's trainable before they accept work (Ray's `preload_python_modules`), and the keeper keeps
a pool of such idle workers, not bound to any job (the raylet's PrestartWorkers call), refilled while no
trial runs: a `lab run` that connects gets a worker whose imports are done.

The instance is recorded in $LAB_HOME/ray/instance.json (address, keeper pid and its start time, user,
temp folder); `lab down` stops exactly the processes of the keeper's session. A record whose keeper is
gone, or that another user wrote, is never used: runs then start Ray themselves. The record is trusted only
as a regular file of this user's with mode 0600, naming this LAB_HOME's token, a loopback address and a
`lab-ray-*` folder right inside the temp folder (each path resolved before it is used or deleted).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import settings
from lab.errors import ClusterError, LabError
from lab.infra.local_ray import LOCAL_ENV

# Imported by every worker of a warm instance before it accepts work (failures are only logged by Ray)
PRELOAD = ("lab.infra.preload",)
POOL_CHECK_S = 1.0
MARKS_ENV = "LAB_WARM_MARKS"  # lab.infra.preload marks there each worker whose imports are done
READY_TIMEOUT_S = 120.0
WORKERS_ENV = "LAB_WARM_WORKERS"  # idle warm workers kept when `lab up --workers` does not say (default: one per CPU)


@dataclass
class Instance:
    """One warm instance as recorded in $LAB_HOME/ray/instance.json."""

    address: str
    pid: int  # the keeper: leader of the session every process of the instance belongs to
    pid_started: int  # its start time in clock ticks (/proc/PID/stat), against pid reuse
    uid: int
    user: str
    temp_dir: str
    token_path: str
    num_cpus: int
    pool: int
    dashboard: str = ""
    started_at: float = 0.0
    worker_env: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.pid_started

    def ours(self) -> bool:
        return self.uid == os.getuid()

    def client_env(self) -> dict[str, str]:
        """What a driver needs (before `import ray`) to join this instance."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}


# ------------------------------------------------------------------ the record
class UntrustedRecord(LabError):
    """The instance record is not one this user's lab wrote: nothing it names is used or deleted."""


def ray_dir() -> Path:
    return settings.lab_home() / "ray"


def record_path() -> Path:
    return ray_dir() / "instance.json"


def recorded() -> Instance | None:
    """The recorded instance (alive or not), None if there is no readable record; UntrustedRecord when the
    file is not this user's alone (owner, mode 0600) or names a token, address or folder the lab never would."""
    path = record_path()
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise UntrustedRecord(f"{path} is not a file of yours with mode 0600 (owner uid {info.st_uid}, mode "
                                  f"{oct(info.st_mode & 0o777)}): not used; remove it if you did not write it")
        instance = Instance(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    problem = _record_problem(instance)
    if problem:
        raise UntrustedRecord(f"{path} {problem}: not used; remove it if you did not write it")
    return instance


def _record_problem(instance: Instance) -> str:
    """What in a record the lab would not have written ('' when nothing)."""
    if not isinstance(instance.token_path, str) or \
            os.path.realpath(instance.token_path) != os.path.realpath(ray_dir() / "auth_token"):
        return "names a token file other than this LAB_HOME's"
    if not isinstance(instance.address, str) or not instance.address.startswith("127.0.0.1:"):
        return "names an address that is not 127.0.0.1"
    if not isinstance(instance.temp_dir, str) or own_temp_dir(instance.temp_dir) is None:
        return "names a temp folder that is not a lab-ray-* folder of yours in the temp folder"
    return ""


def own_temp_dir(temp_dir: str) -> Path | None:
    """`temp_dir` resolved, when it is a folder `lab up` makes: `lab-ray-*` right inside the temp folder,
    owned by this user, not a symbolic link; else None."""
    if not temp_dir:
        return None
    resolved = Path(os.path.realpath(temp_dir))
    if resolved.parent != Path(os.path.realpath(tempfile.gettempdir())) or not resolved.name.startswith("lab-ray-"):
        return None
    try:
        info = resolved.lstat()
    except FileNotFoundError:
        return resolved  # already gone: nothing to delete
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    return resolved


def _write_record(instance: Instance) -> None:
    path = record_path()
    tmp = settings.private_file(path.with_suffix(".tmp"), json.dumps(asdict(instance), indent=2))
    os.replace(tmp, path)


def usable(note=print, wait: float = 0.0) -> Instance | None:
    """The warm instance a run should join: recorded, alive, started by this user; else None. One still
    starting is waited for up to `wait` seconds (until its head answers), else passed over.

    A record of a dead instance is removed; one of another user, or untrusted, is left alone. Either way
    `note` gets one line.
    """
    try:
        instance = recorded()
    except UntrustedRecord as exc:
        note(f"lab: note: {exc}; starting Ray locally", file=sys.stderr)
        return None
    if instance is None:
        return None
    if not instance.ours():
        note(f"lab: note: the warm Ray instance recorded in {record_path()} belongs to user "
             f"{instance.user} (uid {instance.uid}); starting Ray locally", file=sys.stderr)
        return None
    if not instance.alive():
        note(f"lab: note: the warm Ray instance recorded in {record_path()} is no longer running "
             f"(record removed); starting Ray locally", file=sys.stderr)
        _forget(instance)
        return None
    deadline = time.monotonic() + wait
    while not (ray_dir() / "ready").exists():  # its pool is still starting
        if (ray_dir() / "head").exists() and wait:
            break  # the head answers: a run joins it, its first trial takes the first worker warmed up
        if time.monotonic() > deadline or not instance.alive():
            return None
        time.sleep(0.05)
    return instance


def _forget(instance: Instance | None) -> None:
    """Remove the record (and the temp folder); Ray processes a dead keeper left behind are stopped."""
    if instance is not None and instance.ours() and instance.pid and not instance.alive():
        _reap(instance)
    for name in ("instance.json", "ready", "head"):
        try:
            (ray_dir() / name).unlink()
        except FileNotFoundError:
            pass
    temp_dir = own_temp_dir(instance.temp_dir) if instance is not None else None
    if temp_dir is not None:
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


# ------------------------------------------------------------------ up / down / status
def check_none_up() -> None:
    """LabError when this LAB_HOME has a live instance (or another user's); a dead one's record is removed."""
    existing = recorded()
    if existing is not None:
        if not existing.ours():
            raise LabError(f"a warm Ray instance recorded in {record_path()} belongs to user {existing.user}; "
                           "use another LAB_HOME")
        if existing.alive():
            raise LabError(f"a warm Ray instance is already up at {existing.address} (pid {existing.pid}): "
                           "`lab down` stops it")
        _forget(existing)


def up(num_cpus: int | None = None, pool: int | None = None, dashboard: bool = False,
       timeout: float = READY_TIMEOUT_S) -> Instance:
    """Start the warm instance and wait until it is ready (its pool started); LabError if one is up."""
    instance, keeper = start(num_cpus, pool, dashboard)
    folder = ray_dir()
    deadline = time.monotonic() + timeout
    while not (folder / "ready").exists():
        if keeper.poll() is not None or time.monotonic() > deadline:
            _stop_session(instance)
            _forget(instance)
            raise ClusterError(f"the warm Ray instance did not start: {_last_line(folder / 'keeper.log')}")
        time.sleep(0.2)
    return instance


def default_pool(num_cpus: int) -> int:
    """Idle warm workers to keep: LAB_WARM_WORKERS, else one per CPU. Each holds ~0.9 GB (TensorFlow imported) and is
    refilled after every run, so 0 suits a machine short of memory or runs that need no TensorFlow."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return num_cpus
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 1024:
        raise LabError(f"{WORKERS_ENV} must be a whole number of workers from 0 to 1024, got {raw[:40]!r}")
    return int(raw)


def start(num_cpus: int | None = None, pool: int | None = None,
          dashboard: bool = False) -> tuple[Instance, subprocess.Popen]:
    """Start the warm instance's keeper and record it, without waiting (`up` waits; the lab server lets its
    first run wait in `usable`); LabError if one is up."""
    check_none_up()
    num_cpus = num_cpus or os.cpu_count() or 1
    pool = default_pool(num_cpus) if pool is None else pool
    folder = settings.private_dir(ray_dir())
    token_path = settings.private_file(folder / "auth_token", secrets.token_hex(32))
    # sockets live in the temp folder: its path must stay short (a Unix socket path has ~107 bytes)
    temp_dir = tempfile.mkdtemp(prefix="lab-ray-")
    port = _free_port()
    dashboard_port = _free_port() if dashboard else 0
    instance = Instance(
        address=f"127.0.0.1:{port}", pid=0, pid_started=0, uid=os.getuid(), user=_user(), temp_dir=temp_dir,
        token_path=str(token_path), num_cpus=num_cpus, pool=pool,
        dashboard=f"http://127.0.0.1:{dashboard_port}" if dashboard else "", started_at=time.time(),
        worker_env=settings.worker_env(),
    )
    log = open(settings.private_file(folder / "keeper.log", ""), "wb")
    environment = {name: value for name, value in os.environ.items() if name != "RAY_AUTH_TOKEN"}  # would win
    keeper = subprocess.Popen(
        [sys.executable, "-m", "lab.infra.warm", json.dumps(asdict(instance))],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**environment, **instance.worker_env, **instance.client_env(), "RAY_USAGE_STATS_ENABLED": "0",
             MARKS_ENV: str(Path(temp_dir) / "warm"),
             **LOCAL_ENV},  # Ray turns --node-ip-address=127.0.0.1 back into the machine's address without it
    )
    log.close()
    instance.pid, instance.pid_started = keeper.pid, _start_ticks(keeper.pid)
    _write_record(instance)
    return instance, keeper


def down(timeout: float = 30.0) -> Instance:
    """Stop the recorded instance (only its own processes); LabError if none is up."""
    instance = recorded()
    if instance is None:
        raise LabError("no warm Ray instance is up (`lab up` starts one)")
    if not instance.ours():
        raise LabError(f"the warm Ray instance recorded in {record_path()} belongs to user {instance.user}; "
                       "not stopping it")
    if not instance.alive():
        _forget(instance)
        raise LabError("the warm Ray instance recorded here was no longer running; removed its record")
    _stop_session(instance, timeout)
    _forget(instance)
    return instance


def describe() -> str:
    """One line (two when up): the state of this LAB_HOME's warm instance."""
    try:
        instance = recorded()
    except UntrustedRecord as exc:
        return str(exc)
    if instance is None:
        return "no warm Ray instance (`lab up` starts one)"
    if not instance.ours():
        return f"a warm Ray instance recorded in {record_path()} belongs to user {instance.user}; not used"
    if not instance.alive():
        return f"the warm Ray instance recorded in {record_path()} is not running (stale record; `lab up` replaces it)"
    if not (ray_dir() / "ready").exists():
        return f"a warm Ray instance is starting at {instance.address} (pid {instance.pid})"
    idle = len(_idle_workers(instance.pid, instance.temp_dir))
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(instance.started_at))
    text = (f"warm Ray instance up at {instance.address} since {since} (pid {instance.pid}): "
            f"{instance.num_cpus} CPUs, {idle}/{instance.pool} warm workers idle")
    return text + (f", dashboard {instance.dashboard}" if instance.dashboard else "")


def wait_warm(timeout: float = 120.0) -> bool:
    """Wait until the pool of the usable instance is full (benchmarks: a run that starts warm)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instance = usable(note=lambda *a, **k: None)
        if instance and len(_idle_workers(instance.pid, instance.temp_dir)) >= instance.pool:
            return True
        time.sleep(0.5)
    return False


# ------------------------------------------------------------------ Ray's start settings
def head_command(instance: Instance) -> list[str]:
    """`ray start` of the warm head: loopback, token auth (from the environment), no dashboard unless asked."""
    # the first run's driver would make the raylet start num_cpus more workers (importing TensorFlow, beside
    # the trials): the pool is already there. Without a pool (--workers 0) no worker waits idle, so preloading
    # would only make each trial's fresh worker import TensorFlow, a scikit-learn trial's too (~2.5 CPU-s)
    system_config = {"prestart_worker_first_driver": False}
    if instance.pool:
        system_config["preload_python_modules"] = list(PRELOAD)
    command = [
        # this interpreter, not the `ray` script (its shebang may name another environment's Python)
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--port={instance.address.rsplit(':', 1)[1]}", "--node-ip-address=127.0.0.1",
        f"--num-cpus={instance.num_cpus}", f"--temp-dir={instance.temp_dir}", "--disable-usage-stats",
        f"--system-config={json.dumps(system_config)}", f"--ray-client-server-port={_free_port()}",
    ]
    if instance.dashboard:
        command += ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={instance.dashboard.rsplit(':', 1)[1]}"]
    else:
        command += ["--include-dashboard=false", "--dashboard-host=127.0.0.1"]
    return command


# ------------------------------------------------------------------ the keeper (python -m lab.infra.warm RECORD)
def _keep(instance: Instance) -> int:
    """Run the head, then keep the pool of idle warm workers full until SIGTERM / SIGHUP."""
    head = subprocess.Popen(head_command(instance), stdin=subprocess.DEVNULL)
    stopping = False

    def stop(signum, frame):  # noqa: ARG001 - signal handler
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    signal.signal(signal.SIGINT, stop)
    stub = None
    ready = ray_dir() / "ready"
    runtime_env = trainable_runtime_env()
    while not stopping and head.poll() is None:
        if stub is None:
            stub = _raylet_stub(instance.address)
            if stub is None:
                time.sleep(0.1)
                continue
            settings.private_file(ray_dir() / "head")  # runs may join now (lab.infra.warm.usable)
        pool, running = _pool_workers(os.getpid(), instance.temp_dir)
        # refill only while no trial runs: a worker importing TensorFlow competes with training for the CPUs
        # (refilling while a CPU was free of trials made a 1-CPU Keras trial, whose TensorFlow uses every core,
        # 1.2-1.6x slower per epoch); runs started one after another may then meet cold workers
        if len(pool) < instance.pool and not running:
            _prestart(stub, instance.pool - len(pool), runtime_env)
            time.sleep(2.0)
        if not ready.exists() and sum(warm for _, warm in pool) >= instance.pool:
            settings.private_file(ready)
        time.sleep(POOL_CHECK_S)
    if head.poll() is None:
        head.terminate()  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            head.kill()
    return 0


def _raylet_stub(address: str):
    """A gRPC stub of the head's raylet (token auth from the environment), None while it is not up."""
    try:
        from ray._private.grpc_utils import init_grpc_channel
        from ray._raylet import GcsClient
        from ray.core.generated import node_manager_pb2_grpc

        nodes = GcsClient(address=address).get_all_node_info(timeout=5)
        info = next(iter(nodes.values()))
        channel = init_grpc_channel(f"{info.node_manager_address}:{info.node_manager_port}")
        return node_manager_pb2_grpc.NodeManagerServiceStub(channel)
    except Exception:  # noqa: BLE001 - GCS or raylet not up yet
        return None


def trainable_runtime_env() -> dict:
    """The runtime env Tune gives every trainable actor, as a run of the lab would get it (Tune adds
    PL_DISABLE_FORK and copies a few variables from the driver): a pool worker must have the same, or
    the raylet starts a new worker for the trial."""
    from ray.tune.execution import class_cache

    env_vars = dict(class_cache.DEFAULT_ENV_VARS)
    env_vars.update({k: os.environ[k] for k in class_cache.ENV_VARS_TO_PROPAGATE if k in os.environ})
    return {"env_vars": env_vars}


def _prestart(stub, count: int, runtime_env: dict) -> None:
    """Ask the raylet for `count` idle Python workers bound to no job, with Tune's trainable runtime env."""
    from ray._private.utils import get_runtime_env_info
    from ray.core.generated import common_pb2, node_manager_pb2
    from ray.runtime_env import RuntimeEnv

    try:
        info = get_runtime_env_info(RuntimeEnv(**runtime_env), is_job_runtime_env=False, serialize=False)
        stub.PrestartWorkers(node_manager_pb2.PrestartWorkersRequest(
            language=common_pb2.PYTHON, num_workers=count, keep_alive_duration_secs=24 * 3600,
            runtime_env_info=info), timeout=10)
    except Exception as exc:  # noqa: BLE001 - logged; the next round retries
        print(f"prestart failed: {exc}", flush=True)


# ------------------------------------------------------------------ processes
def _pool_workers(sid: int, temp_dir: str) -> tuple[list[tuple[int, bool]], int]:
    """The idle pool workers of session `sid` as (pid, warm: its imports are done), and how many trials run."""
    marks = Path(temp_dir) / "warm"
    pool, running = [], 0
    for pid, cmdline in _session_processes(sid):
        idle = cmdline.startswith("ray::IDLE")
        starting = "default_worker.py" in cmdline and "python" in cmdline.split(" ", 1)[0]
        if idle or starting:
            if _pool_env(pid):
                pool.append((pid, idle and (marks / str(pid)).exists()))
        elif cmdline.startswith("ray::") and not cmdline.startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent")):
            running += 1
    return pool, running


def _pool_env(pid: int) -> bool:
    """A worker started with Tune's trainable env (PL_DISABLE_FORK=1), not a plain one."""
    try:
        return b"PL_DISABLE_FORK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _idle_workers(sid: int, temp_dir: str) -> list[int]:
    """Pool workers ready to take a trial (idle, imports done)."""
    return [pid for pid, warm in _pool_workers(sid, temp_dir)[0] if warm]


def _session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of this user's live (not zombie) processes whose session id is `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) != sid or fields[0] in ("Z", "X") or os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(entry), cmdline.strip()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _reap(instance: Instance) -> None:
    """SIGKILL what is left of a dead keeper's instance: its session's processes naming its temp folder
    (gcs, raylet, `ray start`) or titled by Ray (agents, workers)."""
    for pid, cmdline in _session_processes(instance.pid):
        if (instance.temp_dir and instance.temp_dir in cmdline) or cmdline.startswith("ray::"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _start_ticks(pid: int) -> int:
    """A process's start time (clock ticks since boot), 0 when it does not exist or is a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return 0 if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, ValueError, IndexError):
        return 0


def _stop_session(instance: Instance, timeout: float = 30.0) -> None:
    """SIGTERM the keeper (it stops its head), then SIGKILL whatever of its session is left."""
    if instance.pid and instance.alive():
        os.kill(instance.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (instance.alive() or _session_processes(instance.pid)):
        time.sleep(0.2)
    for pid, _ in _session_processes(instance.pid) if instance.pid else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------ helpers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid())


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1].strip() if lines else "no output"


if __name__ == "__main__":
    sys.exit(_keep(Instance(**json.loads(sys.argv[1]))))

"""The lab server (lab/server/): started on first use, reused, replaced when stale or of other code; the run's
process takes the client's terminal, signals and exit code; faults of the client, the server and the socket."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lab.registry import Registry
from tests import plugins

LAB = str(Path(sys.executable).parent / "lab")
SWEEP = """
name: served
workload: sleepy
params: {seconds: %s}
search:
  x: {uniform: [0.0, 1.0]}
metric: score
num_samples: %d
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


@pytest.fixture(scope="module")
def served_home(tmp_path_factory):
    """One LAB_HOME for the module: its server (and the warm Ray it starts) is started once."""
    home = tmp_path_factory.mktemp("served") / "lab-home"
    yield home
    env = {k: v for k, v in os.environ.items() if k != "LAB_NO_SERVER"}
    subprocess.run([LAB, "down"], env={**env, "LAB_HOME": str(home)}, capture_output=True, timeout=120)


@pytest.fixture(autouse=True)
def lab_home(served_home, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_HOME", str(served_home))
    monkeypatch.delenv("LAB_NO_SERVER", raising=False)
    for name in ("LAB_REGISTRY_URL", "LAB_STORAGE", "LAB_RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    # no idle workers that import TensorFlow for `sleepy` trials: the pool is tested where it is the subject
    # (tests/run/test_warm.py, and the README test through the server)
    monkeypatch.setenv("LAB_WARM_WORKERS", "0")
    monkeypatch.setenv("PYTHONPATH", plugins.pythonpath())  # the `sleepy` workload
    monkeypatch.chdir(tmp_path)
    return served_home


def _spec(tmp_path: Path, seconds: float = 0.1, trials: int = 1) -> str:
    path = tmp_path / f"sweep-{trials}-{seconds}.yaml"
    path.write_text(SWEEP % (seconds, trials))
    return str(path)


def _lab(*args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def _server(home: Path) -> dict:
    return json.loads((home / "server" / "server.json").read_text())


def _runs_of(server_pid: int) -> list[psutil.Process]:
    """The run processes the server forked (its other child is the warm Ray's keeper)."""
    try:
        return [p for p in psutil.Process(server_pid).children() if "lab.server" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _wait(predicate, timeout: float = 120, what: str = "the expected state"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never reached {what}")


def _latest(registry: Registry) -> dict | None:
    try:
        return registry.experiments(limit=1)[0]
    except Exception:  # noqa: BLE001 - the registry is being created
        return None


@pytest.mark.slow
def test_the_first_run_starts_the_server_and_the_next_reuses_it(tmp_path, lab_home):
    spec = _spec(tmp_path)
    first = _lab("run", spec)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "experiment 1 (served): completed, 1 trials, 0 errors" in first.stdout
    server = _server(lab_home)
    assert psutil.pid_exists(server["pid"])
    assert oct((lab_home / "server" / "sock").stat().st_mode & 0o777) == "0o600"
    assert oct((lab_home / "server" / "cookie").stat().st_mode & 0o777) == "0o600"
    second = _lab("run", spec)
    assert second.returncode == 0 and "experiment 2 (served): completed" in second.stdout, second.stderr
    assert _server(lab_home)["pid"] == server["pid"]  # the same server
    local = _lab("run", spec, "--no-server")  # the same output in this process
    assert local.returncode == 0 and "experiment 3 (served): completed" in local.stdout
    status = _lab("status")
    assert f"lab server: running (pid {server['pid']})" in status.stdout


@pytest.mark.slow
def test_bad_input_through_the_server_is_one_line_and_exit_2(tmp_path):
    missing = _lab("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and missing.stderr.strip() == f"lab: error: spec file not found: {tmp_path / 'nope.yaml'}"
    unknown = _lab("run", _spec(tmp_path), "--no-such-option")
    assert unknown.returncode == 2 and "unrecognized arguments: --no-such-option" in unknown.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr


@pytest.mark.slow
def test_ctrl_c_in_the_client_stops_the_run_and_resume_finishes_it(tmp_path, lab_home):
    registry = Registry()
    client = subprocess.Popen([LAB, "run", _spec(tmp_path, 0.5, 12)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    experiment = _wait(lambda: (e := _latest(registry)) and e["name"] == "served" and e["status"] == "running"
                       and any(t["status"] == "TERMINATED" for t in registry.trials(e["id"])) and e, what="a trial done")
    client.send_signal(signal.SIGINT)
    output, _ = client.communicate(timeout=120)
    assert client.returncode == 1, output[-2000:]  # as in one process: not completed
    assert f"continue it with: lab resume {experiment['id']}" in output
    assert registry.experiment(experiment["id"])["status"] == "interrupted"
    resumed = _lab("resume", str(experiment["id"]))
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert registry.experiment(experiment["id"])["status"] == "completed"
    assert len(registry.trials(experiment["id"])) == 12


@pytest.mark.slow
def test_a_killed_client_leaves_its_run_interrupted_and_no_run_process_behind(tmp_path, lab_home):
    registry = Registry()
    client = subprocess.Popen([LAB, "run", _spec(tmp_path, 0.5, 12)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    experiment = _wait(lambda: (e := _latest(registry)) and e["status"] == "running"
                       and registry.trials(e["id"]) and e, what="a running trial")
    server = _server(lab_home)["pid"]
    assert len(_runs_of(server)) == 1
    client.kill()  # SIGKILL: no handler runs in the client; the run's process sees its connection end
    client.wait()
    _wait(lambda: registry.experiment(experiment["id"])["status"] == "interrupted", what="the run interrupted")
    _wait(lambda: not _runs_of(server), what="the run's process gone")


@pytest.mark.slow
def test_a_killed_server_lets_its_run_finish_and_the_next_run_starts_a_new_one(tmp_path, lab_home):
    registry = Registry()
    client = subprocess.Popen([LAB, "run", _spec(tmp_path, 0.3, 6)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    experiment = _wait(lambda: (e := _latest(registry)) and e["status"] == "running" and e, what="a running run")
    server = _server(lab_home)["pid"]
    os.kill(server, signal.SIGKILL)
    output, _ = client.communicate(timeout=300)
    assert client.returncode == 0, output[-2000:]
    assert registry.experiment(experiment["id"])["status"] == "completed"
    again = _lab("run", _spec(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert _server(lab_home)["pid"] != server


@pytest.mark.slow
def test_a_server_of_other_code_is_replaced(tmp_path, lab_home):
    """`python3` instead of `python`: another interpreter path, so another fingerprint (as another version or
    other files would give); the client makes it step aside and starts one of its own code."""
    subprocess.run([LAB, "down"], capture_output=True, timeout=120)
    other = subprocess.Popen([str(Path(sys.executable).parent / "python3"), "-P", "-m", "lab.server"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: (lab_home / "server" / "server.json").exists() and _server(lab_home)["pid"] == other.pid,
          what="the other server up")
    result = _lab("run", _spec(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert other.wait(timeout=30) == 0  # it stepped aside
    assert _server(lab_home)["pid"] != other.pid


@pytest.mark.slow
def test_two_clients_at_once_each_get_a_run_process_of_their_own(tmp_path, lab_home):
    clients = [subprocess.Popen([LAB, "run", _spec(tmp_path, 0.2, 2)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [c.communicate(timeout=300)[0] for c in clients]
    assert [c.returncode for c in clients] == [0, 0], outputs
    ids = sorted(int(o.split("experiment ids:")[1].split()[0]) for o in outputs)
    assert len(set(ids)) == 2
    assert all(Registry().experiment(i)["status"] == "completed" for i in ids)


def test_a_socket_open_to_others_is_refused_in_one_line(tmp_path, lab_home):
    folder = lab_home / "server"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sock"
    saved = path.stat().st_mode & 0o777 if path.exists() else None
    if saved is None:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
    os.chmod(path, 0o666)
    try:
        result = _lab("run", _spec(tmp_path))
    finally:
        if saved is None:
            listener.close()
            path.unlink()
        else:
            os.chmod(path, saved)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"lab: error: the lab server's {path} is not a socket of this user's with mode "
                                     "0600: refused (remove it, or use --no-server)")


@pytest.mark.slow
def test_a_request_without_the_cookie_is_refused(tmp_path, lab_home):
    from lab.infra import server_files as files

    assert _lab("run", _spec(tmp_path)).returncode == 0  # a server is up
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(str(lab_home / "server" / "sock"))
    files.send(conn, {"cookie": "0" * 64, "fingerprint": files.fingerprint(), "argv": ["run", "x"], "cwd": "/",
                      "env": {}, "local": True}, fds=[0, 1, 2])
    reply, _ = files.receive(conn)
    assert reply == {"error": "a request without this server's cookie: refused"}
    conn.close()


@pytest.mark.slow
def test_an_idle_server_exits_and_stops_the_warm_ray_it_started(tmp_path, monkeypatch):
    home = tmp_path / "idle-home"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.setenv("LAB_SERVER_IDLE_S", "3")
    result = _lab("run", _spec(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    server = _server(home)["pid"]
    keeper = json.loads((home / "ray" / "instance.json").read_text())["pid"]
    _wait(lambda: not psutil.pid_exists(server) or psutil.Process(server).status() == psutil.STATUS_ZOMBIE,
          timeout=90, what="the idle server gone")
    _wait(lambda: not psutil.pid_exists(keeper) or psutil.Process(keeper).status() == psutil.STATUS_ZOMBIE,
          timeout=60, what="its warm Ray gone")
    assert not (home / "ray" / "instance.json").exists()
    assert "lab server: exits (idle)" in (home / "server" / "server.log").read_text()

"""SIGTERM and SIGHUP are Ctrl-C: `lab run` and `lab tensorboard` stop their children and free their ports;
a SIGKILLed driver's finished trials are not run again by `lab resume`, and its leftovers are stopped."""
from __future__ import annotations

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
from tests import plugins, proc_utils
from tests.conftest import lab

SWEEP = """
name: signals
workload: sleepy
params: {seconds: 1.0}
search:
  x: {uniform: [0.0, 1.0]}
metric: score
num_samples: %d
stop: {training_iteration: 1}
resources: {cpu: 1}
"""  # trials of a set length (tests/plugins): the sweep is still running when the signal comes, on any machine
LAB = str(Path(sys.executable).parent / "lab")


@pytest.fixture(autouse=True)
def sleepy_workload(monkeypatch):
    """The `sleepy` workload installed for the lab processes these tests start (and their Ray workers)."""
    monkeypatch.setenv("PYTHONPATH", plugins.pythonpath())


def _start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([LAB, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def _wait_finished(registry: Registry, at_least: int, driver: subprocess.Popen, timeout: float = 180) -> int:
    """Wait until `at_least` trials are TERMINATED in the registry; return the experiment id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert driver.poll() is None, driver.communicate()[0][-3000:]
        try:
            (experiment,) = registry.experiments(limit=1)
            if sum(t["status"] == "TERMINATED" for t in registry.trials(experiment["id"])) >= at_least:
                return experiment["id"]
        except (ValueError, Exception):  # noqa: BLE001 - the run creates the registry
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} trials finished in {timeout} s")


def _results(storage: str) -> dict[str, int]:
    """Tune's result lines per trial folder: a trial run again has more than one (one-iteration trials)."""
    return {path.parent.name: len([line for line in path.read_text().splitlines() if line.strip()])
            for path in Path(storage).glob("*/result.json")}


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _ours_listening(ports: list[int], lab_home: Path) -> list[tuple[int, int]]:
    """(port, pid) of every listener on `ports` held by a process of this test's lab (its LAB_HOME): Ray's
    fixed default ports may be taken again at once by another Ray on the machine."""
    held = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
            try:
                if psutil.Process(conn.pid).environ().get("LAB_HOME") == str(lab_home):
                    held.append((conn.laddr.port, conn.pid))
            except psutil.Error:
                pass
    return held


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_lab_run_stops_cleanly_on_sigterm_and_sighup(signum, tmp_path, lab_home):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP % 12)
    driver, registry = _start(["run", str(spec)]), Registry()
    exp_id = _wait_finished(registry, 1, driver)
    processes = proc_utils.tree(driver.pid)
    ports = [port for *_rest, port in proc_utils.listeners(processes)]
    assert len(processes) > 3 and ports
    driver.send_signal(signum)
    output, _ = driver.communicate(timeout=90)
    assert proc_utils.wait_gone([p.pid for p in processes]) == [], output[-2000:]
    assert _ours_listening(ports, lab_home) == []
    experiment = registry.experiment(exp_id)
    assert experiment["status"] == "interrupted", output[-2000:]
    assert "Traceback" not in output
    if signum == signal.SIGTERM:  # and it is resumable
        resumed = lab("resume", str(exp_id))
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert registry.experiment(exp_id)["status"] == "completed"
        assert len(registry.trials(exp_id)) == 12


@pytest.mark.slow
def test_lab_tensorboard_stops_its_server_on_sigterm(tmp_path, lab_home):
    registry = Registry()
    exp_id = registry.create_experiment({"name": "tb", "workload": "sklearn_cv", "metric": "cv/accuracy",
                                         "mode": "max"})
    runs = lab_home / "experiments" / "runs"  # registry folders count only under the storage root
    runs.mkdir(parents=True)
    registry.update_experiment(exp_id, storage_path=str(runs), status="completed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    board = _start(["tensorboard", str(exp_id), "--port", str(port)])
    deadline = time.time() + 60
    while _port_free(port) and time.time() < deadline:
        time.sleep(0.2)
    assert not _port_free(port), "TensorBoard never listened"
    processes = proc_utils.tree(board.pid)
    assert len(processes) >= 2
    board.send_signal(signal.SIGTERM)
    board.communicate(timeout=30)
    assert proc_utils.wait_gone([p.pid for p in processes], timeout=15) == []
    assert _port_free(port)


@pytest.mark.slow
def test_resume_after_sigkill_reruns_no_finished_trial_and_stops_the_leftovers(tmp_path, lab_home):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP % 8)
    registry = Registry()
    driver = _start(["run", str(spec)])
    for kill_after in (1, 4):  # a SIGKILL right after a trial finished, at two points of the sweep
        exp_id = _wait_finished(registry, kill_after, driver)
        finished = {t["trial_id"] for t in registry.trials(exp_id) if t["status"] == "TERMINATED"}
        leftovers = [p for p in proc_utils.tree(driver.pid) if p.pid != driver.pid]
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
        time.sleep(1)
        alive = [p for p in leftovers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        driver = _start(["resume", str(exp_id)])  # the next lab command stops what the dead driver left
        assert proc_utils.wait_gone([p.pid for p in alive], timeout=60) == []
        storage = registry.experiment(exp_id)["storage_path"]
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output[-3000:]
    trials = registry.trials(exp_id)
    assert len(trials) == 8 and all(t["status"] == "TERMINATED" and t["iterations"] == 1 for t in trials)
    runs = _results(storage)
    assert len(runs) == 8 and set(runs.values()) == {1}, runs  # no trial ran twice, the finished ones included
    assert finished and not list((lab_home / "run").glob("*.json"))


def _board(tmp_path, preexec_fn=None) -> tuple[subprocess.Popen, int]:
    """`lab tensorboard` over an empty recorded experiment, once it listens: (process, port)."""
    registry = Registry()
    exp_id = registry.create_experiment({"name": "tb", "workload": "sklearn_cv", "metric": "cv/accuracy",
                                         "mode": "max"})
    runs = Path(os.environ["LAB_HOME"]) / "experiments" / "runs"  # registry folders count only under the storage root
    runs.mkdir(parents=True)
    registry.update_experiment(exp_id, storage_path=str(runs), status="completed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    board = subprocess.Popen([LAB, "tensorboard", str(exp_id), "--port", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn)
    deadline = time.time() + 60
    while _port_free(port) and time.time() < deadline:
        assert board.poll() is None, board.communicate()[0]
        time.sleep(0.2)
    assert not _port_free(port), "TensorBoard never listened"
    return board, port


def test_lab_tensorboard_stops_on_sigterm_with_sigint_ignored(tmp_path, lab_home):
    """As a background job of a script: the shell ignores SIGINT there, so a SIGTERM made into a SIGINT did nothing."""
    board, port = _board(tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    processes = proc_utils.tree(board.pid)
    try:
        board.send_signal(signal.SIGTERM)
        out, _ = board.communicate(timeout=30)
    finally:
        if board.poll() is None:
            board.kill()
    assert board.returncode == 0 and out.splitlines()[-1] == "TensorBoard stopped", out
    assert proc_utils.wait_gone([p.pid for p in processes], timeout=15) == []
    assert _port_free(port)


def test_tensorboard_dies_with_a_sigkilled_lab(tmp_path, lab_home):
    board, port = _board(tmp_path)
    children = proc_utils.tree(board.pid)[1:]
    assert children, "no TensorBoard child"
    try:
        board.kill()
        board.wait(timeout=10)
        assert proc_utils.wait_gone([p.pid for p in children], timeout=15) == []
    finally:
        for child in children:
            if child.is_running():
                child.kill()
    assert _port_free(port)


@pytest.mark.slow
def test_resume_when_the_checkpoints_tune_saved_were_pruned_goes_on_from_the_newest_on_storage(tmp_path, lab_home):
    """Tune's saved state names the checkpoints of its last save; newer ones may have pruned those before the
    driver died (seen on a lost head): the trial goes on from the newest sealed checkpoint in its folder."""
    import json
    import re

    spec = tmp_path / "long.yaml"
    spec.write_text(SWEEP.replace("num_samples: %d", "num_samples: 1").replace("training_iteration: 1",
                                                                             "training_iteration: 10")
                    .replace("seconds: 1.0", "seconds: 0.3") + "checkpoint_every: 1\n")
    driver, registry = _start(["run", str(spec)]), Registry()
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            trials = registry.trials(registry.experiments(limit=1)[0]["id"])
        except (IndexError, Exception):  # noqa: BLE001 - the run creates the registry
            trials = []
        if trials and trials[0]["iterations"] >= 4:
            break
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    driver.communicate(timeout=90)
    (experiment,) = registry.experiments(limit=1)
    assert experiment["status"] == "interrupted"
    (trial_dir,) = [p for p in Path(experiment["storage_path"]).iterdir() if p.is_dir() and p.name.startswith("sleepy")]
    named = sorted(trial_dir.glob("checkpoint_*"))
    assert len(named) >= 2
    top = int(named[-1].name.split("_")[1])
    for offset, folder in enumerate(named):  # newer checkpoints replaced the ones Tune's state names
        folder.rename(trial_dir / f"checkpoint_{top + 1 + offset:06d}")
    newest = top + len(named)
    newest_iteration = json.loads((trial_dir / f"checkpoint_{newest:06d}" / "lab_checkpoint.json").read_text())[
        "progress"]["training_iteration"]

    resumed = lab("resume", str(experiment["id"]))
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert re.search(r"its recorded checkpoint is gone from storage; resuming from \S+checkpoint_%06d" % newest,
                     resumed.stderr), resumed.stderr
    (trial,) = registry.trials(experiment["id"])
    assert registry.experiment(experiment["id"])["status"] == "completed"
    assert trial["status"] == "TERMINATED" and trial["iterations"] == 10
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    first_after = next(r for r in rows if r["iterations_since_restore"] < r["training_iteration"])
    assert first_after["training_iteration"] == newest_iteration + 1  # went on from it, not from the start

"""The `lab` command through a subprocess: bad input fails cleanly, a real run fills registry and TensorBoard."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.registry import Registry
from tests import plugins
from tests.conftest import lab, lab_in_process

SMALL_SWEEP = """
name: small
workload: sklearn_cv
params: {dataset: iris, model: logistic, cv_folds: 3}
search:
  logisticregression__C: {grid: [0.1, 1.0]}
  logisticregression__l1_ratio: {grid: [0.0, 0.5]}   # 0.5 needs the saga solver: those trials raise
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, data: dict | None = None, timeout: float = 30):
    """GET (or POST `data` as JSON) until the server answers 200 with a non-empty body."""
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            body = json.dumps(data).encode() if data is not None else None
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                result = json.loads(response.read())
            if result:
                return result
        except OSError:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"no answer from {url}")
        time.sleep(0.5)


def assert_clean_failure(result, message: str, lab_home: Path) -> None:
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lab: error:") and message in last, result.stderr
    assert not (lab_home / "registry.db").exists() or not Registry().experiments()


def test_help_and_empty_ls():
    assert lab_in_process("--help").returncode == 0
    result = lab_in_process("ls")
    assert result.returncode == 0 and "no experiments yet" in result.stdout


def test_cli_start_up_imports_neither_tensorflow_nor_ray():
    code = ("import sys; from lab import cli; cli.main(['ls']); "
            "print([m for m in ('tensorflow', 'ray', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("text, message", [
    ("name: [oops", "malformed YAML"),
    ("name: x\nworkload: nope\nmetric: m", "unknown workload 'nope'"),
    ("name: x\nworkload: dqn\nmetric: m\nparams: {learning_rat: 0.1}", "unknown parameter 'learning_rat'"),
    ("name: x\nworkload: dqn\nmetric: m\nparams: {batch_size: large}", "'batch_size' of workload 'dqn' must be an integer"),
    # a control character in a key is written as an escape: the error stays one line, the terminal untouched
    ('name: x\nworkload: dqn\nmetric: m\nparams: {"a\\nb\\x1b[2J": 1}', "unknown parameter 'a\\nb\\x1b[2J'"),
])
def test_bad_spec_files(tmp_path, lab_home, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert_clean_failure(lab_in_process("run", str(path)), message, lab_home)


def test_bad_environments(lab_home):
    assert_clean_failure(lab_in_process("run", "dqn-cartpole", "--set", "env_id=CartPol-v1"),
                         "unknown Gymnasium environment 'CartPol-v1' (did you mean 'CartPole-v1'", lab_home)
    assert_clean_failure(lab_in_process("run", "dqn-cartpole", "--set", "env_id=Pendulum-v1"),
                         "DQN needs one discrete action", lab_home)


def test_bad_cli_input(lab_home):
    assert_clean_failure(lab_in_process("run", "svc-digitz"), "unknown preset 'svc-digitz'", lab_home)
    assert_clean_failure(lab_in_process("run", "missing.yaml"), "spec file not found", lab_home)
    assert_clean_failure(lab_in_process("run", "svc-digits", "--set", "params.svc__C=abc"), "'C' parameter of SVC", lab_home)
    assert_clean_failure(lab_in_process("show", "42"), "no experiment with id 42", lab_home)


def test_unreachable_registry_and_cluster(lab_home):
    result = lab("run", "svc-digits", env={"LAB_REGISTRY_URL": "postgresql://lab:pw@127.0.0.1:1/lab"})
    assert_clean_failure(result, "cannot reach the registry", lab_home)
    assert "pw" not in result.stderr
    assert_clean_failure(lab("run", "svc-digits", "--address", "127.0.0.1:1"), "cannot reach the Ray cluster", lab_home)


@pytest.mark.slow
def test_impossible_resources(lab_home):
    result = lab("run", "svc-digits", "--set", "resources.gpu=4")
    assert_clean_failure(result, "asks for 4 GPU(s) per trial but the Ray cluster has 0", lab_home)


@pytest.mark.slow
def test_run_records_trials_errors_and_tensorboard(tmp_path, lab_home):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SWEEP)
    result = lab("run", str(spec))
    assert result.returncode == 1, result.stderr[-3000:]  # one trial failed: not a clean run
    assert "experiment ids: 1" in result.stdout and "lab tensorboard 1" in result.stdout

    registry = Registry()
    exp = registry.experiment(1)
    assert exp["status"] == "completed" and exp["spec"]["name"] == "small" and exp["user"] and exp["host"]
    trials = registry.trials(1)
    assert len(trials) == 4
    failed = [t for t in trials if t["status"] == "ERROR"]
    assert len(failed) == 2 and all(t["error"].startswith("ValueError: Solver lbfgs supports only") for t in failed)
    done = [t for t in trials if t["status"] == "TERMINATED"]
    assert all(t["best_metric"] > 0.8 and t["checkpoint_path"] and t["logdir"] for t in done)
    assert registry.best_trial(1)["config"]["logisticregression__l1_ratio"] == 0.0

    # TensorBoard: namespaced scalars and an HParams session in every finished trial's folder
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial in done:
        events = EventAccumulator(trial["logdir"])
        events.Reload()
        assert {"cv/accuracy", "test/accuracy"} <= set(events.Tags()["scalars"])
        assert "_hparams_/session_start_info" in events.Tags()["tensors"]
        assert "test/confusion_matrix" in events.Tags()["images"]

    best = lab("best", "1", "--json")
    assert best.returncode == 0 and json.loads(best.stdout)["status"] == "TERMINATED"
    assert "small" in lab("ls").stdout
    shown = lab("show", "1").stdout
    assert "ERROR" in shown and "Solver lbfgs" in shown

    # `lab tensorboard 1` serves those runs and their HParams on 127.0.0.1
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "tensorboard", "1", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        assert f"http://127.0.0.1:{port}/" in server.stdout.readline()
        runs = http_json(f"http://127.0.0.1:{port}/data/runs", timeout=90)
        assert len(runs) == 4 and all(run.startswith("1-small/") for run in runs)
        experiment = http_json(f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
                               data={"experimentName": ""})
        names = {info["name"] for info in experiment["hparamInfos"]}
        assert {"logisticregression__C", "logisticregression__l1_ratio"} <= names
        assert "cv/accuracy" in {m["name"]["tag"] for m in experiment["metricInfos"]}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_experiment(tmp_path, lab_home, monkeypatch):
    spec = tmp_path / "long.yaml"  # trials of a set length (tests/plugins): the interrupt lands on any machine
    spec.write_text("name: long\nworkload: sleepy\nparams: {seconds: 1.5}\n"
                    "search: {x: {grid: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}}\n"
                    "metric: score\nstop: {training_iteration: 1}\nresources: {cpu: 1}\n")
    monkeypatch.setenv("PYTHONPATH", plugins.pythonpath())
    proc = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 240
    registry = Registry()
    while time.time() < deadline and proc.poll() is None:  # interrupt once some trials have finished, not all
        try:
            finished = [t for t in registry.trials(1) if t["status"] == "TERMINATED"]
        except Exception:  # noqa: BLE001 - the registry is created by the run
            finished = []
        if 1 <= len(finished) < 8:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    before = {t["trial_id"]: t for t in registry.trials(1) if t["status"] == "TERMINATED"}
    assert before and registry.experiment(1)["status"] in ("interrupted", "completed")
    if registry.experiment(1)["status"] == "completed":
        pytest.skip("the sweep finished before the interrupt landed")

    result = lab("resume", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    after = {t["trial_id"]: t for t in registry.trials(1)}
    assert len(after) == 8 and all(t["status"] == "TERMINATED" for t in after.values())
    assert registry.experiment(1)["status"] == "completed"
    for trial_id, trial in before.items():  # finished trials were not run again
        assert after[trial_id]["updated_at"] == trial["updated_at"]


@pytest.mark.slow
def test_nan_loss_fails_the_trial_with_its_reason(lab_home):
    result = lab("run", "mlp-fashion-mnist", "--set", "subset=600", "--set", "optimizer=sgd",
                 "--set", "learning_rate=1e6", "--set", "lr_schedule=constant", "--set", "resources.cpu=1")
    assert result.returncode == 1
    (trial,) = Registry().trials(1)
    assert trial["status"] == "ERROR" and "NaN" in trial["error"], trial["error"]
    assert Registry().experiment(1)["status"] == "failed"


@pytest.mark.slow
def test_quickstart_learns_every_kind(lab_home):
    """The README's main job: one sweep of each kind, each reaching its preset's reference score."""
    result = lab("run", "quickstart", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "experiment ids: 1 2 3" in result.stdout and "lab tensorboard 1 2 3" in result.stdout
    assert result.stdout.count(": reached") == 3, result.stdout[-3000:]
    registry = Registry()
    assert {e["workload"] for e in registry.experiments()} == {"sklearn_cv", "keras_classifier", "dqn"}
    assert all(e["status"] == "completed" and not e["num_errors"] for e in registry.experiments())


@pytest.mark.slow
@pytest.mark.postgres
def test_run_with_a_postgresql_registry(postgres_url, tmp_path):
    """A team's shared registry: `lab run` writes to PostgreSQL and `lab ls` (anywhere) reads it."""
    env = {"LAB_REGISTRY_URL": postgres_url}
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SWEEP.replace("{grid: [0.0, 0.5]}", "{grid: [0.0]}"))
    result = lab("run", str(spec), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    registry = Registry(postgres_url)
    exp_id = max(e["id"] for e in registry.experiments())
    assert registry.experiment(exp_id)["status"] == "completed"
    assert len(registry.trials(exp_id)) == 2
    listed = lab("ls", env={**env, "LAB_HOME": str(tmp_path / "another-home")})
    assert "small" in listed.stdout and "completed" in listed.stdout

"""`lab up` / `lab down` / `lab status`, runs on a warm instance, batched registry writes, the progress lines."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab import settings
from lab.infra import warm
from lab.registry import Registry
from tests.conftest import lab

TINY = """
name: {name}
workload: sklearn_cv
params: {{dataset: iris, model: logistic, cv_folds: 3, log_figures: false}}
search:
  logisticregression__C: {{grid: [0.1, 1.0]}}
metric: cv/accuracy
stop: {{training_iteration: 1}}
resources: {{cpu: 1}}
"""


def write_record(**changes) -> None:
    """A record as `lab up` writes it, of an instance that is not running."""
    record = dict(address="127.0.0.1:1", pid=2**22 + 7, pid_started=1, uid=os.getuid(), user="me",
                  temp_dir=os.path.join(tempfile.gettempdir(), "lab-ray-nonexistent"),
                  token_path=str(warm.ray_dir() / "auth_token"), num_cpus=1, pool=1)
    record.update(changes)
    settings.private_file(warm.record_path(), json.dumps(record))  # 0600, as `lab up` writes it


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    return lines[0]


def test_down_and_status_without_an_instance(lab_home):
    assert "no warm Ray instance" in one_error_line(lab("down"))
    status = lab("status")
    assert status.returncode == 0 and status.stdout.strip().splitlines() == [
        "lab server: not running (the next `lab run` starts it)", "no warm Ray instance (`lab up` starts one)"]


def test_up_refuses_bad_sizes(lab_home):
    assert "--cpus must be at least 1" in one_error_line(lab("up", "--cpus", "0"))
    for bad in ("-1", "two", "1e9", "²"):
        result = lab("up", env={"LAB_WARM_WORKERS": bad})
        line = one_error_line(result)
        assert "LAB_WARM_WORKERS must be a whole number" in line, line
        assert result.stdout == ""  # refused before it says it starts
    assert not warm.record_path().exists()


def test_the_pool_size_comes_from_lab_warm_workers_else_one_per_cpu(monkeypatch):
    monkeypatch.delenv("LAB_WARM_WORKERS", raising=False)
    assert warm.default_pool(4) == 4
    monkeypatch.setenv("LAB_WARM_WORKERS", "0")
    assert warm.default_pool(4) == 0
    monkeypatch.setenv("LAB_WARM_WORKERS", " 3 ")
    assert warm.default_pool(4) == 3


def test_workers_preload_tensorflow_only_where_a_pool_keeps_them_idle(lab_home):
    """A pool's idle workers import TensorFlow ahead of the trials; without a pool (--workers 0) each fresh
    worker imports only what its trial needs (a scikit-learn trial: no TensorFlow)."""
    def system_config(pool: int) -> dict:
        instance = warm.Instance(address="127.0.0.1:6379", pid=0, pid_started=0, uid=os.getuid(), user="me",
                                 temp_dir="/tmp/lab-ray-x", token_path="t", num_cpus=2, pool=pool)
        flag = next(arg for arg in warm.head_command(instance) if arg.startswith("--system-config="))
        return json.loads(flag.split("=", 1)[1])

    assert system_config(2)["preload_python_modules"] == ["lab.infra.preload"]
    assert "preload_python_modules" not in system_config(0)
    assert system_config(0)["prestart_worker_first_driver"] is False


def test_a_dead_instance_is_reported_and_forgotten(lab_home):
    write_record()
    assert "is not running (stale record" in lab("status").stdout
    assert "no longer running" in one_error_line(lab("down"))
    assert not warm.record_path().exists()
    write_record()
    notes = []
    assert warm.usable(note=lambda *a, **k: notes.append(a[0])) is None
    assert len(notes) == 1 and "no longer running" in notes[0] and not warm.record_path().exists()


def test_a_dead_keepers_leftovers_are_stopped(lab_home, tmp_path):
    """Its session's processes that name its temp folder go with the record (and nothing else)."""
    temp_dir = tempfile.mkdtemp(prefix="lab-ray-")  # where `lab up` makes its temp folders
    # the leader starts both and exits; Popen returns once a child has exec'd (a forked shell would still
    # carry the leader's command line, temp folder included, for a moment)
    nap = [sys.executable, "-c", "import time; time.sleep(60)"]
    start = (f"import subprocess; subprocess.Popen({[*nap, temp_dir]!r}); "
             f"print(subprocess.Popen({nap!r}).pid, flush=True)")
    leader = subprocess.Popen([sys.executable, "-c", start], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    bystander = int(leader.stdout.readline())
    leader.wait()
    leftovers = [pid for pid, cmd in warm._session_processes(leader.pid) if temp_dir in cmd]
    assert len(leftovers) == 1
    write_record(pid=leader.pid, temp_dir=temp_dir)
    assert warm.usable(note=lambda *a, **k: None) is None
    time.sleep(0.2)
    alive = {pid for pid, _ in warm._session_processes(leader.pid)}
    assert leftovers[0] not in alive and bystander in alive and not os.path.exists(temp_dir)
    os.kill(bystander, 9)


def test_another_users_instance_is_left_alone(lab_home):
    me = os.getpid()
    write_record(uid=os.getuid() + 1, user="someone", pid=me, pid_started=warm._start_ticks(me))
    assert "belongs to user someone" in lab("status").stdout
    assert "belongs to user someone" in one_error_line(lab("up"))
    assert "belongs to user someone" in one_error_line(lab("down"))
    assert warm.usable(note=lambda *a, **k: None) is None
    assert warm.record_path().exists()  # not ours to remove


def test_up_refuses_a_live_instance_in_one_line(lab_home):
    me = os.getpid()  # a live process stands for the keeper: no Ray needed to check the refusal
    write_record(pid=me, pid_started=warm._start_ticks(me))
    line = one_error_line(lab("up"))
    assert "already up" in line and "lab down" in line


# ------------------------------------------------------------------ the registry callback's batched writes
def fake_trial(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"c": 1.0}, path=f"/runs/{trial_id}", checkpoint=None,
                           last_result={}, error_file=None)


def test_registry_writes_are_batched_and_nothing_is_lost(lab_home):
    from lab.execution.callbacks import RegistryCallback

    registry = Registry()
    experiment_id = registry.create_experiment({"name": "x", "workload": "w", "metric": "m", "mode": "max"})
    callback = RegistryCallback(registry.url, experiment_id, "m", "max")
    trials = [fake_trial(f"t{i}") for i in range(20)]
    calls = []
    real = Registry.upsert_trials

    def counting(self, *args, **kwargs):
        calls.append(len(args[1]))
        return real(self, *args, **kwargs)

    Registry.upsert_trials = counting
    try:
        for trial in trials:
            callback.on_trial_start(0, trials, trial)
            callback.on_trial_result(0, trials, trial, {"training_iteration": 1, "m": float(trial.trial_id[1:])})
            callback.on_trial_complete(0, trials, trial)
        assert len(calls) <= 2  # within FLUSH_EVERY_S: one write at the start, the rest pending
        callback.on_experiment_end(trials)
    finally:
        Registry.upsert_trials = real
    assert len(calls) <= 3 and sum(calls) >= 20
    rows = {t["trial_id"]: t for t in Registry().trials(experiment_id)}
    assert len(rows) == 20
    assert all(r["status"] == "TERMINATED" and r["iterations"] == 1 and r["logdir"] for r in rows.values())
    assert rows["t19"]["best_metric"] == 19.0 and rows["t3"]["last_result"]["m"] == 3.0


def test_progress_lines_are_compact():
    from lab.execution.progress import ProgressCallback

    out = io.StringIO()
    callback = ProgressCallback("eval/return", "max", every_s=0.0, stream=out)
    trial = fake_trial("abc_00000")
    for i, value in enumerate([10.0, 50.0, 30.0], 1):
        callback.on_trial_result(i, [trial], trial, {"training_iteration": i, "eval/return": value})
    trial.last_result = {"training_iteration": 3, "eval/return": 30.0}
    callback.on_trial_complete(3, [trial], trial)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # the end adds no line when the last result was shown
    assert lines[-1].endswith("trial abc_00000  iter 3  eval/return 30  best 50")


# ------------------------------------------------------------------ a real warm instance
def session_processes(pid: int) -> list:
    return warm._session_processes(pid)


@pytest.mark.slow
def test_warm_instance_runs_side_by_side_and_stops_alone(tmp_path, lab_home):
    up = lab("up", "--cpus", "2", "--workers", "1", timeout=300)
    assert up.returncode == 0, up.stderr[-2000:] + Path(warm.ray_dir() / "keeper.log").read_text()[-2000:]
    instance = warm.recorded()
    assert instance.address.startswith("127.0.0.1:") and oct(os.stat(instance.token_path).st_mode)[-3:] == "600"
    assert "1/1 warm workers idle" in lab("status").stdout
    assert "already up" in one_error_line(lab("up"))
    warm_pids = set(warm._idle_workers(instance.pid, instance.temp_dir))
    assert len(warm_pids) == 1

    # two runs side by side on the one instance: separate experiments, trials and folders
    runs = []
    for name in ("left", "right"):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(TINY.format(name=name))
        runs.append(subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr[-3000:]
        assert "Trial Status" not in stdout and "iter 1" in stdout  # compact lines, no Tune table
    registry = Registry()
    experiments = {e["name"]: e for e in registry.experiments()}
    assert set(experiments) == {"left", "right"}
    folders = {e["storage_path"] for e in experiments.values()}
    assert len(folders) == 2
    for exp in experiments.values():
        trials = registry.trials(exp["id"])
        assert len(trials) == 2 and all(t["status"] == "TERMINATED" for t in trials)
        assert all(t["logdir"].startswith(exp["storage_path"]) for t in trials)
    # the runs joined the warm instance, and a trial ran in its warm worker (TensorFlow already imported)
    pids = {json.loads(path.read_text().splitlines()[0])["pid"]
            for exp in experiments.values() for path in Path(exp["storage_path"]).glob("*/result.json")}
    assert pids & warm_pids, (pids, warm_pids)

    down = lab("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    deadline = time.time() + 30
    while session_processes(instance.pid) and time.time() < deadline:
        time.sleep(0.5)
    assert not session_processes(instance.pid) and not warm.record_path().exists()

    # a record left by an instance that died: the next run says so in one line and starts its own Ray
    write_record()
    spec = tmp_path / "after.yaml"
    spec.write_text(TINY.format(name="after"))
    after = lab("run", str(spec), timeout=300)
    assert after.returncode == 0, after.stderr[-3000:]
    notes = [line for line in after.stderr.splitlines() if line.startswith("lab: note:")]
    assert len(notes) == 1 and "no longer running" in notes[0] and not warm.record_path().exists()

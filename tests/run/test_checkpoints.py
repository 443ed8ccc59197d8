"""Sealed checkpoints: nothing half-written is read back as a valid checkpoint."""
from __future__ import annotations

import glob
import json
import os

import pytest

from lab.workload import checkpoints
from lab.workload.checkpoints import MANIFEST, CheckpointError


def written(folder) -> str:
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "data").write_bytes(os.urandom(4096))
    (folder / "state.json").write_text(json.dumps({"step": 7}))
    checkpoints.seal(str(folder))
    return str(folder)


def test_a_sealed_checkpoint_verifies_and_tolerates_files_added_after_it(tmp_path):
    folder = written(tmp_path / "ckpt")
    (tmp_path / "ckpt" / ".metadata.json").write_text("{}")  # what Tune adds after the trainable saved
    checkpoints.verify(folder)
    assert not any(name.endswith(".tmp") for name in os.listdir(folder))


@pytest.mark.parametrize("damage", ["truncated", "missing", "no manifest", "garbled manifest"])
def test_a_checkpoint_cut_short_or_changed_is_refused_with_one_line(tmp_path, damage):
    folder = written(tmp_path / "ckpt")
    data = tmp_path / "ckpt" / "weights" / "data"
    if damage == "truncated":  # a copy to a full disk stops mid-file
        data.write_bytes(data.read_bytes()[:1000])
    elif damage == "missing":  # ... or before a file
        data.unlink()
    elif damage == "no manifest":  # ... or before the manifest, which is written last
        (tmp_path / "ckpt" / MANIFEST).unlink()
    else:
        (tmp_path / "ckpt" / MANIFEST).write_text("{\"files\": ")
    with pytest.raises(CheckpointError) as error:
        checkpoints.verify(folder)
    assert "\n" not in str(error.value) and folder in str(error.value)


def test_lab_export_refuses_a_recorded_checkpoint_that_was_cut_short(tmp_path, monkeypatch):
    """The registry points at a checkpoint whose copy stopped half-way: export says so in one line."""
    from lab.registry import Registry
    from lab.results.artifacts import load_trial_workload

    monkeypatch.setenv("LAB_STORAGE", str(tmp_path))  # registry paths count only under the storage root

    folder = written(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "weights" / "data").write_bytes(b"")
    registry = Registry()
    experiment = registry.create_experiment({"name": "cut", "workload": "sklearn_cv", "metric": "cv/accuracy",
                                             "mode": "max", "params": {}}, user="u", host="h", git_commit="")
    registry.upsert_trial(experiment, "t1", status="TERMINATED", config={"dataset": "iris"},
                          checkpoint_path=folder, best_metric=0.9)
    with pytest.raises(CheckpointError, match="differs from what was written"):
        load_trial_workload(experiment, "t1", registry=registry)


# ------------------------------------------------------------------ a real full disk, end to end
@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs (root only): the storage that fills up."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_fails_the_trial_in_one_line_and_resume_finishes_it(small_disk, lab_home):
    import glob
    import subprocess
    import sys
    import time

    from lab.registry import Registry

    command = [str(os.path.join(os.path.dirname(sys.executable), "lab")), "run", "dqn-cartpole",
               "--set", "learning_rate=1e-3", "--set", "num_samples=1", "--set", "stop.training_iteration=6",
               "--set", "stop.eval/average_return=1000", "--set", "scheduler.max_t=6",
               "--set", "scheduler.grace_period=1", "--storage", str(small_disk)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    filler = small_disk / "filler"
    deadline = time.monotonic() + 300
    while not glob.glob(str(small_disk / "*" / "*" / "checkpoint_000001")) and run.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    with open(filler, "wb") as handle:  # the disk fills up while the trial trains
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
        except OSError:
            pass
    out, err = run.communicate(timeout=300)
    assert run.returncode != 0 and "Traceback" not in out + err, out + err
    (experiment,) = Registry().experiments()
    (trial,) = Registry().trials(experiment["id"])
    assert trial["status"] == "ERROR" and "No space left on device" in trial["error"], trial
    failed_at = trial["iterations"]
    for folder in glob.glob(str(small_disk / "*" / "*" / "checkpoint_*")):  # what was written counts, or is refused
        try:
            checkpoints.verify(folder)
        except CheckpointError:
            pass
    filler.unlink()  # the space is back
    resumed = subprocess.run([command[0], "resume", str(experiment["id"])], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (trial,) = Registry().trials(experiment["id"])
    # it went on from its last sealed checkpoint to its end (6 iterations, or the workload's own budget),
    # and its final checkpoint is whole
    assert trial["status"] == "TERMINATED" and trial["iterations"] >= failed_at, trial
    checkpoints.verify(trial["checkpoint_path"])
    assert "Traceback" not in resumed.stdout + resumed.stderr


# ------------------------------------------------------------------ a folder made read-only, as a user
READ_ONLY_SWEEP = """
name: read-only
workload: sleepy
params: {seconds: 0.3}
metric: score
num_samples: 1
stop: {training_iteration: 12}
checkpoint_every: 1
resources: {cpu: 1}
"""


@pytest.fixture
def as_a_user(tmp_path):
    """(command prefix, environment, folder) for running the lab where permissions bind: as this user, or,
    as root, without the capabilities that let root write into any folder (Linux's setpriv)."""
    import shutil

    from tests import plugins

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores read-only folders, and setpriv (util-linux) is missing to drop that")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    env = {**os.environ, "LAB_HOME": str(tmp_path / "lab-home"), "PYTHONPATH": plugins.pythonpath()}
    env.pop("LAB_REGISTRY_URL", None)
    try:
        yield prefix, env, str(tmp_path)
    finally:
        for folder in glob.glob(f"{tmp_path}/runs/*/*/"):
            os.chmod(folder, 0o755)


PRUNE_IN_A_READ_ONLY_FOLDER = """
import sys
import pyarrow.fs
from ray.train._internal import storage
from lab.execution import logs

with logs.tune_logs_to_file(7):
    storage._delete_fs_path(pyarrow.fs.LocalFileSystem(), sys.argv[1])
print(logs.experiment_log(7))
"""


def test_an_old_checkpoint_tune_cannot_prune_goes_to_the_experiment_log_not_the_console(as_a_user):
    """Tune prunes old checkpoints through Ray Train's storage, which logs a failure with its traceback
    (here the trial's folder turned read-only): that belongs in the experiment's log, not the console."""
    import subprocess
    import sys

    run_as, env, root = as_a_user
    trial_dir = os.path.join(root, "runs", "prune", "trial")
    os.makedirs(os.path.join(trial_dir, "checkpoint_000000"))
    os.chmod(trial_dir, 0o555)
    pruned = subprocess.run([*run_as, sys.executable, "-c", PRUNE_IN_A_READ_ONLY_FOLDER,
                             os.path.join(trial_dir, "checkpoint_000000")], env=env, capture_output=True, text=True,
                            timeout=120)
    assert pruned.returncode == 0 and "Traceback" not in pruned.stdout + pruned.stderr, pruned.stdout + pruned.stderr
    assert os.path.isdir(os.path.join(trial_dir, "checkpoint_000000"))  # the folder did refuse the deletion
    with open(pruned.stdout.strip()) as log:
        text = log.read()
    assert "checkpoint_000000" in text and "PermissionError" in text, text


@pytest.mark.slow
def test_a_read_only_folder_fails_the_trial_in_one_line_and_resume_finishes_it(as_a_user):
    import subprocess
    import sys
    import time

    from lab.registry import Registry

    run_as, env, root = as_a_user
    lab = os.path.join(os.path.dirname(sys.executable), "lab")
    spec = os.path.join(root, "read-only.yaml")
    with open(spec, "w") as handle:
        handle.write(READ_ONLY_SWEEP)
    run = subprocess.Popen([*run_as, lab, "run", spec, "--storage", f"{root}/runs"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.monotonic() + 300
    while not glob.glob(f"{root}/runs/*/*/checkpoint_000002") and run.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.1)
    (trial_dir,) = glob.glob(f"{root}/runs/*/*/")
    os.chmod(trial_dir, 0o555)  # the trial's folder turns read-only while the trial trains
    out, err = run.communicate(timeout=300)
    assert run.returncode != 0 and "Traceback" not in out + err, out + err
    registry = Registry(f"sqlite:///{root}/lab-home/registry.db")
    (experiment,) = registry.experiments()
    (trial,) = registry.trials(experiment["id"])
    assert trial["status"] == "ERROR" and "Permission denied" in trial["error"], trial
    assert experiment["status"] != "completed", experiment
    for folder in glob.glob(f"{trial_dir}checkpoint_*"):  # what was written counts, or is refused
        try:
            checkpoints.verify(folder)
        except CheckpointError:
            pass
    os.chmod(trial_dir, 0o755)  # writable again
    resumed = subprocess.run([*run_as, lab, "resume", str(experiment["id"])], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (trial,) = registry.trials(experiment["id"])
    assert trial["status"] == "TERMINATED" and trial["iterations"] == 12, trial
    checkpoints.verify(trial["checkpoint_path"])
    assert "Traceback" not in resumed.stdout + resumed.stderr

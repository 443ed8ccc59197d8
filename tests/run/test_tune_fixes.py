"""lab.execution.tune_fixes: in place only around the lab's own Tuner.fit(), and only on the Ray they were written for."""
from __future__ import annotations

import pytest

from lab.execution import tune_fixes


def targets():
    """What the fixes replace, as it is now."""
    from ray.air._internal import usage
    from ray.tune.execution.tune_controller import TuneController

    return {"tag_callbacks": usage.tag_callbacks, **{name: vars(TuneController)[name] for name in (
        "_schedule_trial_stop", "_schedule_trial_pause", "__setstate__", "_schedule_trial_restore")}}


def test_fixes_are_in_place_only_inside_the_block():
    before = targets()
    assert not any(getattr(f, "lab_fix", False) for f in before.values())
    with tune_fixes.applied(tune_fixes.RAY_VERSION):
        inside = targets()
        assert all(getattr(f, "lab_fix", False) for f in inside.values())
        with tune_fixes.applied(tune_fixes.RAY_VERSION):  # nested: no fix applied twice
            assert targets() == inside
        assert targets() == inside
    assert targets() == before


def test_fixes_are_undone_when_the_block_fails():
    before = targets()
    with pytest.raises(KeyboardInterrupt), tune_fixes.applied(tune_fixes.RAY_VERSION):
        raise KeyboardInterrupt
    assert targets() == before


def test_another_ray_version_warns_once_and_skips_every_fix(monkeypatch, capsys):
    monkeypatch.setattr(tune_fixes, "_warned", set())
    before = targets()
    for _ in range(2):
        with tune_fixes.applied("2.61.0"):
            assert targets() == before
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(tune_fixes.FIXES)
    assert lines[0] == ("lab: warning: Tune fix 'skip_callback_telemetry' was written for Ray 2.60.0, "
                        "skipped on Ray 2.61.0")


SPEC = """
name: tiny
workload: sklearn_cv
params: {dataset: iris, model: svc, cv_folds: 2, log_figures: false}
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


@pytest.mark.slow
def test_a_plain_tuner_after_a_lab_run_runs_unpatched(tmp_path, ray_shared):
    """A notebook: `lab.run` once, then the user's own Tuner, in the same process."""
    from ray import tune

    from lab import spec as specs
    from lab.execution import runner

    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    before = targets()
    assert runner.run(specs.load(str(path))[0]).status == "completed"
    assert targets() == before

    seen = []

    class Look(tune.Callback):
        def setup(self, **info):  # in the driver, when the user's Tuner.fit() starts its controller
            seen.append(targets())

    def trainable(config):
        tune.report({"score": 1.0})

    tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path / "own"), callbacks=[Look()],
                                                   verbose=0)).fit()
    assert seen == [before]


def _trial_with_checkpoints(tmp_path, on_storage: dict[int, int], named: list[int], rows: int = 8):
    """A Tune trial whose storage folder holds sealed checkpoints {index: training_iteration}, `rows` result
    rows, and whose saved state names the checkpoints `named` (some of which may be gone)."""
    import json

    from ray.train import CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult
    from ray.train._internal.storage import StorageContext
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

    from lab.workload import checkpoints

    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp", trial_dir_name="trial")
    trial = Trial("keras_classifier", config={}, storage=storage, stub=True)
    folder = tmp_path / "exp" / "trial"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("".join(json.dumps({"training_iteration": i}) + "\n"
                                                for i in range(1, rows + 1)))
    for index, iteration in on_storage.items():
        checkpoint = folder / f"checkpoint_{index:06d}"
        checkpoint.mkdir()
        (checkpoint / "state.json").write_text("{}")
        checkpoints.seal(str(checkpoint), progress={"training_iteration": iteration, "time_total_s": 1.5 * iteration})
    manager = _CheckpointManager(CheckpointConfig(num_to_keep=2))
    for index in named:
        path = str(folder / f"checkpoint_{index:06d}")
        manager.register_checkpoint(_TrainingResult(checkpoint=Checkpoint(path), metrics={"training_iteration": index + 1}))
    trial.run_metadata.checkpoint_manager = manager
    storage.current_checkpoint_index = max(named, default=-1) + 1
    return trial, folder


def test_a_resume_whose_named_checkpoints_were_pruned_starts_from_the_newest_sealed_one(tmp_path):
    # the state was saved after checkpoint 5; checkpoints 6 and 7 pruned 4 and 5 before the driver died
    trial, folder = _trial_with_checkpoints(tmp_path, on_storage={6: 7, 7: 8}, named=[4, 5])
    (folder / "checkpoint_000008").mkdir()  # a checkpoint cut short (no manifest) is passed over
    tune_fixes._restore_point_from_storage(trial)
    latest = trial.latest_checkpoint_result
    assert latest.checkpoint.path == str(folder / "checkpoint_000007")
    assert latest.metrics == {"training_iteration": 8, "time_total_s": 12.0}
    assert [r.checkpoint.path for r in trial.run_metadata.checkpoint_manager._checkpoint_results] == [latest.checkpoint.path]
    assert trial.storage.current_checkpoint_index == 8  # the next checkpoint writes after it, not over 6


def test_a_named_checkpoint_still_there_is_kept_and_none_left_means_from_the_start(tmp_path):
    trial, folder = _trial_with_checkpoints(tmp_path / "a", on_storage={4: 5}, named=[4, 5])
    tune_fixes._restore_point_from_storage(trial)
    assert [r.checkpoint.path for r in trial.run_metadata.checkpoint_manager._checkpoint_results] == [
        str(folder / "checkpoint_000004")]
    assert trial.latest_checkpoint_result.metrics == {"training_iteration": 5}  # Tune's own record of it

    trial, folder = _trial_with_checkpoints(tmp_path / "b", on_storage={}, named=[4, 5])
    tune_fixes._restore_point_from_storage(trial)
    assert trial.latest_checkpoint_result is None  # Tune starts the trial afresh instead of failing it


def test_a_checkpoint_ahead_of_the_results_in_storage_is_passed_over(tmp_path):
    """The dead driver had not synced its last result rows: restoring from a newer checkpoint would leave
    a gap in them, so the newest checkpoint not ahead of the rows is taken (none: from the start)."""
    trial, folder = _trial_with_checkpoints(tmp_path / "a", on_storage={3: 4, 5: 6}, named=[1, 2], rows=5)
    tune_fixes._restore_point_from_storage(trial)
    assert trial.latest_checkpoint_result.checkpoint.path == str(folder / "checkpoint_000003")
    trial, folder = _trial_with_checkpoints(tmp_path / "b", on_storage={5: 6}, named=[1, 2], rows=4)
    tune_fixes._restore_point_from_storage(trial)
    assert trial.latest_checkpoint_result is None


def test_progress_read_back_from_a_manifest_keeps_only_plain_numbers():
    from lab.workload.checkpoints import progress

    assert progress('{"progress": {"training_iteration": 3, "time_total_s": 2.5}}') == {
        "training_iteration": 3, "time_total_s": 2.5}
    assert progress('{"progress": {"training_iteration": "__import__", "time_total_s": -1}}') == {}
    assert progress('{"progress": {"training_iteration": true}}') == {}
    assert progress("not json") == progress("[1]") == progress('{"progress": 3}') == {}


def test_on_resume_a_named_checkpoint_ahead_of_the_stored_results_is_passed_over(tmp_path):
    """The dead driver synced the record of checkpoint 3 (iteration 4) but not result row 4: resuming from it
    would leave row 4 missing for good, so the resume starts from checkpoint 2 and runs iteration 4 again."""
    trial, folder = _trial_with_checkpoints(tmp_path, on_storage={2: 3, 3: 4}, named=[2, 3], rows=3)
    assert tune_fixes._ahead_of_results(trial.latest_checkpoint_result, trial)
    tune_fixes._restore_point_from_storage(trial, "is ahead of its results in storage")
    assert trial.latest_checkpoint_result.checkpoint.path == str(folder / "checkpoint_000002")
    trial, _ = _trial_with_checkpoints(tmp_path / "b", on_storage={2: 3, 3: 4}, named=[2, 3], rows=4)
    assert not tune_fixes._ahead_of_results(trial.latest_checkpoint_result, trial)


def test_a_result_file_missing_from_storage_means_from_the_start(tmp_path):
    """The dead driver synced Tune's state (4 iterations, checkpoint 3) but never the trial's result.json: a
    resume from checkpoint 3 would leave rows 1-4 missing for good (the multihost head-loss test found a
    trial whose rows began at 2), so the trial starts afresh and every row is written."""
    trial, folder = _trial_with_checkpoints(tmp_path, on_storage={2: 3, 3: 4}, named=[2, 3], rows=4)
    (folder / "result.json").unlink()
    trial.run_metadata.last_result = {"training_iteration": 4}  # what Tune's saved state says
    assert tune_fixes._ahead_of_results(trial.latest_checkpoint_result, trial)
    tune_fixes._restore_point_from_storage(trial, "is ahead of its results in storage")
    assert trial.latest_checkpoint_result is None

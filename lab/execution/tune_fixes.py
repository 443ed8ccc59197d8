"""Narrow fixes to Ray Tune 2.60's `TuneController` (and one usage hook), in place only around the lab's own
`Tuner.fit()` (`with applied(): tuner.fit()`, lab.execution.runner), so a Tuner of anyone else in the process (a
notebook user's own) runs Tune unchanged.

Each fix patches one attribute, says in its docstring what Tune does wrong and what the lab needs instead, and
returns what undoes it; drop a fix when Tune's own code has it. They were written for Ray `RAY_VERSION`: on
another Ray each is skipped, with a one-line warning (once a process), as its target may have changed.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

RAY_VERSION = "2.60.0"  # the Ray the fixes below were written for (pyproject.toml pins it)
_warned: set[str] = set()


_resume = {"on": False, "restored": set()}  # `lab resume`'s fit: each trial's first restore is checked (below)


@contextlib.contextmanager
def applied(ray_version: str | None = None, resuming: bool = False) -> Iterator[None]:
    """Every fix in place for the block (the lab's `Tuner.fit()`, `resuming` for `lab resume`'s), each undone
    after it, in reverse order."""
    _resume["on"], _resume["restored"] = resuming, set()
    if ray_version is None:
        import ray

        ray_version = ray.__version__
    undo: list[Callable[[], None]] = []
    try:
        for fix in FIXES:
            if ray_version != RAY_VERSION:
                _warn_once(fix.__name__, ray_version)
                continue
            undo.append(fix())
        yield
    finally:
        for restore in reversed(undo):
            restore()


def _warn_once(name: str, ray_version: str) -> None:
    if name not in _warned:
        _warned.add(name)
        print(f"lab: warning: Tune fix '{name}' was written for Ray {RAY_VERSION}, skipped on Ray {ray_version}",
              file=sys.stderr, flush=True)


def _patch(owner, name: str, new) -> Callable[[], None]:
    """Set `owner.name` to `new`; return what puts the original back (nothing to do when a fix is already in
    place: an enclosing `applied()` undoes it)."""
    original = vars(owner)[name]
    if getattr(original, "lab_fix", False):
        return lambda: None
    new.lab_fix = True
    setattr(owner, name, new)
    return lambda: setattr(owner, name, original)


def skip_callback_telemetry() -> Callable[[], None]:
    """Tune's usage tag of the callbacks imports the MLflow, W&B, Comet and Aim integrations to name
    them (~1 s of every run with MLflow installed); the lab sends no usage stats: skip the tag."""
    from ray.air._internal import usage

    def tag_callbacks(_callbacks):
        return False

    return _patch(usage, "tag_callbacks", tag_callbacks)


def save_state_when_trials_end() -> Callable[[], None]:
    """Tune saves its experiment state every TUNE_GLOBAL_CHECKPOINT_S (by default >= 10 s apart): a trial
    that finished after the last save would run again after a SIGKILL. The lab also saves it at the end of
    the turn of Tune's loop in which a trial stopped (finished, failed or was stopped), before the registry
    callback writes that turn's records (lab.execution.callbacks): `lab resume` runs no finished trial again.
    (Saving at every turn costs ~70 ms a trivial trial, `benchmarks/tune_overhead.py`; at each trial's end
    about a tenth of that.) Tune's warning about frequent saves is off while the fix is in place."""
    from ray.tune.execution.tune_controller import TuneController

    stop = TuneController._schedule_trial_stop

    def _schedule_trial_stop(self, trial, exception=None):
        stop(self, trial, exception=exception)
        self._checkpoint_manager._should_force_sync_up = True  # read by this turn's `checkpoint()`

    undo = _patch(TuneController, "_schedule_trial_stop", _schedule_trial_stop)
    threshold = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"
    if threshold in os.environ:
        return undo
    os.environ[threshold] = "0"

    def restore():
        undo()
        os.environ.pop(threshold, None)

    return restore


def forget_stale_trial_decisions() -> Callable[[], None]:
    """Tune saves its controller's pending per-trial decisions with the experiment state and restores them:
    a trial that failed while a STOP was pending would be stopped again by the first checkpoint after
    `lab resume` restarted it (it ran one iteration, then ended TERMINATED short of its stop). A resumed
    experiment starts with no pending decision; everything else of the saved state is restored."""
    from ray.tune.execution.tune_controller import TuneController

    restore = TuneController.__setstate__

    def __setstate__(self, state):
        state = {k: v for k, v in state.items() if k not in ("_queued_trial_decisions", "_cached_trial_decisions")}
        restore(self, state)

    return _patch(TuneController, "__setstate__", __setstate__)


def pause_is_not_stop() -> Callable[[], None]:
    """Tune pauses a trial (PBT's waits and exploits) by stopping its actor; a pause that comes while the
    trial's checkpoint is being saved leaves a STOP cached for the trial, which stops it for good at its
    next checkpoint once it runs again (a PBT trial ended one iteration short, now and then under load).
    A pause leaves no such STOP behind."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.schedulers import TrialScheduler

    pause = TuneController._schedule_trial_pause

    def _schedule_trial_pause(self, trial, should_checkpoint=True):
        before = self._cached_trial_decisions.get(trial.trial_id)
        pause(self, trial, should_checkpoint=should_checkpoint)
        if before != TrialScheduler.STOP and self._cached_trial_decisions.get(trial.trial_id) == TrialScheduler.STOP:
            del self._cached_trial_decisions[trial.trial_id]

    return _patch(TuneController, "_schedule_trial_pause", _schedule_trial_pause)


def restore_from_a_checkpoint_that_exists() -> Callable[[], None]:
    """Tune's saved experiment state names each trial's checkpoints as of its last save; checkpoints made
    after that prune older ones (`num_to_keep`), so after a lost driver the state may name only checkpoints
    that are gone, and `lab resume` failed the trial ("Could not recover from checkpoint as it does not exist
    on storage anymore", 2 runs in 5 of the head-loss test). The lab restores such a trial from the newest
    sealed checkpoint in its folder (its counters read from the lab's manifest) that is not ahead of the
    trial's results in storage (`result.json`: a newer one would leave a gap in them), else from the start.
    On `lab resume`, a trial's first restore also passes over a named checkpoint that is ahead of its
    results: a driver that died may have synced the checkpoint's record but not the rows before it (a row
    missing in 1 multihost run of 3)."""
    from ray.tune.execution.tune_controller import TuneController

    schedule_restore = TuneController._schedule_trial_restore

    def _schedule_trial_restore(self, trial):
        named = trial.latest_checkpoint_result
        if named is not None:
            first_on_resume = _resume["on"] and trial.trial_id not in _resume["restored"]
            if _manifest_of(named.checkpoint.filesystem, named.checkpoint.path) is None:
                _restore_point_from_storage(trial, "is gone from storage")
            elif first_on_resume and _ahead_of_results(named, trial):
                _restore_point_from_storage(trial, "is ahead of its results in storage")
            _resume["restored"].add(trial.trial_id)
        return schedule_restore(self, trial)

    return _patch(TuneController, "_schedule_trial_restore", _schedule_trial_restore)


def _manifest_of(filesystem, path: str) -> str | None:
    """The text of the lab's manifest in the checkpoint at `path`, None when there is none (it was pruned)."""
    from lab.workload.checkpoints import MANIFEST

    try:
        with filesystem.open_input_stream(f"{path}/{MANIFEST}") as stream:
            return stream.read(1 << 22).decode("utf-8", "replace")
    except (OSError, ValueError):  # pyarrow raises FileNotFoundError (an OSError) for a missing file
        return None


def _ahead_of_results(named, trial) -> bool:
    """Whether a checkpoint Tune names was made after the last result row the trial's storage holds."""
    iteration = (named.metrics or {}).get("training_iteration")
    if not isinstance(iteration, int):
        return False
    storage = trial.storage
    return iteration > _last_recorded_iteration(storage.storage_filesystem, storage.trial_fs_path)


def _last_recorded_iteration(filesystem, trial_path: str) -> float:
    """The newest iteration the trial's results in storage hold (its `result.json`, written by a driver that
    may have died before syncing its last rows); 0 when it holds none. Not Tune's saved state: a dead driver
    may have synced that state but not the result file (the multihost head-loss test: one trial's rows then
    began at 2), and a resume from a checkpoint past the stored rows loses the rows before it for good."""
    import json

    try:
        with filesystem.open_input_stream(f"{trial_path}/result.json") as stream:
            text = stream.read(1 << 26).decode("utf-8", "replace")
    except (OSError, ValueError):
        text = ""
    for line in reversed(text.splitlines()):
        try:
            iteration = json.loads(line).get("training_iteration")
        except (ValueError, AttributeError):
            continue
        if isinstance(iteration, int) and not isinstance(iteration, bool) and iteration >= 0:
            return iteration
    return 0


def _restore_point_from_storage(trial, why: str = "is gone from storage") -> None:
    """Make the newest sealed checkpoint in the trial's folder its restore point (none: start afresh)."""
    import re

    import pyarrow.fs
    from ray.train._internal.checkpoint_manager import _TrainingResult
    from ray.tune import Checkpoint

    from lab import quiet
    from lab.workload.checkpoints import progress

    manager, storage = trial.run_metadata.checkpoint_manager, trial.storage
    filesystem = storage.storage_filesystem
    manager._checkpoint_results = [r for r in manager._checkpoint_results
                                   if _manifest_of(r.checkpoint.filesystem, r.checkpoint.path) is not None]
    manager._latest_checkpoint_result = None  # unless a checkpoint below qualifies: from the start
    try:
        entries = filesystem.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path))
    except OSError:
        entries = []
    folders = sorted((e for e in entries if e.type == pyarrow.fs.FileType.Directory
                      and re.fullmatch(r"checkpoint_\d{6}", e.base_name)), key=lambda e: e.base_name, reverse=True)
    recorded = _last_recorded_iteration(filesystem, storage.trial_fs_path)
    for entry in folders:
        manifest = _manifest_of(filesystem, entry.path)
        counters = progress(manifest) if manifest is not None else {}
        if "training_iteration" in counters and counters["training_iteration"] <= recorded:
            named = [r for r in manager._checkpoint_results if r.checkpoint.path == entry.path]
            found = named[0] if named else _TrainingResult(checkpoint=Checkpoint(entry.path, filesystem),
                                                           metrics=counters)
            if not named:
                manager._checkpoint_results.append(found)
            manager._latest_checkpoint_result = found
            storage.current_checkpoint_index = max(storage.current_checkpoint_index,
                                                   int(entry.base_name.split("_")[1]) + 1)
            break
    trial._restore_checkpoint_result = None
    print(f"lab: trial {trial.trial_id}: its recorded checkpoint {why}; resuming from "
          + (manager._latest_checkpoint_result.checkpoint.path if manager._latest_checkpoint_result else "the start"),
          file=quiet.terminal(), flush=True)


FIXES = (skip_callback_telemetry, restore_from_a_checkpoint_that_exists, save_state_when_trials_end, pause_is_not_stop, forget_stale_trial_decisions)

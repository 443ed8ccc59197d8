"""Narrow fixes to Ray Tune 2.60's `TuneController` (and one usage hook), applied before a Tuner is built.

Each patches one method in place, once, and says in its docstring what Tune does wrong and what the
lab needs instead; drop a fix when Tune's own code has it. `apply()` applies them all (lab.run.runner).
"""
from __future__ import annotations

import os


def apply() -> None:
    skip_callback_telemetry()
    save_state_when_trials_end()
    pause_is_not_stop()
    forget_stale_trial_decisions()


def skip_callback_telemetry() -> None:
    """Tune's usage tag of the callbacks imports the MLflow, W&B, Comet and Aim integrations to name
    them (~1 s of every run with MLflow installed); the lab sends no usage stats: skip the tag."""
    from ray.air._internal import usage

    usage.tag_callbacks = lambda callbacks: False


def save_state_when_trials_end() -> None:
    """Tune saves its experiment state every TUNE_GLOBAL_CHECKPOINT_S (by default >= 10 s apart): a trial
    that finished after the last save would run again after a SIGKILL. The lab also saves it at the end of
    the turn of Tune's loop in which a trial stopped (finished, failed or was stopped), before the registry
    callback writes that turn's records (lab.run.callbacks): `lab resume` runs no finished trial again.
    (Saving at every turn costs ~70 ms a trivial trial, `benchmarks/tune_overhead.py`; at each trial's end
    about a tenth of that.)"""
    from ray.tune.execution.tune_controller import TuneController

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # wanted here
    stop = TuneController._schedule_trial_stop
    if getattr(stop, "saves_state", False):
        return

    def _schedule_trial_stop(self, trial, exception=None):
        stop(self, trial, exception=exception)
        self._checkpoint_manager._should_force_sync_up = True  # read by this turn's `checkpoint()`

    _schedule_trial_stop.saves_state = True
    TuneController._schedule_trial_stop = _schedule_trial_stop


def forget_stale_trial_decisions() -> None:
    """Tune saves its controller's pending per-trial decisions with the experiment state and restores them:
    a trial that failed while a STOP was pending would be stopped again by the first checkpoint after
    `lab resume` restarted it (it ran one iteration, then ended TERMINATED short of its stop). A resumed
    experiment starts with no pending decision; everything else of the saved state is restored."""
    from ray.tune.execution.tune_controller import TuneController

    restore = TuneController.__setstate__
    if getattr(restore, "forgets_decisions", False):
        return

    def __setstate__(self, state):
        state = {k: v for k, v in state.items() if k not in ("_queued_trial_decisions", "_cached_trial_decisions")}
        restore(self, state)

    __setstate__.forgets_decisions = True
    TuneController.__setstate__ = __setstate__


def pause_is_not_stop() -> None:
    """Tune pauses a trial (PBT's waits and exploits) by stopping its actor; a pause that comes while the
    trial's checkpoint is being saved leaves a STOP cached for the trial, which stops it for good at its
    next checkpoint once it runs again (a PBT trial ended one iteration short, now and then under load).
    A pause leaves no such STOP behind."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.schedulers import TrialScheduler

    pause = TuneController._schedule_trial_pause
    if getattr(pause, "keeps_no_stop", False):
        return

    def _schedule_trial_pause(self, trial, should_checkpoint=True):
        before = self._cached_trial_decisions.get(trial.trial_id)
        pause(self, trial, should_checkpoint=should_checkpoint)
        if before != TrialScheduler.STOP and self._cached_trial_decisions.get(trial.trial_id) == TrialScheduler.STOP:
            del self._cached_trial_decisions[trial.trial_id]

    _schedule_trial_pause.keeps_no_stop = True
    TuneController._schedule_trial_pause = _schedule_trial_pause

"""lab.execution.tune_fixes: in place only around the lab's own Tuner.fit(), and only on the Ray they were written for."""
from __future__ import annotations

import pytest

from lab.execution import tune_fixes


def targets():
    """What the fixes replace, as it is now."""
    from ray.air._internal import usage
    from ray.tune.execution.tune_controller import TuneController

    return {"tag_callbacks": usage.tag_callbacks, **{name: vars(TuneController)[name] for name in (
        "_schedule_trial_stop", "_schedule_trial_pause", "__setstate__")}}


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

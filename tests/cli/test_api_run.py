"""lab.run, lab.load and lab.rerun for real: a small scikit-learn sweep on Ray Tune, from Python."""
from __future__ import annotations

import pytest

import lab
from lab.registry import Registry

SPEC = {
    "name": "api-small",
    "workload": "sklearn_cv",
    "params": {"dataset": "iris", "model": "logistic", "cv_folds": 3},
    "search": {"logisticregression__C": {"grid": [0.1, 1.0]}},
    "metric": "cv/accuracy",
    "stop": {"training_iteration": 1},
    "resources": {"cpu": 1},
}


def test_bad_input_raises_the_labs_errors_before_anything_runs(lab_home):
    with pytest.raises(lab.SpecError, match="unknown workload 'nope'"):
        lab.run({**SPEC, "workload": "nope"})
    with pytest.raises(lab.SpecError, match="unknown preset"):
        lab.run("no-such-preset")
    with pytest.raises(lab.SpecError):
        lab.run(SPEC, cv_folds="many")
    with pytest.raises(lab.LabError, match="preset name, a YAML path or a dict"):
        lab.run(42)
    assert not (lab_home / "registry.db").exists()  # nothing was recorded


@pytest.mark.slow
def test_run_trials_history_load_and_rerun(lab_home, ray_shared, capsys):
    result = lab.run(SPEC, seed=3)
    assert result.status == "completed" and result.num_trials == 2 and result.num_errors == 0
    out = capsys.readouterr().out
    assert "Result(" not in out  # returned, not printed: a notebook shows it once (its _repr_html_)
    assert repr(result).startswith(f"Result(experiment {result.experiment_id} 'api-small': completed, 2 trials")
    assert "Trial status" not in out  # Tune's tables only with verbose=
    trials = result.trials
    assert sorted(trials["config.logisticregression__C"]) == [0.1, 1.0] and (trials["cv/accuracy"] > 0.8).all()
    assert set(trials["status"]) == {"TERMINATED"}
    history = lab.history(result.experiment_id)
    assert len(history) == 2 and list(history["training_iteration"]) == [1, 1]

    record = Registry().experiment(result.experiment_id)
    assert record["spec"]["seed"] == 3 and record["dataset"] == "iris"
    env = record["environment"]
    assert {"scikit-learn", "numpy", "ray"} <= set(env["packages"]) and env["python"].startswith("3.")

    from sklearn.datasets import load_iris

    pipeline = lab.load(result.experiment_id)  # the best trial's fitted pipeline, through skops
    X, y = load_iris(return_X_y=True)
    assert (pipeline.predict(X) == y).mean() > 0.8

    again = lab.rerun(result.experiment_id)
    assert again.experiment_id != result.experiment_id and again.status == "completed"
    assert Registry().experiment(again.experiment_id)["spec"] == record["spec"]
    assert list(lab.leaderboard(workload="sklearn_cv", dataset="iris")["experiment_id"].unique()) != []

"""The same answer everywhere: unknown ids, data hashes before Ray, the resume hint and clock, lab.run's Result in a
notebook, RL budgets that end where they say."""
from __future__ import annotations

import pickle
import time

import pytest

import lab
from lab.registry import Registry
from tests.conftest import env_steps_to_the_end
from tests.conftest import lab as lab_cli


@pytest.mark.parametrize("call", [lambda: lab.trials(9999), lambda: lab.history(9999), lambda: lab.load(9999),
                                  lambda: lab.compare(9999, 9998), lambda: lab.tag(9999, a="b"),
                                  lambda: lab.note(9999, "text")],
                         ids=["trials", "history", "load", "compare", "tag", "note"])
def test_an_unknown_id_raises_the_same_error_from_every_call(lab_home, call):
    Registry().check()
    with pytest.raises(lab.UnknownExperiment, match="^no experiment with id 999[89] in "):
        call()


# ------------------------------------------------------------------ data hashes before Ray
CSV_SPEC = """\
name: csv-small
workload: sklearn_cv
params: {{dataset: {csv}, target: label, model: logistic, cv_folds: 2}}
metric: cv/accuracy
stop: {{training_iteration: 1}}
resources: {{cpu: 1}}
"""


@pytest.fixture
def recorded_csv(lab_home, tmp_path):
    """(experiment id, CSV path) of a recorded (never run) experiment over a CSV file, as `lab run` records it."""
    from lab import spec as specs

    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    (tmp_path / "spec.yaml").write_text(CSV_SPEC.format(csv=csv))
    (spec,) = specs.load(str(tmp_path / "spec.yaml"))
    assert spec.params["data_sha256"]
    registry = Registry()
    experiment_id = registry.create_experiment(spec.to_dict(), user="tester", host="here")
    (tmp_path / "runs").mkdir()
    registry.update_experiment(experiment_id, status="interrupted", storage_path=str(tmp_path / "runs"))
    return experiment_id, csv


@pytest.mark.parametrize("command", ["rerun", "resume"])
def test_rerun_and_resume_refuse_a_changed_data_file_before_ray_starts(recorded_csv, command):
    experiment_id, csv = recorded_csv
    csv.write_text(csv.read_text() + "99,0,1\n")
    started = time.monotonic()
    result = lab_cli(command, str(experiment_id), "--address", "127.0.0.1:1")  # no Ray there: must not matter
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"lab: error: {csv} changed since the experiment was recorded"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and time.monotonic() - started < 30
    assert [e["id"] for e in Registry().experiments()] == [experiment_id]  # nothing new recorded


# ------------------------------------------------------------------ interrupt and resume
def test_an_interrupted_experiment_says_how_to_resume_it(lab_home, capsys):
    from lab.cli.output import print_outcomes
    from lab.execution.runner import Outcome

    registry = Registry()
    experiment_id = registry.create_experiment({"name": "cut", "workload": "sklearn_cv", "metric": "cv/accuracy",
                                                "mode": "max"})
    print_outcomes([Outcome(experiment_id, "cut", "interrupted", 3, 0, None, "")])
    assert f"lab resume {experiment_id}" in capsys.readouterr().out.replace(f"lab tensorboard {experiment_id}", "")


def test_a_resumed_runs_clock_starts_at_zero():
    import io

    from lab.execution.progress import ProgressCallback

    callback = ProgressCallback("score", "max")
    callback._started -= 500.0  # the interrupted run had been going for 500 s
    resumed = pickle.loads(pickle.dumps(callback))  # as Tuner.restore reads it back from tuner.pkl
    resumed.stream = io.StringIO()
    resumed._print("trial x  iter 1")
    seconds = float(resumed.stream.getvalue().split("s]")[0].strip("[ "))
    assert seconds < 5.0


# ------------------------------------------------------------------ lab.run in a notebook
def test_a_result_shows_itself_once_in_a_notebook():
    import pandas as pd

    from lab.api import Result

    result = Result(3, "small", "completed", 2, 0, {"trial_id": "t1", "best_metric": 0.97},
                    pd.DataFrame({"trial_id": ["t1", "t2"], "cv/accuracy": [0.97, 0.9]}))
    html = result._repr_html_()
    assert "experiment 3 &#x27;small&#x27;: completed" in html and "<table" in html and "t2" in html


# ------------------------------------------------------------------ RL budgets
def test_ppo_ends_at_its_budget_give_or_take_one_step_of_the_vector_env(tmp_path):
    from lab.workload.testing import make

    params = {"num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 1, "num_minibatches": 1,
              "actor_fc_layers": [8], "value_fc_layers": [8], "env_steps_per_step": 64, "eval_episodes": 1,
              "max_env_steps": 192, "seed": 0}
    steps = env_steps_to_the_end(make("ppo", params, trial_dir=str(tmp_path)))
    assert 192 <= steps[-1] <= 192 + params["num_envs"], steps


@pytest.mark.parametrize("name, params", [
    ("dqn", {"collect_steps_per_iteration": 64}),  # NumPy collection (agents/numpy_collect.py)
    ("c51", {"collect_steps_per_iteration": 64}),
    ("dqn", {"dueling": True, "collect_steps_per_iteration": 64}),  # the TF-Agents driver (no NumPy collection)
    ("sac", {"collect_steps_per_iteration": 64}),
])
def test_off_policy_agents_end_at_their_budget_give_or_take_one_step_of_the_vector_env(name, params, tmp_path):
    """Rounds of 64 env steps against a budget of 250: the last round stops at the budget (it ran to 256)."""
    from lab import workload as workloads
    from lab.workload.testing import make

    budget = 250
    workload = make(name, {**workloads.get(name).test_params, **params, "env_steps_per_step": 100,
                           "max_env_steps": budget, "seed": 0}, trial_dir=str(tmp_path))
    steps = env_steps_to_the_end(workload)
    assert budget <= steps[-1] <= budget + workload.config.num_envs, steps

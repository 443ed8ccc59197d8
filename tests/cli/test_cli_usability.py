"""The CLI as a new user meets it: overrides that say what they do, one number syntax, parameters you can
find, every problem at once, machine-readable output, tidy tables, honest figures, TensorBoard's port."""
from __future__ import annotations

import hashlib
import json
import socket

import numpy as np
import pytest

from lab import spec as specs
from lab.errors import LabError, SpecError
from lab.registry import Registry
from tests.conftest import lab, lab_in_process

NO_SEARCH = """
name: same
workload: sklearn_cv
params: {dataset: iris, model: logistic, cv_folds: 3}
metric: cv/accuracy
num_samples: 3
stop: {training_iteration: 1}
"""


def write(tmp_path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------ 1. overrides do what they say
def test_set_on_a_searched_key_replaces_the_search_and_says_so_in_one_line():
    said = []
    (spec,) = specs.load("svc-digits", ["svc__C=5"], say=said.append)
    assert "svc__C" not in spec.search and spec.params["svc__C"] == 5
    assert len(said) == 1 and "replaces the search over 'svc__C'" in said[0] and "every trial gets 5" in said[0]
    result = lab_in_process("run", "svc-digits", "--set", "svc__C=5", "--dry-run")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("lab: ")]
    assert len(notes) == 1 and "replaces the search" in notes[0]


def test_identical_trials_are_warned_about_or_seeded_per_trial(tmp_path):
    said = []
    (spec,) = specs.load(write(tmp_path, NO_SEARCH), say=said.append)
    assert len(said) == 1 and "3 trials of 'same' would be identical" in said[0]
    said.clear()
    (spec,) = specs.load(write(tmp_path, NO_SEARCH), ["seed=per_trial"], say=said.append)
    assert said == []
    assert spec.search == {"seed": {"grid": [0, 1, 2]}} and spec.num_samples == 1
    assert spec.to_dict()["search"]["seed"] == {"grid": [0, 1, 2]}  # the recorded spec says what ran
    with pytest.raises(SpecError, match="per_trial .* needs searcher random"):
        specs.load(write(tmp_path, NO_SEARCH + "searcher: {type: optuna}\n"), ["seed=per_trial"])


def test_readme_override_example_varies_its_trials():
    """README: `lab run dqn-cartpole --set learning_rate=3e-4 --set seed=per_trial` is three seeds, not three copies."""
    said = []
    (spec,) = specs.load("dqn-cartpole", ["learning_rate=3e-4", "seed=per_trial"], say=said.append)
    assert spec.params["learning_rate"] == 3e-4 and spec.search == {"seed": {"grid": [0, 1, 2]}}
    assert len(said) == 1 and "replaces the search over 'learning_rate'" in said[0]


# ------------------------------------------------------------------ 2. one number syntax
NUMBERS = """
name: numbers
workload: sklearn_cv
params: {dataset: iris, model: svc, test_size: 2.5e-1, cv_folds: 3e0}
search:
  svc__C: {loguniform: [1e-2, 1E2]}
  svc__tol: {uniform: [1e-4, 1E-3]}
  svc__gamma: {grid: [1e-2, 1E1]}
  svc__coef0: {choice: [3e-4, -2E-1]}
  svc__max_iter: {randint: [1e1, 1E2]}
metric: cv/accuracy
scheduler: {type: asha, max_t: 1E1, reduction_factor: 3e0}
stop: {training_iteration: 2e1, cv/accuracy: 9.9e-1}
resources: {cpu: 5e-1}
reference: {metric: cv/accuracy, score: 9.7e-1}
time_budget_s: 1e2
"""


def test_exponent_numbers_are_numbers_in_yaml_and_in_set(tmp_path):
    (spec,) = specs.load(write(tmp_path, NUMBERS))
    assert spec.search["svc__C"] == {"loguniform": [0.01, 100.0]}
    assert spec.search["svc__tol"] == {"uniform": [1e-4, 1e-3]}
    assert spec.search["svc__gamma"] == {"grid": [0.01, 10.0]}
    assert spec.search["svc__coef0"] == {"choice": [3e-4, -0.2]}
    assert spec.search["svc__max_iter"] == {"randint": [10, 100]}  # whole bounds of randint are ints
    assert spec.params["test_size"] == 0.25
    assert spec.scheduler.max_t == 10 and spec.scheduler.reduction_factor == 3.0
    assert spec.stop == {"training_iteration": 20.0, "cv/accuracy": 0.99}
    assert spec.resources.cpu == 0.5 and spec.reference.score == 0.97 and spec.time_budget_s == 100.0
    (overridden,) = specs.load(write(tmp_path, NUMBERS), ["svc__C=1E2", "test_size=2e-1", "scheduler.max_t=2e1"])
    assert overridden.params["svc__C"] == 100.0 and overridden.params["test_size"] == 0.2
    assert overridden.scheduler.max_t == 20
    # the loader stays safe_load: plain data only; quoted numbers stay strings
    assert specs.parse_yaml("a: '1e2'\nb: 1e\nc: .5\nd: 1_000", "x") == {"a": "1e2", "b": "1e", "c": 0.5, "d": 1000}
    with pytest.raises(SpecError):
        specs.parse_yaml("a: !!python/object/apply:os.system [echo]", "x")


# ------------------------------------------------------------------ 3. parameters you can find
def test_params_lists_type_default_meaning_and_step_names():
    result = lab_in_process("params", "sklearn_cv", "--set", "model=random_forest", "--json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    params = {p["name"]: p for p in view["parameters"]}
    assert params["cv_folds"] == {"name": "cv_folds", "type": "int", "default": 5,
                                  "help": "k of the (stratified, for classification) k-fold CV"}
    assert params["model"]["default"] == "random_forest"
    assert all(p["help"] for p in view["parameters"]), [p["name"] for p in view["parameters"] if not p["help"]]
    assert view["searchable"]["randomforestclassifier"]["randomforestclassifier__max_depth"] is None
    text = lab_in_process("params", "dqn")
    assert text.returncode == 0 and "learning_rate" in text.stdout and "discount factor" in text.stdout
    preset = json.loads(lab_in_process("params", "svc-digits", "--json").stdout)
    assert preset["preset"] == "svc-digits" and "svc__C" in preset["search"] and "svc" in preset["searchable"]
    wrong = lab_in_process("params", "sklearn_cvv")
    assert wrong.returncode == 2 and "did you mean 'sklearn_cv'" in wrong.stderr


def test_presets_name_shows_the_resolved_spec():
    result = lab_in_process("presets", "svc-digits")
    assert result.returncode == 0, result.stderr
    assert "name: svc-digits" in result.stdout and "scheduler:" in result.stdout  # defaults filled in
    (resolved,) = json.loads(lab_in_process("presets", "svc-digits", "--json").stdout)
    assert resolved["workload"] == "sklearn_cv" and resolved["num_samples"] >= 1
    listing = json.loads(lab_in_process("presets", "--json").stdout)
    assert {"name": "svc-digits", "workload": "sklearn_cv"}.items() <= next(
        p for p in listing if p["name"] == "svc-digits").items()


@pytest.mark.parametrize("source, overrides, suggestion", [
    ("random-forest-wine", ["max_depth=3"], "'randomforestclassifier__max_depth'"),
    ("dqn-cartpole", ["lr=3e-4"], "'learning_rate'"),
    ("svc-digits", ["C=3"], "'svc__C'"),
    ("svc-digits", ["cv-folds=3"], "'cv_folds'"),
])
def test_unknown_names_get_suggestions_in_any_spelling(source, overrides, suggestion):
    with pytest.raises(SpecError) as info:
        specs.load(source, overrides)
    assert f"did you mean {suggestion}" in str(info.value) or f"did you mean {suggestion[:-1]}" in str(info.value)
    assert len(str(info.value)) < 200  # no dump of every name


def test_every_problem_of_a_spec_is_reported_at_once(tmp_path, lab_home):
    bad = NO_SEARCH.replace("cv_folds: 3}", "cv_folds: 3, lr: 0.1, refit: maybe}").replace(
        "num_samples: 3", "num_samples: many\nscheduler: {type: ash}")
    result = lab_in_process("run", write(tmp_path, bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("lab: error: ") for line in lines), result.stderr
    text = result.stderr
    for problem in ("'num_samples'", "scheduler type must be one of", "'lr'", "'refit'"):
        assert problem in text, text
    assert len(lines) == 4
    assert not (lab_home / "registry.db").exists() or not Registry().experiments()


# ------------------------------------------------------------------ 4, 5. JSON, all final metrics, tidy tables
def record_regression_experiment() -> int:
    spec = specs.load("ridge-diabetes")[0].to_dict()
    spec.update(name="houses", metric="cv/neg_root_mean_squared_error")
    registry = Registry()
    experiment_id = registry.create_experiment(spec, storage_path="/tmp/nowhere")
    registry.update_experiment(experiment_id, status="completed")
    for trial_id, rmse in (("a1", 29320.5), ("a2", 31000.25)):
        result = {"cv/neg_root_mean_squared_error": -rmse, "cv/neg_root_mean_squared_error_std": 812.0,
                  "test/neg_root_mean_squared_error": -rmse - 100, "test/r2": 0.8123, "training_iteration": 1}
        registry.upsert_trial(experiment_id, trial_id, status="TERMINATED", config={"ridge__alpha": 1.0},
                              iterations=1, last_result=result, best_result=result, best_metric=-rmse)
    return experiment_id


def test_json_output_has_a_stable_shape(lab_home):
    experiment_id = record_regression_experiment()
    (row,) = json.loads(lab_in_process("ls", "--json").stdout)
    assert row["id"] == experiment_id and row["status"] == "completed" and row["num_trials"] == 2
    shown = json.loads(lab_in_process("show", str(experiment_id), "--json").stdout)
    assert shown["id"] == experiment_id and shown["spec"]["name"] == "houses" and len(shown["trials"]) == 2
    best = json.loads(lab_in_process("best", str(experiment_id), "--json").stdout)
    assert "id" not in best and best["experiment_id"] == experiment_id and best["trial_id"] == "a1"
    assert best["metrics"]["test/r2"] == 0.8123 and best["best_metric"] == -29320.5
    assert set(best) == {"experiment_id", "metric", "mode", "trial_id", "status", "iterations", "best_metric",
                         "config", "metrics", "best_result", "checkpoint_path", "logdir", "error", "started_at",
                         "updated_at"}
    assert json.loads(lab_in_process("ls", "--json").stdout) == [row]


def test_tables_show_every_final_metric_in_its_natural_sign(lab_home):
    experiment_id = record_regression_experiment()
    best = lab_in_process("best", str(experiment_id))
    assert best.returncode == 0, best.stderr
    assert "cv/root_mean_squared_error = 29320" in best.stdout and "e+04" not in best.stdout
    assert "test/r2" in best.stdout and "0.8123" in best.stdout and "29420" in best.stdout  # test RMSE, positive
    shown = lab_in_process("show", str(experiment_id)).stdout
    assert "-29320" not in shown and "29320" in shown and "31000" in shown and "test/r2" in shown
    header = next(line for line in shown.splitlines() if line.startswith("TRIAL"))
    assert "ERROR" not in header  # no trial failed: no empty column


def test_eval_reports_the_frames_the_gif_holds(tmp_path):
    from agents.evaluate import write_video

    still, moved = np.zeros((20, 30, 3), np.uint8), np.full((20, 30, 3), 200, np.uint8)
    written = write_video(str(tmp_path / "run.gif"), [still] * 5 + [moved] * 5, fps=50)
    assert written == 2  # the GIF encoder merged the repeats: 2 frames, not the 10 rendered


def test_csv_data_is_recorded_by_absolute_path_and_content_hash(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = ["a,b,price"] + [f"{x:.3f},{y:.3f},{3 * x + y:.3f}" for x, y in rng.normal(size=(40, 2))]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    spec_text = NO_SEARCH.replace("dataset: iris, model: logistic", "dataset: houses.csv, target: price, model: ridge")
    spec_text = spec_text.replace("metric: cv/accuracy", "metric: cv/neg_root_mean_squared_error")  # a regressor's
    (spec,) = specs.load(write(tmp_path, spec_text.replace("num_samples: 3", "num_samples: 1")))
    digest = hashlib.sha256((tmp_path / "houses.csv").read_bytes()).hexdigest()
    assert spec.params["dataset"] == str(tmp_path / "houses.csv") and spec.params["data_sha256"] == digest
    (tmp_path / "houses.csv").write_text("\n".join(lines[:-1]) + "\n")  # the file changes afterwards
    with pytest.raises(SpecError, match="changed since the experiment was recorded"):
        specs.validated(spec.to_dict(), "rerun")
    from classical import datasets
    from lab.errors import DataError

    with pytest.raises(DataError, match="changed since"):
        datasets.load(spec.params["dataset"], target="price", sha256=digest)


# ------------------------------------------------------------------ 6. TensorBoard's port
def test_tensorboard_port_taken(monkeypatch, lab_home, tmp_path):
    from lab.results import board

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LabError, match=f"port {port} on 127.0.0.1 is taken"):
            board.choose_port("127.0.0.1", port)
        said = []
        monkeypatch.setattr(board, "DEFAULT_PORT", port)
        chosen = board.choose_port("127.0.0.1", None, say=said.append)
        assert chosen != port and board.port_is_free("127.0.0.1", chosen) and said == [f"port {port} is taken: using {chosen}"]
        registry = Registry()
        folder = lab_home / "experiments" / "exp"  # registry folders count only under the storage root
        folder.mkdir(parents=True)
        registry.create_experiment(specs.load("svc-digits")[0].to_dict(), storage_path=str(folder))
        result = lab("tensorboard", "--port", str(port))
        assert result.returncode == 2 and result.stdout == ""  # no URL of a server that is not ours
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "is taken" in result.stderr


def test_leaderboard_json(lab_home):
    experiment_id = record_regression_experiment()
    board = json.loads(lab_in_process("leaderboard", "--workload", "sklearn_cv", "--json").stdout)
    assert board["metric"] == "cv/neg_root_mean_squared_error" and board["mode"] == "max"
    assert [(r["rank"], r["experiment_id"], r["trial_id"]) for r in board["rows"]] == [(1, experiment_id, "a1"),
                                                                                      (2, experiment_id, "a2")]

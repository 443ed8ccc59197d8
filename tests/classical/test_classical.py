"""Classical workloads: CSV data and its bad inputs, GridSearchCV parity, `lab baselines` end to end."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from classical.cross_validation import CrossValidatedPipeline
from lab.errors import SpecError
from lab.workload import TrialContext
from tests.conftest import lab


@pytest.fixture
def houses(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"size": rng.normal(100, 20, n), "rooms": rng.integers(1, 6, n).astype(float),
                          "city": rng.choice(["a", "b", "c"], n)})
    frame.loc[::17, "size"] = np.nan
    frame["price"] = frame["size"].fillna(100) * 3 + frame["rooms"] * 10 + (frame.city == "a") * 50
    frame["label"] = (frame["price"] > frame["price"].median()).map({True: "high", False: "low"})
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    return path, frame


def run_once(params: dict) -> dict:
    workload = CrossValidatedPipeline(CrossValidatedPipeline.make_config(params), TrialContext("."))
    workload.setup()
    return workload.step()


def test_csv_regression_and_classification(houses):
    path, _ = houses
    regression = run_once({"dataset": str(path), "target": "price", "model": "ridge"})
    assert regression["cv/neg_root_mean_squared_error"] > -10
    classification = run_once({"dataset": str(path), "target": "label", "model": "logistic", "cv_folds": 3})
    assert classification["cv/accuracy"] > 0.8


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["price"]), "has no column 'price'"),
    (lambda f: f.assign(empty=np.nan), "column 'empty' is empty"),
    (lambda f: f.assign(rooms=f["rooms"].astype(object).where(f.index != 5, "lots")),
     "column 'rooms' is numeric but has non-numeric value 'lots' on line 7"),
])
def test_bad_csv_files(houses, tmp_path, change, message):
    _, frame = houses
    bad = tmp_path / "bad.csv"
    change(frame).to_csv(bad, index=False)
    with pytest.raises(SpecError, match=message):
        CrossValidatedPipeline.make_config({"dataset": str(bad), "target": "price", "model": "ridge"})


def test_missing_csv_and_missing_target(tmp_path):
    with pytest.raises(SpecError, match="CSV file not found"):
        CrossValidatedPipeline.make_config({"dataset": str(tmp_path / "nope.csv"), "target": "y"})
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SpecError, match="name the label column"):
        CrossValidatedPipeline.make_config({"dataset": str(tmp_path / "x.csv")})


def test_grid_parity_with_gridsearchcv():
    """Same grid, same folds: the lab's per-config trials find GridSearchCV's best parameters and score."""
    from sklearn.model_selection import GridSearchCV

    grid = {"svc__C": [0.1, 1.0, 10.0], "svc__gamma": [0.001, 0.01, 0.1]}
    base = {"dataset": "digits", "model": "svc", "cv_folds": 4, "seed": 3}
    scores = {}
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        scores[values] = run_once({**base, **params})["cv/accuracy"]
    best_values = max(scores, key=scores.get)

    reference = CrossValidatedPipeline(CrossValidatedPipeline.make_config(base), TrialContext("."))
    reference.setup()
    search = GridSearchCV(reference.pipeline, grid, cv=reference.cv_splitter(), scoring="accuracy")
    search.fit(reference.X_train, reference.y_train)
    assert search.best_params_ == dict(zip(grid, best_values))
    assert search.best_score_ == pytest.approx(scores[best_values], abs=1e-12)


@pytest.mark.slow
def test_lab_baselines_ranks_models_in_one_experiment(houses):
    path, _ = houses
    result = lab("baselines", str(path), "--target", "label", "--models", "logistic,knn,decision_tree", "--cv", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout[result.stdout.index("RANK"):].splitlines()
    assert len(table) == 4 and {"logistic", "knn", "decision_tree"} == {line.split()[1] for line in table[1:]}
    assert "baselines-houses" in lab("ls").stdout


def test_lab_baselines_bad_target(houses, lab_home):
    path, _ = houses
    result = lab("baselines", str(path), "--target", "prize")
    assert result.returncode == 2 and "has no column 'prize' (did you mean 'price'" in result.stderr

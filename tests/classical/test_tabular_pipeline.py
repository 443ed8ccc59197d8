"""Chapter 2's pipeline: ratio, log and cluster-similarity columns, a stratified split, skops export."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from classical._transformers import ClusterSimilarity, preprocessor
from classical.cross_validation import CrossValidatedPipeline, load_pipeline
from lab.errors import SpecError
from lab.workload import TrialContext
from tests.conftest import lab


@pytest.fixture
def districts(tmp_path):
    """A housing-like CSV: coordinates in 3 towns, rooms, households, a category, a few missing values."""
    rng = np.random.default_rng(0)
    n = 300
    towns = rng.integers(0, 3, n)
    frame = pd.DataFrame({
        "latitude": np.array([34.0, 37.5, 40.0])[towns] + rng.normal(0, 0.2, n),
        "longitude": np.array([-118.0, -122.0, -120.0])[towns] + rng.normal(0, 0.2, n),
        "total_rooms": rng.integers(500, 5000, n).astype(float),
        "households": rng.integers(100, 1000, n).astype(float),
        "population": rng.lognormal(7, 1, n),
        "ocean_proximity": rng.choice(["NEAR BAY", "INLAND", "<1H OCEAN"], n),
    })
    frame.loc[::23, "total_rooms"] = np.nan
    frame["median_income"] = rng.gamma(3, 1.3, n)
    frame["median_house_value"] = (50_000 * frame["median_income"] + 80_000 * (towns == 1)
                                   + 20_000 * frame["total_rooms"].fillna(2500) / frame["households"]
                                   + rng.normal(0, 10_000, n))
    path = tmp_path / "districts.csv"
    frame.to_csv(path, index=False)
    return path, frame


BOOK = {"ratios": ["total_rooms/households"], "log_columns": ["population"],
        "cluster_columns": ["latitude", "longitude"], "n_clusters": 3, "stratify_column": "median_income"}


def test_cluster_similarity_finds_the_towns(districts):
    _, frame = districts
    similarity = ClusterSimilarity(n_clusters=3, gamma=1.0, random_state=0).fit(frame[["latitude", "longitude"]])
    out = similarity.transform(frame[["latitude", "longitude"]])
    assert out.shape == (len(frame), 3) and np.all((0 < out) & (out <= 1))
    from sklearn.metrics import adjusted_rand_score

    towns = np.abs(frame[["latitude"]].to_numpy() - [34.0, 37.5, 40.0]).argmin(axis=1)
    assert adjusted_rand_score(towns, out.argmax(axis=1)) == 1.0  # one centre per town
    assert list(similarity.get_feature_names_out()) == [f"cluster_{i}_similarity" for i in range(3)]


def test_preprocessor_adds_the_book_columns(districts):
    _, frame = districts
    X = frame.drop(columns=["median_house_value"])
    transformer = preprocessor(X, ["total_rooms/households"], ["population"], ["latitude", "longitude"], n_clusters=3)
    out = transformer.fit_transform(X)
    names = list(transformer.get_feature_names_out())
    assert out.shape == (len(X), len(names))
    assert "ratio_total_rooms_per_households__ratio" in names and "log__population" in names
    assert sum(n.startswith("geo__cluster_") for n in names) == 3
    assert sum(n.startswith("cat__ocean_proximity_") for n in names) == 3
    assert not np.isnan(np.asarray(out, dtype=float)).any()  # imputed


def test_pipeline_learns_and_splits_stratified(districts, tmp_path):
    path, frame = districts
    params = {"dataset": str(path), "target": "median_house_value", "model": "random_forest_regressor",
              "cv_folds": 3, **BOOK}
    workload = CrossValidatedPipeline(CrossValidatedPipeline.make_config(params), TrialContext(str(tmp_path)))
    workload.setup()
    metrics = workload.step()
    assert metrics["test/r2"] > 0.8
    # the income strata keep their share in the test split (the book's point about stratified sampling)
    bins = pd.qcut(frame["median_income"].rank(method="first"), 5, labels=False)
    test_share = bins.loc[workload.X_test.index].value_counts(normalize=True).sort_index()
    assert np.allclose(test_share.to_numpy(), 0.2, atol=0.01)
    # export: skops with the custom transformer, loaded back through the trusted-type check
    out = tmp_path / "export"
    out.mkdir()
    loaded = load_pipeline(workload.export(str(out)))
    assert np.allclose(loaded.predict(workload.X_test), workload.pipeline.predict(workload.X_test))
    about = json.loads((out / "model.json").read_text())
    assert about["format"] == "skops" and about["model"] == "random_forest_regressor"


@pytest.mark.parametrize("change, message", [
    ({"ratios": ["total_rooms/household"]}, "no column 'household' \\(did you mean 'households'"),
    ({"ratios": ["total_rooms"]}, "must look like 'numerator/denominator'"),
    ({"log_columns": ["ocean_proximity"]}, "column 'ocean_proximity' is not numeric"),
    ({"cluster_columns": ["lat"]}, "no column 'lat'"),
    ({"stratify_column": "income"}, "no column 'income' to stratify on"),
    ({"n_clusters": 1}, "n_clusters must be at least 2"),
])
def test_bad_pipeline_options_are_one_line_errors(districts, change, message):
    path, _ = districts
    params = {"dataset": str(path), "target": "median_house_value", "model": "ridge", **change}
    with pytest.raises(SpecError, match=message):
        CrossValidatedPipeline.make_config(params)


def test_frame_options_need_named_columns():
    with pytest.raises(SpecError, match="need named columns"):
        CrossValidatedPipeline.make_config({"dataset": "digits", "ratios": ["a/b"]})


def test_autompg_preset_data_is_a_frame():
    config = CrossValidatedPipeline.make_config({"dataset": "autompg", "model": "ridge", "ratios": ["horsepower/weight"]})
    workload = CrossValidatedPipeline(config, TrialContext("."))
    workload.setup()
    assert set(workload.X_train["origin"]) == {"usa", "europe", "japan"}
    assert workload.step()["cv/neg_root_mean_squared_error"] > -4.0  # mpg within 4 on average


@pytest.mark.slow
def test_lab_export_of_a_recorded_sweep(districts, lab_home, tmp_path):
    path, frame = districts
    run = lab("run", "svc-digits", "--set", "dataset=" + str(path), "--set", "target=median_house_value",
              "--set", "model=ridge", "--set", "metric=cv/neg_root_mean_squared_error",
              "--set", "reference.metric=cv/neg_root_mean_squared_error", "--set", "reference.score=-100000",
              "--set", "search={ridge__alpha: {grid: [0.1, 10.0]}}", "--set", "ratios=[total_rooms/households]",
              "--set", "cluster_columns=[latitude, longitude]", "--set", "n_clusters=3")
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "model"
    exported = lab("export", "1", "--out", str(out))
    assert exported.returncode == 0, exported.stderr[-2000:]
    pipeline = load_pipeline(str(out / "pipeline.skops"))
    X = frame.drop(columns=["median_house_value"])
    assert np.corrcoef(pipeline.predict(X), frame["median_house_value"])[0, 1] > 0.8
    missing = lab("export", "1", "--trial", "nope", "--out", str(out), "--force")
    assert missing.returncode == 2 and "has no trial 'nope'" in missing.stderr
    assert load_pipeline(str(out)) is not None  # a failed export leaves the folder as it was

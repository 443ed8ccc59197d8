"""The model catalogue, the classification metrics and figures, reducers, clustering and anomaly detection.

Fast: tiny data (iris, a slice of diabetes, digits subsets), a few seconds in all.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from classical import baselines, models
from classical.anomaly import AnomalyDetection
from classical.clustering import Clustering
from classical.cross_validation import CrossValidatedPipeline, _seed_estimators
from lab import spec as specs
from lab import workload as workloads
from lab.errors import SpecError
from lab.workload import TrialContext


class FigureLogger:
    """A stand-in for lab.workload.tboard.MediaLogger that only remembers the tags."""

    def __init__(self):
        self.tags = []

    def figure(self, tag, figure):
        import matplotlib.pyplot as plt

        self.tags.append(tag)
        plt.close(figure)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """OpenMP (histogram boosting, k-means) on a busy shared machine: one thread is 10-100x faster here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def run(cls, params: dict, logger=None, trial_dir: str = "."):
    workload = cls(cls.make_config(params), TrialContext(trial_dir, logger=logger))
    workload.setup()
    return workload, workload.step()


# ------------------------------------------------------------------ the catalogue
@pytest.fixture(scope="module")
def tiny():
    from sklearn.datasets import load_diabetes, load_iris

    X, y = load_iris(return_X_y=True)
    Xr, yr = load_diabetes(return_X_y=True)
    return {"classification": (X[::3], y[::3]), "regression": (Xr[:60], yr[:60])}  # 50 iris rows, 17 a class


@pytest.mark.parametrize("name", models.names())
def test_every_catalogue_model_fits_and_predicts(name, tiny):
    from sklearn.base import is_classifier

    pipeline = models.make(name)
    _seed_estimators(pipeline, 0)
    X, y = tiny["classification" if is_classifier(pipeline) else "regression"]
    pipeline.fit(X, y)
    assert pipeline.predict(X).shape == y.shape
    assert math.isfinite(pipeline.score(X, y))
    assert all("__" not in step for step, _ in pipeline.steps)  # make_pipeline's names: `step__param` works


def test_searchable_names_and_baseline_lists():
    assert "polynomialfeatures__degree" in models.make("polynomial_regression").get_params()
    assert "adaboostclassifier__estimator__max_depth" in models.make("ada_boost").get_params()
    assert "votingclassifier__rf__n_estimators" in models.make("voting_classifier").get_params()
    assert models.make("voting_classifier").get_params()["votingclassifier__voting"] == "soft"
    assert set(baselines.CLASSIFIERS + baselines.REGRESSORS) <= set(models.names())
    with pytest.raises(SpecError, match="unknown model 'softmax' \\(did you mean 'softmax_regression'"):
        CrossValidatedPipeline.make_config({"model": "softmax"})


# ------------------------------------------------------------------ classification metrics and figures
def test_multiclass_metrics_and_figures():
    logger = FigureLogger()
    _, metrics = run(CrossValidatedPipeline, {"dataset": "iris", "model": "logistic", "cv_folds": 3}, logger)
    for key in ("test/precision", "test/recall", "test/f1", "test/roc_auc"):
        assert 0.8 < metrics[key] <= 1.0, key
    assert logger.tags == ["test/confusion_matrix", "test/roc_curve", "test/pr_curve"]


def test_binary_metrics_from_a_decision_function():
    _, metrics = run(CrossValidatedPipeline, {"dataset": "breast_cancer", "subset": 200, "model": "linear_svc",
                                              "cv_folds": 3})
    assert metrics["test/roc_auc"] > 0.9 and metrics["test/f1"] > 0.85


def test_no_auc_without_scores_and_figures_can_be_switched_off():
    logger = FigureLogger()
    _, metrics = run(CrossValidatedPipeline, {"dataset": "iris", "model": "voting_classifier", "cv_folds": 2,
                                              "votingclassifier__voting": "hard", "log_figures": False}, logger)
    assert "test/f1" in metrics and "test/roc_auc" not in metrics  # hard voting: no predict_proba
    assert logger.tags == []


def test_regression_reports_r2_and_no_classification_metrics():
    _, metrics = run(CrossValidatedPipeline, {"dataset": "diabetes", "model": "polynomial_regression",
                                              "polynomialfeatures__degree": 1})
    assert 0.2 < metrics["test/r2"] < 0.7 and "test/f1" not in metrics


# ------------------------------------------------------------------ dimensionality reduction
@pytest.mark.parametrize("reduce, n_components, variance", [
    ("pca", 0.9, True), ("incremental_pca", 10, True), ("kernel_pca", 10, False), ("lle", 10, False),
])
def test_reducers_sit_before_the_estimator(reduce, n_components, variance):
    workload, metrics = run(CrossValidatedPipeline, {"dataset": "digits", "subset": 300, "model": "logistic",
                                                     "cv_folds": 2, "reduce": reduce, "n_components": n_components})
    assert [name for name, _ in workload.pipeline.steps][0] == "standardscaler"
    assert workload.pipeline.steps[-1][0] == "logisticregression"
    assert metrics["cv/accuracy"] > 0.6
    assert ("charts/explained_variance" in metrics) == variance
    if reduce == "pca":
        assert metrics["charts/explained_variance"] >= 0.9 and 10 < metrics["charts/n_components"] < 64
    else:
        assert metrics["charts/n_components"] == 10


def test_reducer_params_are_searchable():
    config = CrossValidatedPipeline.make_config({"model": "svc", "reduce": "kernel_pca", "n_components": 20,
                                                 "kernelpca__gamma": 0.01})
    assert config.estimator_params == {"kernelpca__gamma": 0.01}
    with pytest.raises(SpecError, match="unknown parameter 'kernelpca__gama' .*did you mean 'kernelpca__gamma'"):
        CrossValidatedPipeline.make_config({"model": "svc", "reduce": "kernel_pca", "n_components": 20,
                                            "kernelpca__gama": 0.01})


# ------------------------------------------------------------------ clustering
def test_clustering_scores_and_checkpoints(tmp_path):
    kmeans, metrics = run(Clustering, {"dataset": "iris", "n_clusters": 3, "n_init": 3})
    assert metrics["cluster/n_clusters"] == 3 and metrics["cluster/adjusted_rand"] > 0.6
    assert 0.4 < metrics["cluster/silhouette"] < 1 and metrics["cluster/inertia"] > 0
    kmeans.save(str(tmp_path))
    restored = Clustering(kmeans.config, TrialContext("."))
    restored.setup()
    restored.restore(str(tmp_path))
    assert restored.results == kmeans.results
    np.testing.assert_array_equal(restored.pipeline.predict(kmeans.X), kmeans.pipeline.predict(kmeans.X))

    _, mixture = run(Clustering, {"dataset": "iris", "algorithm": "gaussian_mixture", "n_clusters": 3, "n_init": 2})
    assert mixture["cluster/adjusted_rand"] > 0.8 and math.isfinite(mixture["cluster/bic"])


def test_dbscan_noise_and_the_all_noise_case():
    _, found = run(Clustering, {"dataset": "iris", "algorithm": "dbscan", "eps": 0.5, "scale": True})
    assert found["cluster/n_clusters"] >= 2 and 0 < found["cluster/noise_fraction"] < 0.5
    _, nothing = run(Clustering, {"dataset": "iris", "algorithm": "dbscan", "eps": 1e-3})
    assert nothing == {**nothing, "cluster/n_clusters": 0.0, "cluster/silhouette": -1.0, "cluster/noise_fraction": 1.0}


# ------------------------------------------------------------------ anomaly detection
@pytest.mark.parametrize("params", [
    {"algorithm": "isolation_forest", "n_estimators": 50},
    {"algorithm": "gaussian_mixture", "covariance_type": "diag"},
])
def test_anomaly_detection_finds_injected_digits(params, tmp_path):
    detector, metrics = run(AnomalyDetection, {"dataset": "digits", "normal_class": 0, **params})
    assert detector.is_anomaly.sum() == 9 and len(detector.is_anomaly) == 178 + 9  # 5% of the set
    assert metrics["anomaly/roc_auc"] > 0.95 and metrics["anomaly/recall"] > 0.7 and metrics["anomaly/flagged"] == 10
    detector.save(str(tmp_path))
    restored = AnomalyDetection(detector.config, TrialContext("."))
    restored.setup()
    restored.restore(str(tmp_path))
    np.testing.assert_allclose(restored.pipeline.score_samples(detector.X), detector.pipeline.score_samples(detector.X))


def test_anomaly_sets_of_text_labels(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(0, 1, 120), "b": rng.normal(0, 1, 120),
                          "kind": ["normal"] * 100 + ["odd"] * 20})
    frame.loc[frame.kind == "odd", ["a", "b"]] += 6
    path = tmp_path / "points.csv"
    frame.to_csv(path, index=False)
    _, metrics = run(AnomalyDetection, {"dataset": str(path), "target": "kind", "normal_class": "normal",
                                        "contamination": 0.1, "n_estimators": 50})
    assert metrics["anomaly/roc_auc"] > 0.95


# ------------------------------------------------------------------ bad parameters: one clear line
@pytest.mark.parametrize("cls, params, message", [
    (CrossValidatedPipeline, {"reduce": "tsne"}, "'reduce' .* must be one of 'none', 'pca'"),
    (CrossValidatedPipeline, {"reduce": "kernel_pca", "n_components": 0.5}, "whole number for reduce 'kernel_pca'"),
    (CrossValidatedPipeline, {"reduce": "pca", "n_components": -2}, "n_components must be positive"),
    (Clustering, {"algorithm": "kmedoids"}, "'algorithm' .* must be one of 'kmeans', 'dbscan'"),
    (Clustering, {"n_clusters": 1}, "n_clusters must be at least 2"),
    (Clustering, {"eps": 0}, "eps must be positive"),
    (Clustering, {"covariance_type": "round"}, "must be one of 'full', 'tied'"),
    (Clustering, {"dataset": "digitz"}, "unknown dataset 'digitz' \\(did you mean 'digits'"),
    (AnomalyDetection, {"normal_class": 42}, "normal_class 42 is not a label of the data set"),
    (AnomalyDetection, {"dataset": "diabetes"}, "needs a classification data set"),
    (AnomalyDetection, {"contamination": 0.7}, "contamination must be in \\(0, 0.5\\]"),
    (AnomalyDetection, {"algorithm": "one_class_svm"}, "must be one of 'isolation_forest'"),
])
def test_bad_params_are_one_line_spec_errors(cls, params, message):
    with pytest.raises(SpecError, match=message) as error:
        cls.make_config(params)
    assert "\n" not in str(error.value)


def test_too_many_pca_components_fail_setup_clearly():
    workload = Clustering(Clustering.make_config({"dataset": "iris", "pca": 10}), TrialContext("."))
    with pytest.raises(SpecError, match="pca=10 is more components than the 4 features"):
        workload.setup()


# ------------------------------------------------------------------ presets
PRESETS = ["kmeans-digits", "isolation-forest-digits", "random-forest-wine", "ridge-diabetes"]
CHEAPER = {"sklearn_cv": {"cv_folds": 2}, "sklearn_cluster": {"n_init": 1}, "sklearn_anomaly": {}}


@pytest.mark.parametrize("name", PRESETS)
def test_presets_report_their_metric_and_reference(name):
    """One cheap trial of each preset (its first grid point) reports the metric it ranks by and its reference."""
    (spec,) = specs.load(name)
    first = {key: dist["grid"][0] for key, dist in spec.search.items()}
    cls = workloads.get(spec.workload)
    _, metrics = run(cls, {**spec.trial_params, **first, **CHEAPER[spec.workload]})
    assert spec.metric in metrics and spec.reference.metric in metrics

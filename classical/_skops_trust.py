"""The exact types a `.skops` file from the lab may name beyond skops' own safe defaults.

A `.skops` file names the types it rebuilds; skops refuses any that it does not trust by default
(scikit-learn's estimators, NumPy and SciPy containers) unless the caller trusts them. Trusting a
whole prefix (`numpy.`, `sklearn.`) trusts callables like `numpy.testing.runstring`, which runs
Python: so `load_pipeline` trusts exactly the names below and refuses every other one.

The list is what the lab's own pipelines need: `catalogue_types()` fits every catalogue model,
reducer, the chapter-2 preprocessing and the clustering and anomaly pipelines on a few rows and
collects what `skops.io.get_untrusted_types` reports; `tests/test_security.py` checks that the two
agree. A new model in the catalogue that needs another type makes that test fail: add the name here.
"""
from __future__ import annotations

TRUSTED_TYPES = frozenset({
    # the lab's own transformers (classical/_transformers.py)
    "classical._transformers.ClusterSimilarity",
    "classical._transformers.column_ratio",
    "classical._transformers.ratio_name",
    # fitted state of catalogue models that skops does not trust by default
    "sklearn.calibration._CalibratedClassifier",  # voting_classifier's calibrated SVC
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",  # k-NN's tree metric
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",  # k-NN with algorithm=ball_tree, DBSCAN
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    # the CSV preprocessing's column selector (classical/datasets.preprocessor)
    "sklearn.compose._column_transformer.make_column_selector",
    "numpy.dtype",
    "numpy.number",
})


def catalogue_types() -> set[str]:
    """Every type beyond skops' defaults that the lab's fitted pipelines name (a few seconds)."""
    import warnings

    import numpy as np
    import pandas as pd
    import skops.io
    from sklearn.base import is_regressor
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline

    from classical import clustering, datasets, models
    from classical._transformers import preprocessor
    from classical.cross_validation import build_pipeline

    found: set[str] = set()

    def add(pipeline) -> None:
        found.update(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))

    rng = np.random.RandomState(0)
    X, labels, values = rng.rand(60, 4), np.arange(60) % 3, rng.rand(60)
    frame = pd.DataFrame({"a": rng.rand(60), "b": rng.rand(60) + 1, "c": rng.rand(60), "d": rng.rand(60),
                          "kind": np.array(["x", "y", "z"])[labels]})
    frame.loc[3, "a"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in models.names():
            pipeline = models.make(name)
            add(pipeline.fit(X, values if is_regressor(pipeline) else labels))
        knn = models.make("knn").set_params(kneighborsclassifier__algorithm="ball_tree")
        add(knn.fit(X, labels))
        for reduce in ("pca", "incremental_pca", "kernel_pca", "lle"):
            add(build_pipeline("logistic", reduce, 2).fit(X, labels))
        chapter2 = preprocessor(frame, ratios=["a/b"], log_columns=["c"], cluster_columns=["d"], n_clusters=3)
        add(make_pipeline(chapter2, LogisticRegression()).fit(frame, labels))
        add(make_pipeline(datasets.preprocessor(frame), Ridge()).fit(frame, values))
        for estimator in (KMeans(3, n_init=1), DBSCAN(), GaussianMixture(2), IsolationForest(n_estimators=5)):
            for data, scale, pca in ((X, False, 0), (X, True, 2), (frame, False, 2)):
                add(clustering.make_pipeline(data, scale, pca, estimator).fit(data))
    return found

"""The exact types a `.skops` file from the lab may name beyond skops' own safe defaults.

A `.skops` file names the types it rebuilds; skops refuses any that it does not trust by default
(scikit-learn's estimators, NumPy and SciPy containers) unless the caller trusts them. Trusting a
whole prefix (`numpy.`, `sklearn.`) trusts callables like `numpy.testing.runstring`, which runs
Python: so `load_pipeline` trusts exactly the names below and refuses every other one.

The list is what the lab's own pipelines need: `tests/registry/test_security.py` fits every catalogue model,
reducer, the chapter-2 preprocessing and the clustering and anomaly pipelines on a few rows, collects
what `skops.io.get_untrusted_types` reports and checks that it is exactly this list. A new model in the catalogue that needs another type makes that test fail: add the name here.
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

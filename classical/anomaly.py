"""Anomaly detection (the book's chapter 9): an isolation forest, or a Gaussian mixture's density.

The data: one class of a labelled data set is "normal"; a few random samples of the other classes are
mixed in as anomalies, `contamination` of the whole (e.g. digits: the 178 images of a 0, and 9 images
of other digits at 5%). This is how the outlier-detection benchmarks (ODDS) turn a classification set
into an anomaly set: breast_cancer with `normal_class: 1` (benign) and a few malignant tumours is
their "WBC" set.

One `step()` fits the detector on that unlabelled, contaminated set (outlier detection: no clean
training set) and scores the same points against the hidden truth:
- `anomaly/roc_auc`, `anomaly/average_precision`: how well the anomaly scores rank the anomalies first;
- `anomaly/precision`, `anomaly/recall`: of the `contamination` fraction flagged as the most anomalous
  (the contamination is assumed known, as in the book's "flag the densest-but-4%" threshold).
The anomaly score is minus `score_samples`: the isolation forest's (shorter paths: more anomalous) or
the mixture's log-density (the book: instances in low-density regions are anomalies).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from classical import clustering, datasets
from classical.cross_validation import _seed_estimators, export_pipeline, load_pipeline
from lab.errors import SpecError
from lab.workload import Workload, build_dataclass

QUICK_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")  # cheap enough to check at spec load


class AnomalyDetection(Workload):
    name = "sklearn_anomaly"
    test_params = {"dataset": "digits", "normal_class": 0, "n_estimators": 20}

    @dataclass
    class Config:
        dataset: str = "digits"  # a classification data set of classical.datasets, or a .csv file
        target: str = ""  # the label column of a CSV file
        data_sha256: str = ""  # a CSV file's content hash, recorded when the spec loads (checked in setup)
        normal_class: int | str = 0  # the label of the normal samples; every other label is an anomaly
        contamination: float = 0.05  # the anomalies' share of the evaluated set, and the share flagged
        algorithm: Literal["isolation_forest", "gaussian_mixture"] = "isolation_forest"
        n_estimators: int = 100  # isolation forest: trees
        max_samples: int = 256  # isolation forest: samples per tree (at most all of them)
        max_features: float = 1.0  # isolation forest: fraction of the features per tree
        n_components: int = 1  # Gaussian mixture: components of the density of normal data
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full"  # Gaussian mixture
        scale: bool = False  # standardize the features first
        pca: int = 0  # project onto this many principal components first (0: no projection)
        seed: int = 0

        def check(self) -> None:
            if not 0.0 < self.contamination <= 0.5:
                raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination}")
            if self.n_estimators < 1 or self.max_samples < 1 or self.n_components < 1:
                raise ValueError("n_estimators, max_samples and n_components must be at least 1")
            if not 0.0 < self.max_features <= 1.0:
                raise ValueError(f"max_features must be in (0, 1], got {self.max_features}")
            if self.pca < 0:
                raise ValueError("pca cannot be negative")

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return datasets.resolve_data_file(params)

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        config = build_dataclass(cls.Config, params, f"workload '{cls.name}'")
        clustering.check_dataset(config.dataset, config.target)
        if config.dataset in QUICK_DATASETS:  # bigger sets are checked in setup
            contaminated(datasets.load(config.dataset), config.normal_class, config.contamination, config.seed)
        return config

    # ------------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return frozenset({"anomaly/roc_auc", "anomaly/average_precision", "anomaly/precision", "anomaly/recall",
                          "anomaly/flagged", "anomaly/threshold", "charts/fit_seconds", "done"})

    def setup(self) -> None:
        c = self.config
        data = datasets.load(c.dataset, target=c.target, sha256=c.data_sha256, seed=c.seed)
        self.X, self.is_anomaly = contaminated(data, c.normal_class, c.contamination, c.seed)
        self.pipeline = clustering.make_pipeline(self.X, c.scale, c.pca, self.detector())
        _seed_estimators(self.pipeline, c.seed)
        self.results: dict[str, float] = {}

    def detector(self):
        from sklearn.ensemble import IsolationForest
        from sklearn.mixture import GaussianMixture

        c = self.config
        if c.algorithm == "isolation_forest":
            return IsolationForest(n_estimators=c.n_estimators, max_samples=min(c.max_samples, len(self.X)),
                                   max_features=c.max_features, contamination=c.contamination)
        return GaussianMixture(n_components=c.n_components, covariance_type=c.covariance_type, n_init=3)

    # ------------------------------------------------------------------ fit and score
    def step(self) -> dict[str, Any]:
        from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

        start = time.perf_counter()
        self.pipeline.fit(self.X)
        scores = -self.pipeline.score_samples(self.X)  # higher: more anomalous
        threshold = np.quantile(scores, 1.0 - self.config.contamination)
        flagged = scores > threshold
        self.results = {
            "anomaly/roc_auc": float(roc_auc_score(self.is_anomaly, scores)),
            "anomaly/average_precision": float(average_precision_score(self.is_anomaly, scores)),
            "anomaly/precision": float(precision_score(self.is_anomaly, flagged, zero_division=0)),
            "anomaly/recall": float(recall_score(self.is_anomaly, flagged, zero_division=0)),
            "anomaly/flagged": float(np.sum(flagged)),
            "anomaly/threshold": float(threshold),
            "charts/fit_seconds": time.perf_counter() - start,
        }
        return {**self.results, "done": True}

    # ------------------------------------------------------------------ checkpoints
    def save(self, checkpoint_dir: str) -> None:
        clustering.save(checkpoint_dir, self.pipeline, self.results)

    def restore(self, checkpoint_dir: str) -> None:
        self.pipeline, self.results = clustering.restore(checkpoint_dir, self.pipeline)

    @classmethod
    def load_exported(cls, path: str):
        return load_pipeline(path)

    def export(self, out_dir: str) -> str:
        return export_pipeline(self.pipeline, out_dir, {"workload": self.name, "dataset": self.config.dataset,
                                                         "metrics": self.results}, self.X)


def contaminated(data: datasets.Dataset, normal_class: int | str, contamination: float, seed: int):
    """Every sample of `normal_class`, plus random others making up `contamination` of the result.

    Returns (X, is_anomaly); SpecError when the data set cannot give such a set.
    """
    if data.task != "classification":
        raise SpecError("anomaly detection needs a classification data set: its labels say which samples are anomalies")
    labels = np.unique(data.y)
    normal = data.y == normal_class
    if not normal.any() and isinstance(normal_class, int):
        normal = data.y.astype(str) == str(normal_class)  # a CSV file's labels may be text
    if not normal.any():
        shown = ", ".join(map(repr, labels[:10].tolist()))
        raise SpecError(f"normal_class {normal_class!r} is not a label of the data set (labels: {shown})")
    n_normal = int(normal.sum())
    n_anomalies = max(1, round(contamination * n_normal / (1.0 - contamination)))
    others = np.flatnonzero(~normal)
    if n_anomalies > len(others):
        raise SpecError(f"contamination {contamination} needs {n_anomalies} anomalies, "
                        f"but the data set has only {len(others)} samples outside class {normal_class!r}")
    rng = np.random.default_rng(seed)
    keep = np.concatenate([np.flatnonzero(normal), rng.choice(others, size=n_anomalies, replace=False)])
    X = data.X.iloc[keep] if hasattr(data.X, "iloc") else data.X[keep]
    return X, ~normal[keep]

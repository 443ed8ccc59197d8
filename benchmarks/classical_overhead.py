"""Overhead of `lab run` for a classical sweep against the same scikit-learn code called directly.

The sweep is the svc-digits preset (RBF SVC, C x gamma, 5-fold CV on digits). The lab runs every
config as a Tune trial (Ray start, registry, TensorBoard, checkpoints included); the baseline runs
the same `cross_validate` calls in a plain loop, and GridSearchCV(n_jobs=-1) on the same grid and folds
(12 configs x 5 folds = 60 fits: the preset's grid with C in 0.1, 1, 10, 100). The lab also runs once without TensorBoard figures (`log_figures=false`).
Run: python benchmarks/classical_overhead.py
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


GRID = "search.svc__C.grid=[0.1, 1.0, 10.0, 100.0]"


def direct(spec) -> tuple[float, float]:
    """The preset's grid as a plain loop of cross_validate calls: (seconds, best CV score)."""
    from sklearn.model_selection import cross_validate

    from lab import workload as workloads

    cls = workloads.get(spec.workload)
    start = time.perf_counter()
    grid = {k: v["grid"] for k, v in spec.search.items()}
    best = 0.0
    for values in itertools.product(*grid.values()):
        w = cls(cls.make_config({**spec.trial_params, **dict(zip(grid, values))}), workloads.TrialContext("."))
        w.setup()
        scores = cross_validate(w.pipeline, w.X_train, w.y_train, cv=w.cv_splitter(), scoring=w.scoring)
        best = max(best, scores["test_score"].mean())
    return time.perf_counter() - start, best


def grid_search(spec) -> tuple[float, float]:
    from sklearn.model_selection import GridSearchCV

    from lab import workload as workloads

    cls = workloads.get(spec.workload)
    w = cls(cls.make_config(spec.trial_params), workloads.TrialContext("."))
    w.setup()
    start = time.perf_counter()
    search = GridSearchCV(w.pipeline, {k: v["grid"] for k, v in spec.search.items()}, cv=w.cv_splitter(),
                          scoring=w.scoring, n_jobs=-1).fit(w.X_train, w.y_train)
    return time.perf_counter() - start, search.best_score_


def through_lab(preset: str, *overrides: str) -> tuple[float, float]:
    env = {**os.environ, "LAB_HOME": tempfile.mkdtemp(prefix="lab-bench-")}
    lab = str(Path(sys.executable).parent / "lab")
    start = time.perf_counter()
    subprocess.run([lab, "run", preset, *overrides], env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    os.environ["LAB_HOME"] = env["LAB_HOME"]
    from lab.registry import Registry

    return seconds, Registry().best_trial(1)["best_metric"]


def main() -> int:
    from lab import spec as specs

    (spec,) = specs.load("svc-digits", [GRID])
    rows = [("direct cross_validate loop", *direct(spec)),
            ("GridSearchCV(n_jobs=-1)", *grid_search(spec)),
            ("lab run svc-digits", *through_lab("svc-digits", "--set", GRID)),
            ("  same, log_figures=false", *through_lab("svc-digits", "--set", GRID, "--set", "log_figures=false"))]
    baseline = rows[0][1]
    print(f"{'run':<30}{'seconds':>9}{'ratio':>8}{'best CV accuracy':>18}")
    for name, seconds, score in rows:
        print(f"{name:<30}{seconds:>9.2f}{seconds / baseline:>7.2f}x{score:>18.5f}")
    same = all(abs(rows[0][2] - row[2]) < 1e-12 for row in rows)
    print(f"best score identical across all runs: {same}; "
          f"lab / GridSearchCV = {rows[2][1] / rows[1][1]:.2f}x (target 1.2), "
          f"without figures {rows[3][1] / rows[1][1]:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

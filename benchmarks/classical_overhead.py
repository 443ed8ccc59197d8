"""Overhead of `lab run` for a classical sweep against the same scikit-learn code called directly.

The sweep is the svc-digits preset (RBF SVC, C x gamma, 5-fold CV) with C in 0.1, 1, 10, 100:
12 configs x 5 folds = 60 fits. The lab runs every config as a Tune trial (Ray start, registry,
TensorBoard, checkpoints included); the baselines run the same `cross_validate` calls in a plain loop,
and GridSearchCV(n_jobs=-1) on the same grid and folds. The lab runs twice: as shipped (each trial also
refits on the whole training split for its test metrics and logs matplotlib figures: 72 fits), and with
`refit=false log_figures=false` (the CV fits only, like GridSearchCV, which refits just the best).

    python benchmarks/classical_overhead.py                          # digits: 1797 x 64, fits of ~0.05 s
    python benchmarks/classical_overhead.py --dataset mnist_sample   # 5000 x 784, fits of ~1 s
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
    import argparse

    from lab import spec as specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist_sample"])
    args = parser.parse_args()
    grid = [GRID, f"dataset={args.dataset}"]
    if args.dataset == "mnist_sample":  # pixels scaled to [0, 1] then standardized: smaller gammas
        grid.append("search.svc__gamma.grid=[0.0003, 0.001, scale]")
    sets = [arg for item in grid for arg in ("--set", item)]
    (spec,) = specs.load("svc-digits", grid)
    print(f"svc-digits grid on {args.dataset}: 12 configs x 5 folds = 60 fits; 2 CPU trials at a time")
    rows = [("direct cross_validate loop", *direct(spec)),
            ("GridSearchCV(n_jobs=-1)", *grid_search(spec)),
            ("lab run (refit, figures)", *through_lab("svc-digits", *sets)),
            ("lab run (refit=false, no figs)", *through_lab("svc-digits", *sets, "--set", "refit=false",
                                                            "--set", "log_figures=false"))]
    baseline = rows[0][1]
    print(f"{'run':<32}{'seconds':>9}{'ratio':>8}{'best CV accuracy':>18}")
    for name, seconds, score in rows:
        print(f"{name:<32}{seconds:>9.2f}{seconds / baseline:>7.2f}x{score:>18.5f}")
    same = all(abs(rows[0][2] - row[2]) < 1e-12 for row in rows)
    print(f"best score identical across all runs: {same}; "
          f"lab / GridSearchCV = {rows[2][1] / rows[1][1]:.2f}x (target 1.2), "
          f"CV fits only {rows[3][1] / rows[1][1]:.2f}x; load average {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

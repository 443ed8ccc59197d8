"""Overhead of `lab run` for a classical sweep against the same scikit-learn code called directly.

The sweep is the svc-digits preset (RBF SVC, C x gamma, 5-fold CV) with C in 0.1, 1, 10, 100:
12 configs x 5 folds = 60 fits. The lab runs every config as a Tune trial (Ray start, registry,
TensorBoard, checkpoints included); the baselines run the same `cross_validate` calls in a plain loop,
and GridSearchCV(n_jobs=-1) on the same grid and folds. The lab runs two variants: as shipped (each trial
also refits on the whole training split for its test metrics and logs matplotlib figures: 72 fits), and
with `refit=false log_figures=false` (the CV fits only, like GridSearchCV, which refits just the best).
Each variant runs through the lab server in a new LAB_HOME (its first run, which starts the server and
its warm Ray, then a second once the warm pool is full again: server warm; `lab down` after), and
`--no-server` with Ray started by the run (cold) and on a warm instance (`lab up` before, not timed).
Targets against GridSearchCV, for the CV fits only (the 60-fit grid): server warm <= 1.0x, first run
<= 3x, --no-server cold <= 3x and warm (lab up) <= 1.5x; the same best score everywhere. Each lab run's
phases are printed (imports (under the server: the client's start to the forked run's start), Ray
start/connect, Tuner set-up, first trial's setup, training, registry writes, shut-down, other).

    python benchmarks/classical_overhead.py                          # digits: 1797 x 64, fits of ~0.05 s
    python benchmarks/classical_overhead.py --dataset mnist_sample   # 5000 x 784, fits of ~1 s
    python benchmarks/classical_overhead.py --quick                  # C in 1, 10: 30 fits (a check)
    python benchmarks/classical_overhead.py --no-warm --no-server-rows   # --no-server cold runs only
"""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _whole_process import PHASES, lab_run, load, new_home, server_runs, wait_warm, warm_instance  # noqa: E402


GRID = "search.svc__C.grid=[0.1, 1.0, 10.0, 100.0]"
SHIPPED, CV_ONLY = "lab run [refit, figures]", "lab run [CV fits only]"
TARGETS = {f"{CV_ONLY}, server warm": 1.0, f"{CV_ONLY}, first run (server starts)": 3.0,
           f"{CV_ONLY} --no-server, cold (Ray started)": 3.0, f"{CV_ONLY} --no-server, warm (lab up)": 1.5}


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


def through_lab(preset: str, *overrides: str, home: str | None = None) -> tuple[float, float, dict]:
    """`lab run --no-server` as a whole process (in `home`, which may hold a warm instance): seconds, best
    score, phases."""
    seconds, cut, best = lab_run([preset, *overrides], home or new_home())
    return seconds, best["best_metric"], cut


def main() -> int:
    import argparse

    from lab import spec as specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist_sample"])
    parser.add_argument("--quick", action="store_true", help="C in 1, 10 only: 30 fits (checks the sides run)")
    parser.add_argument("--no-warm", action="store_true", help="skip the --no-server runs on a warm `lab up` instance")
    parser.add_argument("--no-server-rows", action="store_true", help="skip the runs through the lab server")
    args = parser.parse_args()
    grid = [GRID if not args.quick else "search.svc__C.grid=[1.0, 10.0]", f"dataset={args.dataset}"]
    if args.dataset == "mnist_sample":  # pixels scaled to [0, 1] then standardized: smaller gammas
        grid.append("search.svc__gamma.grid=[0.0003, 0.001, scale]")
    sets = [arg for item in grid for arg in ("--set", item)]
    cv_only = [*sets, "--set", "refit=false", "--set", "log_figures=false"]
    (spec,) = specs.load("svc-digits", grid)
    configs = len(list(itertools.product(*(v["grid"] for v in spec.search.values()))))
    print(f"svc-digits grid on {args.dataset}: {configs} configs x 5 folds = {configs * 5} fits; "
          f"2 CPU trials at a time; load before {load()}", flush=True)
    variants = ((SHIPPED, sets), (CV_ONLY, cv_only))
    rows = [("direct cross_validate loop", *direct(spec), None),
            ("GridSearchCV(n_jobs=-1)", *grid_search(spec), None)]
    if not args.no_server_rows:
        for label, overrides in variants:
            rows += [(name, seconds, best["best_metric"], cut)
                     for name, seconds, cut, best in server_runs(["svc-digits", *overrides], label)]
    rows += [(f"{label} --no-server, cold (Ray started)", *through_lab("svc-digits", *overrides))
             for label, overrides in variants]
    if not args.no_warm:
        home = new_home()
        with warm_instance(home):
            for label, overrides in variants:
                wait_warm(home)
                rows.append((f"{label} --no-server, warm (lab up)", *through_lab("svc-digits", *overrides, home=home)))
    grid_s = rows[1][1]
    width = max(len(row[0]) for row in rows) + 2
    print(f"\n{'run':<{width}}{'seconds':>9}{'vs GSCV':>9}{'target':>8}{'best CV accuracy':>18}   "
          + "  ".join(f"{p:>10}" for p in PHASES))
    for name, seconds, score, cut in rows:
        target = TARGETS.get(name)
        verdict = "" if target is None else (" met" if seconds / grid_s <= target else " MISSED")
        cells = "  ".join(f"{cut[p]:>10.2f}" for p in PHASES) if cut else ""
        print(f"{name:<{width}}{seconds:>9.2f}{seconds / grid_s:>8.2f}x{(f'{target}x' if target else ''):>8}"
              f"{score:>18.5f}   {cells}{verdict}")
    same = all(abs(rows[0][2] - row[2]) < 1e-12 for row in rows)
    print(f"best score identical across all runs: {same}; load average after {load()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

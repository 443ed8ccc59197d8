"""Tune's scheduling overhead: N trivial trials through the lab against the same work in a plain loop.

Each trial is a tiny sklearn_cv run (logistic regression on iris, 3-fold CV, refit, test metrics, no
figures; 0.35-1.3 s a trial in the loop on the shared 2-core machine at load 7-10). The lab runs the N trials as one Tune experiment (2 at a time on 2 CPUs, actors reused,
registry, TensorBoard, CSV/JSON results and a checkpoint per trial); the baseline runs the same
workload setup / step / save calls in a loop in one process, before and after the lab (their spread shows
the machine's noise). Ray's start is reported apart. `--cpus 1` compares one trial at a time with the loop.
The per-trial overhead (target 30 ms) is the marginal one: the lab also runs N/4 trials, and the
difference between the two runs (Tune's start, the workers' start and the shut-down cancel out) less the
loop's work for the extra trials, spread over the slots, is divided by the extra trials. The overhead
"with fixed cost" (the whole run's wall time less the loop's, per trial) is printed too.

    python benchmarks/tune_overhead.py                 # 64 trials
    python benchmarks/tune_overhead.py --trials 16 --searcher optuna
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = """
name: overhead
workload: sklearn_cv
params: {dataset: iris, model: logistic, cv_folds: 3, log_figures: false}
search:
  logisticregression__C: {loguniform: [0.01, 100.0]}
metric: cv/accuracy
num_samples: %d
stop: {training_iteration: 1}
resources: {cpu: 1}
searcher: {type: %s}
"""


def plain_loop(spec, trials: int) -> float:
    """The trials' work without Tune: the same kind of values, workload setup / step / save, one after another."""
    import numpy as np

    from lab import workload as workloads

    cls = workloads.get(spec.workload)
    rng = np.random.default_rng(spec.seed)
    start = time.perf_counter()
    for _ in range(trials):
        c = float(np.exp(rng.uniform(np.log(0.01), np.log(100.0))))
        with tempfile.TemporaryDirectory() as folder:
            w = cls(cls.make_config({**spec.trial_params, "logisticregression__C": c}), workloads.TrialContext(folder))
            w.setup()
            w.step()
            w.save(folder)
            w.close()
    return time.perf_counter() - start


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--searcher", default="random", choices=["random", "optuna", "hyperopt"])
    parser.add_argument("--cpus", type=int, default=2, help="Ray's CPUs (trials side by side)")
    args = parser.parse_args()
    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="lab-bench-")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    from lab import spec as specs
    from lab.infra.connect import connect
    from lab.execution import runner

    path = Path(os.environ["LAB_HOME"]) / "overhead.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPEC % (args.trials, args.searcher))
    (spec,) = specs.load(str(path))

    plain_loop(spec, 2)  # warm-up: imports and the data set's first load, which Tune's workers pay too
    load_before = os.getloadavg()
    loop_before_s = plain_loop(spec, spec.num_samples)
    start = time.perf_counter()
    connect(None, num_cpus=args.cpus)
    ray_start_s = time.perf_counter() - start
    start = time.perf_counter()
    outcome = runner.run(spec)
    lab_s = time.perf_counter() - start
    few = max(args.cpus, spec.num_samples // 4)
    small = dataclasses.replace(spec, num_samples=few, name="overhead-small")
    start = time.perf_counter()
    runner.run(small)
    lab_few_s = time.perf_counter() - start
    import ray

    ray.shutdown()
    loop_after_s = plain_loop(spec, spec.num_samples)  # again, after: the load of a shared machine drifts
    load_after = os.getloadavg()
    loop_s = (loop_before_s + loop_after_s) / 2
    n = outcome.num_trials
    ideal_s = loop_s / min(args.cpus, n)  # the loop's work, perfectly spread over the trial slots
    print(f"{n} trials ({outcome.num_errors} errors), searcher {args.searcher}, {args.cpus} CPUs; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"plain loop (1 process)        {loop_s:7.2f} s   {1000 * loop_s / n:7.1f} ms/trial "
          f"(mean of {loop_before_s:.2f} s before and {loop_after_s:.2f} s after the lab run)")
    print(f"ray.init                      {ray_start_s:7.2f} s")
    print(f"lab run (registry + Tune)     {lab_s:7.2f} s   {1000 * lab_s / n:7.1f} ms/trial (wall)")
    extra = n - few
    marginal_ms = 1000 * ((lab_s - lab_few_s) - loop_s * extra / n / min(args.cpus, n)) / extra
    print(f"lab run of {few} trials          {lab_few_s:7.2f} s")
    print(f"overhead per trial, marginal  {marginal_ms:7.1f} ms   (target 30: (lab {n} - lab {few}) - the loop's "
          f"work for {extra} trials / {min(args.cpus, n)} slots, per extra trial)")
    print(f"overhead per trial, with fixed cost {1000 * (lab_s - ideal_s) / n:7.1f} ms   "
          f"(lab wall - loop/{min(args.cpus, n)} slots, per trial)")
    print(f"ratio lab / plain loop        {lab_s / loop_s:7.2f} x   (vs perfect {args.cpus}-way spread: "
          f"{lab_s / ideal_s:.2f} x)")
    return 0 if outcome.num_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Test MAE on the yearly sunspots of the forecast-sunspots preset's model against naive and linear.

Runs in-process through the workload class (no Ray): the naive forecast (last value), a Keras linear
model on the same windows, and the preset's model, each stepped until done. Prints the test MAE in
sunspot numbers, the ratio to the naive forecast's MAE (target < 1) and the seconds each took.
Run: python benchmarks/forecast_sunspots.py [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRESET = "forecast-sunspots"
# the linear model is convex: a higher rate and more epochs than the RNN reach the least-squares fit
LINEAR = {"model": "linear", "learning_rate": 1e-2, "lr_schedule": "cosine", "max_epochs": 200, "epochs_per_step": 200}


def run(params: dict) -> tuple[dict, float]:
    """Set up and step one workload until done: (last metrics, seconds including setup)."""
    from lab import workload as workloads

    cls = workloads.get("keras_forecaster")
    start = time.perf_counter()
    w = cls(cls.make_config(params), workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix="forecast-bench-")))
    try:
        w.setup()
        metrics = w.step()
        while not metrics["done"]:
            metrics = w.step()
    finally:
        w.close()
    return metrics, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the preset's)")
    args = parser.parse_args()

    from lab import settings, spec as specs

    settings.apply_worker_env()
    (spec,) = specs.load(PRESET)
    preset = spec.trial_params
    seeds = args.seeds or [preset["seed"]]
    window = preset["window"]
    print(f"sunspots, window {window}, horizon {preset.get('horizon', 1)}; preset {PRESET}: "
          f"{preset['model']} units={preset['units']} layers={preset['layers']} epochs={preset['max_epochs']}")
    print(f"{'model':<12} {'seed':>4} {'val MAE':>8} {'test MAE':>9} {'ratio':>7} {'seconds':>8}")
    ratios = []
    for name, params in (("naive", {**preset, "model": "naive"}), ("linear", {**preset, **LINEAR}),
                         (preset["model"], preset)):
        for seed in seeds if name != "naive" else seeds[:1]:
            metrics, seconds = run({**params, "seed": seed})
            ratio = metrics["test/mae_ratio_to_naive"]
            print(f"{name:<12} {seed:>4} {metrics['val/mae']:>8.2f} {metrics['test/mae']:>9.2f} {ratio:>7.3f} "
                  f"{seconds:>8.1f}", flush=True)
            if params is preset:
                ratios.append(ratio)
    worst = max(ratios)
    print(f"preset model: test MAE / naive = {sum(ratios) / len(ratios):.3f} (worst {worst:.3f}); "
          f"target < 1: {'met' if worst < 1 else 'NOT met'}; reference {spec.reference.score:g}")
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Test accuracy of the sentiment-lstm and sentiment-transformer presets against the majority class.

Runs in-process through the workload class (no Ray): each preset's model stepped epoch by epoch until done,
on the same fixed movie-grouped split of the Rotten Tomatoes snippets. Prints val/test accuracy per epoch,
the final test accuracy, its ratio to the majority-class baseline's (always "fresh") and the seconds taken,
with the load average beside each line (2 shared cores: read seconds with it).
Run: python benchmarks/sentiment.py [--seeds 42 0] [--models lstm transformer]
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

PRESETS = {"lstm": "sentiment-lstm", "transformer": "sentiment-transformer"}


def run(params: dict) -> tuple[list[dict], float]:
    """Set up and step one workload until done: (metrics of every step, seconds including setup)."""
    from lab import workload as workloads

    cls = workloads.get("keras_sentiment")
    start = time.perf_counter()
    w = cls(cls.make_config(params), workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix="sentiment-bench-")))
    history = []
    try:
        w.setup()
        while not history or not history[-1]["done"]:
            history.append(w.step())
            m = history[-1]
            print(f"  epoch {m['charts/epoch']:>2.0f}  train loss {m['train/loss']:.3f}  val acc {m['val/accuracy']:.3f}"
                  f"  test acc {m['test/accuracy']:.3f}  {m['charts/seconds_per_epoch']:5.1f} s/epoch"
                  f"  {m['charts/samples_per_sec']:6.0f} samples/s  load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        w.close()
    return history, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: each preset's)")
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()

    from lab import settings, spec as specs

    settings.apply_worker_env()
    results = []
    for model in args.models:
        (spec,) = specs.load(PRESETS[model])
        for seed in args.seeds or [spec.trial_params["seed"]]:
            print(f"{spec.name} seed {seed}:", flush=True)
            history, seconds = run({**spec.trial_params, "seed": seed})
            last = history[-1]
            results.append((model, seed, last, seconds, spec.reference.score))

    print(f"\n{'model':<12}{'seed':>5}{'val acc':>9}{'test acc':>10}{'majority':>10}{'ratio':>7}{'reference':>11}"
          f"{'seconds':>9}{'load':>6}")
    ok = True
    for model, seed, last, seconds, reference in results:
        ok &= last["test/accuracy"] >= reference
        print(f"{model:<12}{seed:>5}{last['val/accuracy']:>9.3f}{last['test/accuracy']:>10.3f}"
              f"{last['baseline/majority_accuracy']:>10.3f}{last['test/accuracy_ratio_to_majority']:>7.3f}"
              f"{reference:>11.3f}{seconds:>9.1f}{os.getloadavg()[0]:>6.1f}")
    print(f"every run reached its preset's reference: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

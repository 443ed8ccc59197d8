"""LunarLander-v3 to 200: env steps and wall seconds of the ppo-lunarlander preset (a long run).

Runs the preset's workload in this process (not through Ray), step() after step() (one 16k-step
round and a 10-episode greedy evaluation each), until the greedy mean reaches 200, the preset's budget
is spent, or --max-minutes pass. Prints a line per evaluation (env steps, greedy mean, the exploring
policy's mean, wall seconds, load average), then the outcome per seed. rl-baselines3-zoo's PPO with
the same settings needs about 1M env steps; expect tens of minutes on 2 cores.

Run: python benchmarks/ppo_lunarlander.py [--seeds 0] [--max-minutes 25]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import settings

PRESET, SCORE = "ppo-lunarlander", 200.0


def run_seed(seed: int, max_seconds: float) -> dict:
    from lab import spec as specs
    from lab import workload as workloads

    spec = specs.load(PRESET)[0]
    cls = workloads.get(spec.workload)
    config = cls.make_config({**spec.trial_params, "seed": seed})
    started = time.perf_counter()
    workload = cls(config, workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix="bench-lunar-")))
    workload.setup()
    setup = time.perf_counter() - started
    best = -float("inf")
    try:
        started = time.perf_counter()
        while True:
            metrics = workload.step()
            seconds = time.perf_counter() - started
            score = metrics["eval/average_return"]
            best = max(best, score)
            print(f"  seed {seed}: {metrics['charts/env_steps']:>9} steps  greedy {score:8.1f}  "
                  f"exploring {metrics.get('train/episode_return', float('nan')):8.1f}  {seconds:7.0f} s  "
                  f"{metrics['charts/sps']:6.0f} sps  load {os.getloadavg()[0]:.1f}", flush=True)
            if score >= SCORE or metrics["done"] or seconds >= max_seconds:
                break
        return {"steps": metrics["charts/env_steps"], "seconds": seconds, "setup": setup, "score": score,
                "best": best, "solved": score >= SCORE}
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop a seed after this long (default 60)")
    args = parser.parse_args(argv)

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import tensorflow  # noqa: F401

    print(f"{PRESET}: to a 10-episode greedy mean of {SCORE:.0f}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    ok = True
    for seed in args.seeds:
        run = run_seed(seed, args.max_minutes * 60)
        ok &= run["solved"]
        outcome = "solved" if run["solved"] else f"NOT solved (best greedy mean {run['best']:.1f})"
        print(f"seed {seed}: {outcome} at {run['steps']} env steps, {run['seconds']:.0f} s after "
              f"{run['setup']:.1f} s setup; load average {os.getloadavg()[0]:.1f}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

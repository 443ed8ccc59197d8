"""Training env steps/s of an RL preset: whole collect+train rounds after a warm-up, in this process.

The preset's workload is set up here (not through Ray), its random-action warm-up (off-policy agents)
shortened to `--learning-starts` env steps; rounds of its own traced collect and train functions run until
`--warmup` env steps, then are timed until `--seconds` have passed. No evaluation: the figure is the rate
training goes at, the one `benchmarks/rl_vs_sb3.py --heavy` compares with Stable-Baselines3's. With
`--evaluate`, the greedy policy then plays one episode in each of the preset's evaluation envs (untimed;
`--set eval_episodes=10`): the return reached in that training time, counted from the first env step, the
random warm-up included (`rl_vs_sb3.py --wall-clock`). Prints one
JSON line (with the load average before and after).

    python benchmarks/rl_throughput.py ppo-breakout [--seconds 60] [--warmup 3000] [--set batch_size=32] [--evaluate]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from _learning import cpus, load, make_workload, parse_sets, peak_rss_mb, unknown_preset

from lab import settings


def rate(preset: str, params: dict, seconds: float, warmup: int, evaluate: bool = False) -> dict:
    workload = make_workload(preset, params)
    off_policy = hasattr(workload, "_random_collect")

    def one_round() -> int:
        if not off_policy:  # PPO: collect a round's trajectories, then train on them
            workload._train(workload._collect())
        elif int(workload.env_steps.numpy()) < workload.learning_starts:
            workload._random_collect()
        else:
            workload._collect()
            workload._train()
        return int(workload.env_steps.numpy())

    try:
        steps, started = 0, time.perf_counter()  # with `evaluate`, the warm-up is timed too: training from scratch
        while not evaluate and (steps < warmup or (off_policy and steps < workload.learning_starts)):
            steps = one_round()
        if not evaluate:
            one_round()  # a training round's first call, untimed
            started = time.perf_counter()
        first = last = int(workload.env_steps.numpy())
        while time.perf_counter() - started < seconds:
            last = one_round()
        elapsed = time.perf_counter() - started
        figures = {"env_steps_per_s": (last - first) / elapsed, "timed_env_steps": last - first, "seconds": elapsed,
                   "env_steps": last}
        if evaluate:
            import numpy as np

            returns, lengths = (t.numpy() for t in workload._evaluate())
            figures.update(eval_return_mean=float(np.mean(returns)), eval_return_std=float(np.std(returns)),
                           eval_episodes=len(returns), eval_length_mean=float(np.mean(lengths)))
        return figures
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=3000, help="env steps before the timed rounds")
    parser.add_argument("--learning-starts", type=int, default=1000,
                        help="random env steps of off-policy agents (-1: the preset's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset param")
    parser.add_argument("--evaluate", action="store_true", help="then one greedy episode per eval env (untimed)")
    args = parser.parse_args(argv)
    if unknown_preset("rl_throughput", [args.preset]):
        return 2
    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import dataclasses

    from lab import spec as specs
    from lab import workload as workloads

    fields = {f.name for f in dataclasses.fields(workloads.get(specs.load(args.preset)[0].workload).Config)}
    keep = args.learning_starts < 0  # the preset's own random warm-up
    params = {"seed": 0, **({"initial_collect_steps": args.learning_starts}
                            if "initial_collect_steps" in fields and not keep else {}), **parse_sets(args.set)}
    before = load()
    figures = rate(args.preset, params, args.seconds, args.warmup, args.evaluate)
    print(json.dumps({"preset": args.preset, **figures, "overrides": parse_sets(args.set), "cpus": cpus(),
                      "peak_rss_mb": peak_rss_mb(), "load_before": before, "load_after": load()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

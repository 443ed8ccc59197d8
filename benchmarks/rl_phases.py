"""Where an RL preset's training time goes: collect, train and evaluate, per env step, on this machine.

For each preset: the workload set up in this process (not through Ray) with its random-action warm-up
(off-policy agents) shortened to `--warmup` env steps: the first step, timed apart, then `--steps` env steps of
its own collect/train rounds and one greedy evaluation. Its traced functions (`_collect`, `_train`,
`_evaluate`) are timed as they are called by `step()`. Printed: milliseconds per env step of each phase
and its share, the env steps per hour they allow, and how many a budget of `--minutes` reaches.

It says what bounds a learning benchmark (benchmarks/atari.py, mujoco_learning.py) that missed its target:
collection (the envs and the policy's forward pass), the gradient steps, or the evaluation.
Run: python benchmarks/rl_phases.py [--presets dqn-breakout ppo-breakout] [--steps 4096] [--minutes 90]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _learning import cpus, load, make_workload, parse_sets, peak_rss_mb, unknown_preset

from lab import settings

PHASES = ("collect", "train", "evaluate")


def timed(function, seconds: dict, phase: str):
    def call(*args):
        started = time.perf_counter()
        result = function(*args)
        seconds[phase] += time.perf_counter() - started
        return result

    return call


def profile(preset: str, args, overrides: dict) -> dict:
    import dataclasses

    from lab import spec as specs
    from lab import workload as workloads

    fields = {f.name for f in dataclasses.fields(workloads.get(specs.load(preset)[0].workload).Config)}
    params = {"env_steps_per_step": args.warmup, "seed": 0, **overrides}
    if "initial_collect_steps" in fields:  # off-policy agents: random actions first (PPO has none)
        params.setdefault("initial_collect_steps", args.warmup)
    workload = make_workload(preset, params)
    try:
        started = time.perf_counter()
        warm = workload.step()  # the random-action warm-up, and the first calls of the traced functions
        warmup_seconds = time.perf_counter() - started - warm["charts/eval_seconds"]
        seconds = defaultdict(float)
        for phase in PHASES:
            setattr(workload, f"_{phase}", timed(getattr(workload, f"_{phase}"), seconds, phase))
        workload.config.env_steps_per_step = args.steps
        started = time.perf_counter()
        metrics = workload.step()
        total = time.perf_counter() - started
        steps = metrics["charts/env_steps"] - warm["charts/env_steps"]
    finally:
        workload.close()
    return {"steps": steps, "seconds": dict(seconds), "total": total, "warmup_ms": 1e3 * warmup_seconds / args.warmup,
            "eval_length": metrics["eval/episode_length"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["dqn-breakout", "ppo-breakout"])
    parser.add_argument("--steps", type=int, default=4096, help="env steps of training timed per preset")
    parser.add_argument("--warmup", type=int, default=1024, help="random-action env steps first (timed apart)")
    parser.add_argument("--minutes", type=float, default=90.0, help="the budget to project the env steps to")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset param")
    args = parser.parse_args(argv)
    overrides = parse_sets(args.set)

    if unknown_preset("rl_phases", args.presets):
        return 2
    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import tensorflow  # noqa: F401

    print(f"RL phases: {args.steps} env steps per preset on {cpus()}, load {load():.1f}", flush=True)
    for preset in args.presets:
        run = profile(preset, args, overrides)
        steps, seconds = run["steps"], run["seconds"]
        training = seconds["collect"] + seconds["train"]
        print(f"{preset}: {steps} env steps in {run['total']:.1f} s (the first step apart: {run['warmup_ms']:.2f} "
              f"ms/env step, with the first calls and any random-action warm-up)", flush=True)
        for phase in PHASES:
            per_step = 1e3 * seconds[phase] / steps
            print(f"  {phase:<9} {seconds[phase]:7.1f} s  {per_step:7.2f} ms/env step  "
                  f"{100 * seconds[phase] / run['total']:5.1f}% of the step", flush=True)
        per_hour = 3600 * steps / training
        print(f"  training alone (collect + train): {steps / training:.0f} env steps/s, {per_hour / 1e6:.2f}M an "
              f"hour, {per_hour * args.minutes / 60 / 1e6:.2f}M in {args.minutes:g} min (evaluations not counted; one "
              f"took {seconds['evaluate']:.1f} s for episodes of {run['eval_length']:.0f} steps); "
              f"peak RSS {peak_rss_mb():.0f} MB, load {load():.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the learning benchmarks (atari.py, mujoco_learning.py): train a preset in this process against a
wall-clock budget, a random policy's return in the same run, peak RSS, and the learning curve as PNG.

The leading underscore marks a helper, not a benchmark.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np


def load() -> float:
    return os.getloadavg()[0]


def cpus() -> str:
    """The CPUs this process may run on (taskset narrows them), of the machine's."""
    return f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} CPUs"


def peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def learning_parser(doc: str, presets: list[str], eval_every: int) -> argparse.ArgumentParser:
    """The arguments atari.py and mujoco_learning.py share; each adds its own budget."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=presets)
    parser.add_argument("--eval-every", type=int, default=eval_every, help="env steps between greedy evaluations")
    parser.add_argument("--random-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset param")
    return parser


def unknown_preset(program: str, presets: list[str]) -> bool:
    """One line on stderr if a preset does not load (before TensorFlow is imported); True then."""
    from lab import spec as specs
    from lab.errors import LabError

    try:
        for preset in presets:
            specs.load(preset)
    except LabError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return True
    return False


def parse_sets(pairs: list[str]) -> dict:
    """`--set key=value` pairs (values read as YAML: numbers, lists) into workload params."""
    import yaml

    params = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        params[key] = yaml.safe_load(value)
    return params


def make_workload(preset: str, overrides: dict):
    """The preset's workload with `overrides` on its params, set up in this process (not through Ray)."""
    from lab import spec as specs
    from lab import workload as workloads

    spec = specs.load(preset)[0]
    cls = workloads.get(spec.workload)
    config = cls.make_config({**spec.trial_params, **overrides})
    workload = cls(config, workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix=f"bench-{preset}-")))
    workload.setup()
    return workload


def random_return(env_id: str, episodes: int, seed: int, max_steps: int = 0) -> tuple[float, float]:
    """(mean, std) return of uniformly random actions over `episodes` evaluation episodes (the full game,
    rewards unclipped: the same env as the greedy evaluation), episode i reset with seed + i."""
    from envs.gym_envs import make_gym_env

    env = make_gym_env(env_id)
    env.action_space.seed(seed)
    returns = []
    try:
        for episode in range(episodes):
            env.reset(seed=seed + episode)
            total, steps, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, steps = total + float(reward), steps + 1
                done = terminated or truncated or (max_steps and steps >= max_steps)
            returns.append(total)
    finally:
        env.close()
    return float(np.mean(returns)), float(np.std(returns))


def train(workload, max_seconds: float, on_row=None) -> list[dict]:
    """step() until the workload's budget is spent or another step, as long as the last, would end past
    `max_seconds`; one row per evaluation (the first always)."""
    rows, started = [], time.perf_counter()
    while True:
        metrics = workload.step()
        row = {"env_steps": int(metrics["charts/env_steps"]), "seconds": time.perf_counter() - started,
               "eval_return": float(metrics["eval/average_return"]), "sps": float(metrics["charts/sps"]),
               "train_return": float(metrics.get("train/episode_return", float("nan"))), "load": load(),
               "rss_mb": peak_rss_mb()}
        rows.append(row)
        if on_row:
            on_row(row)
        last = row["seconds"] - (rows[-2]["seconds"] if len(rows) > 1 else 0.0)
        if metrics["done"] or row["seconds"] + last > max_seconds:
            return rows


def print_row(row: dict) -> None:
    print(f"  {row['env_steps']:>9} env steps  greedy {row['eval_return']:9.1f}  exploring "
          f"{row['train_return']:9.1f}  {row['seconds']:7.0f} s  {row['sps']:7.0f} steps/s  "
          f"peak RSS {row['rss_mb']:6.0f} MB  load {row['load']:.1f}", flush=True)


def write_curve(path: str, curves: dict[str, list[dict]], title: str, baselines: dict[str, float],
                target: float | None = None) -> str:
    """A PNG of greedy evaluation return against env steps, one line per curve, dashed baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, rows in curves.items():
        axes.plot([r["env_steps"] for r in rows], [r["eval_return"] for r in rows], marker="o", label=label)
    for label, value in baselines.items():
        axes.axhline(value, linestyle="--", color="grey", label=f"{label} ({value:.4g})")
    if target is not None:
        axes.axhline(target, linestyle=":", color="red", label=f"target ({target:.4g})")
    axes.set_xlabel("env steps")
    axes.set_ylabel("greedy evaluation return")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

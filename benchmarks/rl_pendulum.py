"""Pendulum-v1 to -200: env steps and wall seconds of the SAC, TD3 and DDPG presets, 3 seeds each.

Each seed runs the preset's workload (its fixed params; the swept learning rates at their defaults) in
this process (not through Ray), step() after step(), until the greedy evaluation (10 episodes) averages
>= -200 or the preset's budget is spent. Printed per seed: env steps and wall seconds after setup
(evaluations included), training steps/s (env steps over the seconds of the collect/train rounds, the
evaluations apart), the CPU seconds of this process over the same span, the setup seconds (tracing
included, TensorFlow's import excluded), the score, and the load average; then the medians against the
targets. A random policy scores about -1200. Timings are only as good as the machine is idle.

Baseline, side by side: the SAC preset's training steps/s against the naive loop of docs/stack.md (one
env, 1 collect step + 1 gradient step per round, ~125 steps/s there), both measured here over the same
1000 env steps of training (after 1000 random ones) with the same networks and batch size.

Run: python benchmarks/rl_pendulum.py [sac|td3|ddpg ...] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import settings  # noqa: E402

TARGETS = {  # agent -> (preset, env steps, wall seconds after setup), medians over the seeds
    "sac": ("sac-pendulum", 6_000, 30.0),
    "td3": ("td3-pendulum", 10_000, 60.0),
    "ddpg": ("ddpg-pendulum", 10_000, 60.0),
}
SCORE = -200.0


def run_seed(preset: str, seed: int) -> dict:
    """One seed of a preset: setup, then steps until the reference score or the budget."""
    from lab import spec as specs, workload as workloads

    spec = specs.load(preset)[0]
    metric = spec.reference.metric or "eval/average_return"
    cls = workloads.get(spec.workload)
    config = cls.make_config({**spec.trial_params, "seed": seed})
    started = time.perf_counter()
    workload = cls(config, workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix=f"bench-{preset}-")))
    workload.setup()
    setup = time.perf_counter() - started
    try:
        started, cpu_started, train_seconds, last_steps = time.perf_counter(), time.process_time(), 0.0, 0
        while True:
            metrics = workload.step()
            train_seconds += (metrics["charts/env_steps"] - last_steps) / max(metrics["charts/sps"], 1e-9)
            last_steps = metrics["charts/env_steps"]
            if metrics[metric] >= SCORE or metrics["done"]:
                break
        seconds = time.perf_counter() - started
        return {
            "steps": metrics["charts/env_steps"], "seconds": seconds, "cpu": time.process_time() - cpu_started,
            "sps": metrics["charts/env_steps"] / max(train_seconds, 1e-9), "setup": setup,
            "score": metrics[metric], "solved": metrics[metric] >= SCORE,
        }
    finally:
        workload.close()


def training_sps(preset: str, **params) -> float:
    """Training steps/s of a preset's workload over its second 1000 env steps (the first are random)."""
    from lab import spec as specs, workload as workloads

    spec = specs.load(preset)[0]
    cls = workloads.get(spec.workload)
    config = cls.make_config({**spec.trial_params, "max_env_steps": 2_000, "initial_collect_steps": 1_000, **params})
    workload = cls(config, workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix=f"bench-{preset}-")))
    workload.setup()
    try:
        workload.step()
        return workload.step()["charts/sps"]
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("agents", nargs="*", metavar="AGENT", help=f"{' or '.join(TARGETS)} (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive-loop steps/s comparison")
    args = parser.parse_args(argv)
    unknown = [a for a in args.agents if a not in TARGETS]
    if unknown:
        parser.error(f"unknown agent {unknown[0]!r} (known: {', '.join(TARGETS)})")

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    started = time.perf_counter()
    import tensorflow  # noqa: F401  (timed apart from the first setup)

    print(f"import tensorflow: {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    if not args.no_baseline:
        naive = training_sps("sac-pendulum", num_envs=1, collect_steps_per_iteration=1, train_steps_per_iteration=1)
        batched = training_sps("sac-pendulum")
        print(f"SAC training steps/s: naive loop (1 env, 1 collect + 1 gradient step per round) {naive:.0f}, "
              f"preset (8 envs, 64 + 64 per round) {batched:.0f}: x{batched / naive:.1f}; "
              f"load average {os.getloadavg()[0]:.1f}")
    ok = True
    for agent in args.agents or list(TARGETS):
        preset, target_steps, target_seconds = TARGETS[agent]
        print(f"\n{preset}: target median <= {target_steps} env steps and <= {target_seconds:.0f} s after setup")
        print(f"{'seed':>4}{'env steps':>11}{'wall s':>9}{'steps/s':>9}{'cpu s':>8}{'setup s':>9}{'score':>9}{'load':>6}")
        runs = []
        for seed in args.seeds:
            run = run_seed(preset, seed)
            runs.append(run)
            print(f"{seed:>4}{run['steps']:>11}{run['seconds']:>9.1f}{run['sps']:>9.0f}{run['cpu']:>8.1f}"
                  f"{run['setup']:>9.1f}{run['score']:>9.1f}{os.getloadavg()[0]:>6.1f}"
                  f"{'' if run['solved'] else '  (budget spent, not solved)'}", flush=True)
        steps = statistics.median(r["steps"] if r["solved"] else float("inf") for r in runs)
        seconds = statistics.median(r["seconds"] if r["solved"] else float("inf") for r in runs)
        sps = statistics.median(r["sps"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        setup = statistics.median(r["setup"] for r in runs)
        passed = steps <= target_steps and seconds <= target_seconds
        ok &= passed
        verdict = {True: "OK", False: "MISSED"}
        print(f"median{steps:>9}{seconds:>9.1f}{sps:>9.0f}{cpu:>8.1f}{setup:>9.1f}   steps {verdict[steps <= target_steps]}, "
              f"seconds {verdict[seconds <= target_seconds]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

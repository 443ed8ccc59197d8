"""CartPole-v1 to 475: env steps and wall seconds of the DQN, PPO, C51 and REINFORCE presets, 3 seeds each.

Each seed runs the preset's workload in this process (not through Ray), step() after step(),
until the greedy evaluation (10 episodes) averages >= 475 or the preset's budget is spent. The
presets are sweeps: the keys they search (learning_rate) keep the workload's defaults here, the
tuned values inside each sweep's range.
Printed per seed: env steps and wall seconds after setup (evaluations included), the CPU seconds
of this process over the same span (all threads; close to the wall time on an idle machine), the
setup seconds (TensorFlow import excluded: it is paid once, before the first seed; of setup, the
seconds spent tracing the tf.functions and warming them up, where the workload reports them), then the
medians against the targets, and the load average (the timings are only as good as the machine is idle).

Run: python benchmarks/rl_cartpole.py [dqn|ppo|c51|reinforce|ppo_kl ...] [--seeds 0 1 2]
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

TARGETS = {  # preset -> (env steps, wall seconds after setup), medians over the seeds
    "dqn": ("dqn-cartpole", 10_000, 15.0),
    "ppo": ("ppo-cartpole", 15_000, 8.0),
    "c51": ("c51-cartpole", 10_000, 30.0),
    "reinforce": ("reinforce-cartpole", 40_000, 30.0),  # on-policy, one gradient step per round of whole episodes
    "ppo_kl": ("ppo-kl-cartpole", 25_000, 10.0),  # PPO's rounds with an adaptive KL penalty instead of clipping
}
SCORE = 475.0


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
        started, cpu_started = time.perf_counter(), time.process_time()
        while True:
            metrics = workload.step()
            if metrics[metric] >= SCORE or metrics["done"]:
                break
        return {
            "steps": metrics["charts/env_steps"], "seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu_started, "setup": setup, "score": metrics[metric],
            "solved": metrics[metric] >= SCORE, "trace": getattr(workload, "trace_seconds", float("nan")),
            "warmup": getattr(workload, "warmup_seconds", float("nan")),
        }
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("agents", nargs="*", metavar="AGENT", help=f"{' or '.join(TARGETS)} (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    unknown = [a for a in args.agents if a not in TARGETS]
    if unknown:
        parser.error(f"unknown agent {unknown[0]!r} (known: {', '.join(TARGETS)})")

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    started = time.perf_counter()
    import tensorflow  # noqa: F401  (timed apart from the first setup)

    print(f"import tensorflow: {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    ok = True
    for agent in args.agents or list(TARGETS):
        preset, target_steps, target_seconds = TARGETS[agent]
        print(f"\n{preset}: target median <= {target_steps} env steps and <= {target_seconds:.0f} s after setup")
        print(f"{'seed':>4}{'env steps':>11}{'wall s':>9}{'cpu s':>8}{'setup s':>9}{'trace s':>9}{'warm s':>8}"
              f"{'score':>8}{'load':>6}")
        runs = []
        for seed in args.seeds:
            run = run_seed(preset, seed)
            runs.append(run)
            print(f"{seed:>4}{run['steps']:>11}{run['seconds']:>9.1f}{run['cpu']:>8.1f}{run['setup']:>9.1f}"
                  f"{run['trace']:>9.1f}{run['warmup']:>8.1f}{run['score']:>8.1f}{os.getloadavg()[0]:>6.1f}"
                  f"{'' if run['solved'] else '  (budget spent, not solved)'}", flush=True)
        steps = statistics.median(r["steps"] if r["solved"] else float("inf") for r in runs)
        seconds = statistics.median(r["seconds"] if r["solved"] else float("inf") for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        setup = statistics.median(r["setup"] for r in runs)
        passed = steps <= target_steps and seconds <= target_seconds
        ok &= passed
        verdict = {True: "OK", False: "MISSED"}
        print(f"median {steps:>9}{seconds:>9.1f}{cpu:>8.1f}{setup:>9.1f}   steps {verdict[steps <= target_steps]}, "
              f"seconds {verdict[seconds <= target_seconds]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

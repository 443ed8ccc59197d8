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

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _learning import make_workload
from _to_score import agents_parser, parse_agents, run_targets

from lab import settings

TARGETS = {  # agent -> (preset, env steps, wall seconds after setup), medians over the seeds
    "sac": ("sac-pendulum", 6_000, 30.0),
    "td3": ("td3-pendulum", 10_000, 60.0),
    "ddpg": ("ddpg-pendulum", 10_000, 60.0),
}
SCORE = -200.0


def training_sps(preset: str, **params) -> float:
    """Training steps/s of a preset's workload over its second 1000 env steps (the first are random)."""
    workload = make_workload(preset, {"max_env_steps": 2_000, "initial_collect_steps": 1_000, **params})
    try:
        workload.step()
        return workload.step()["charts/sps"]
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = agents_parser(__doc__, TARGETS)
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive-loop steps/s comparison")
    args = parse_agents(parser, TARGETS, argv)
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
    columns = ["env steps", "wall s", "steps/s", "cpu s", "setup s", "score"]
    return 0 if run_targets(TARGETS, args.agents, args.seeds, SCORE, columns) else 1


if __name__ == "__main__":
    sys.exit(main())

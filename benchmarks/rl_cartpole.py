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

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _to_score import agents_parser, parse_agents, run_targets

from lab import settings

TARGETS = {  # preset -> (env steps, wall seconds after setup), medians over the seeds
    "dqn": ("dqn-cartpole", 10_000, 15.0),
    "ppo": ("ppo-cartpole", 15_000, 8.0),
    "c51": ("c51-cartpole", 10_000, 30.0),
    "reinforce": ("reinforce-cartpole", 40_000, 30.0),  # on-policy, one gradient step per round of whole episodes
    "ppo_kl": ("ppo-kl-cartpole", 25_000, 10.0),  # PPO's rounds with an adaptive KL penalty instead of clipping
}
SCORE = 475.0


def main(argv: list[str] | None = None) -> int:
    args = parse_agents(agents_parser(__doc__, TARGETS), TARGETS, argv)
    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    started = time.perf_counter()
    import tensorflow  # noqa: F401  (timed apart from the first setup)

    print(f"import tensorflow: {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    columns = ["env steps", "wall s", "cpu s", "setup s", "trace s", "warm s", "score"]
    return 0 if run_targets(TARGETS, args.agents, args.seeds, SCORE, columns) else 1


if __name__ == "__main__":
    sys.exit(main())

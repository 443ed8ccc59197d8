"""benchmarks/rl_phases.py on tiny budgets: each phase's time per env step, for an off- and an on-policy preset."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_phases_of_dqn_and_ppo_presets_are_timed_and_projected():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rl_phases.py"), "--presets", "dqn-cartpole", "ppo-cartpole",
         "--steps", "512", "--warmup", "256", "--minutes", "1", "--set", "eval_episodes=2"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for preset in ("dqn-cartpole", "ppo-cartpole"):
        block = result.stdout.split(f"{preset}: ", 1)[1]
        shares = [float(share) for share in re.findall(r"ms/env step\s+([\d.]+)% of the step", block)[:3]]
        assert len(shares) == 3 and 50 < sum(shares) <= 100.5, block  # collect, train, evaluate: most of the step
        assert re.search(r"training alone \(collect \+ train\): \d+ env steps/s, [\d.]+M an hour", block), block


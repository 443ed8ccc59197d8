"""benchmarks/rl_cartpole.py and rl_pendulum.py (their shared benchmarks/_to_score.py): a row per seed, medians."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["rl_cartpole", "rl_pendulum"])
def test_an_unknown_agent_is_a_usage_error_before_tensorflow(script):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "dqn2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{script}.py: error: unknown agent 'dqn2' (known: " in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_ppo_cartpole_seed_row_and_medians_against_the_targets():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rl_cartpole.py"), "ppo", "--seeds", "0"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a target missed on a busy machine
    row = re.search(r"^\s+0\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+",
                    result.stdout, re.M)
    assert row, result.stdout
    steps, score = int(row.group(1)), float(row.group(7))
    assert 0 < steps <= 100_000 and (score >= 475 or "not solved" in result.stdout), result.stdout
    assert re.search(r"^median\s+\S+\s+\S+.*steps (OK|MISSED), seconds (OK|MISSED)$", result.stdout, re.M), result.stdout

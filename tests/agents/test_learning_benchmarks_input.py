"""The learning benchmarks (atari.py, mujoco_learning.py, rl_phases.py) on bad input: one line on stderr, exit 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, preset", [("atari", "dqn-breakot"), ("mujoco_learning", "sac-hoper"),
                                            ("rl_phases", "dqn-cartpol")])
def test_an_unknown_preset_is_one_line_and_exit_2(script, preset, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--presets", preset],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: unknown preset '{preset}'"), lines
    assert not list(tmp_path.iterdir())  # nothing written

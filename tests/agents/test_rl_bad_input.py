"""Bad RL specs stop `lab run` at spec-load time with one line and nothing recorded: an Atari id without
ale-py, a MuJoCo id without mujoco, an id EnvPool lacks, a pixel env given an MLP network.

A missing package is a real subprocess whose import system cannot see it (`HIDE` below), so these run on
a machine that has every extra installed.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

HIDE = """
import importlib.util, sys
hidden = set(sys.argv[1].split(","))
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in hidden else find_spec(name, *a)
for name in hidden:
    sys.modules[name] = None  # `import name` raises ImportError
from lab.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_lab(hidden: str, *args: str, home) -> subprocess.CompletedProcess:
    """`lab ARGS` in a fresh interpreter where the packages named in `hidden` (comma-separated) are absent."""
    import os

    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", HIDE, hidden, *args], capture_output=True, text=True,
                          timeout=300, env=env)


def assert_one_line_and_nothing_recorded(result, expected: str, home) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"lab: error: {expected}"]
    listed = run_lab("", "ls", home=home)
    assert listed.returncode == 0 and "dqn" not in listed.stdout and "sac" not in listed.stdout, listed.stdout


@pytest.mark.parametrize("hidden, args, expected", [
    ("ale_py", ["run", "dqn-breakout"],
     "'ALE/Breakout-v5' needs the Atari emulator: pip install agent-lab[atari]"),
    ("mujoco", ["run", "sac-hopper"],
     "'Hopper-v5' needs mujoco, which is not installed: pip install agent-lab[mujoco]"),
    ("envpool", ["run", "dqn-cartpole", "--set", "env_backend=envpool"],
     "env_backend 'envpool' needs EnvPool: pip install agent-lab[envpool]"),
    ("", ["run", "dqn-gridmaze", "--set", "env_backend=envpool"],
     "EnvPool has no environment 'lab/GridMaze-v0' (env_backend: gymnasium or auto steps it "
     "with Gymnasium)"),
    ("", ["run", "dqn-breakout", "--set", "conv_layers=[]"],
     "DQN's MLP networks need flat vector observations, but 'ALE/Breakout-v5' observes "
     "Box(0, 255, (84, 84, 4), uint8) (images need a conv network)"),
    ("", ["run", "ppo-breakout", "--set", "conv_layers=[]"],
     "PPO's MLP networks need flat vector observations, but 'ALE/Breakout-v5' observes "
     "Box(0, 255, (84, 84, 4), uint8) (images need a conv network)"),
])
def test_bad_rl_specs_stop_with_one_line(hidden, args, expected, tmp_path):
    if "envpool" in args[-1] and not hidden:
        pytest.importorskip("envpool")
    assert_one_line_and_nothing_recorded(run_lab(hidden, *args, home=tmp_path), expected, tmp_path)

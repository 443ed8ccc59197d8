"""benchmarks/rl_throughput.py (the lab's side of `rl_vs_sb3.py --heavy`) on a tiny budget, and both on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("preset, sets", [
    ("dqn-cartpole", ["--set", "collect_steps_per_iteration=16", "--set", "train_steps_per_iteration=4"]),
    ("ppo-cartpole", ["--set", "collect_steps_per_iteration=128"]),
])
def test_a_tiny_budget_prints_the_training_rate_of_whole_rounds(preset, sets, tmp_path):
    result = _run(str(ROOT / "benchmarks" / "rl_throughput.py"), preset, "--seconds", "1", "--warmup", "64",
                  "--learning-starts", "64", *sets, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["preset"] == preset and figures["seconds"] >= 1.0
    assert figures["timed_env_steps"] > 0 and figures["env_steps_per_s"] == pytest.approx(
        figures["timed_env_steps"] / figures["seconds"])
    assert figures["peak_rss_mb"] > 0 and "load_before" in figures


def test_evaluate_trains_from_the_first_env_step_then_plays_greedy_episodes(tmp_path):
    """The lab's side of `rl_vs_sb3.py --wall-clock`: the preset's own warm-up inside the timed span."""
    result = _run(str(ROOT / "benchmarks" / "rl_throughput.py"), "dqn-cartpole", "--seconds", "1", "--evaluate",
                  "--learning-starts", "-1", "--set", "eval_episodes=3", "--set", "collect_steps_per_iteration=16",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["eval_episodes"] == 3 and 8 <= figures["eval_return_mean"] <= 500
    assert figures["env_steps"] == figures["timed_env_steps"] > 0  # counted from the first env step


@pytest.mark.parametrize("args, line", [
    (["rl_vs_sb3.py", "--wall-clock", "10", "dqn-breakout"], "rl_vs_sb3.py: error: --wall-clock takes minutes"),
    (["rl_vs_sb3.py", "--wall-clock", "0"], "rl_vs_sb3.py: error: --wall-clock takes minutes"),
    (["rl_throughput.py", "ppo-breakot"], "rl_throughput: error: unknown preset 'ppo-breakot'"),
    (["rl_vs_sb3.py", "--heavy", "ppo-breakot"], "rl_vs_sb3.py: error: unknown heavy preset(s): ppo-breakot"),
])
def test_an_unknown_preset_is_one_line_and_exit_2(args, line, tmp_path):
    result = _run(str(ROOT / "benchmarks" / args[0]), *args[1:], cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert not list(tmp_path.iterdir())  # nothing written

"""MuJoCo (the `mujoco` extra, installed by the test set-up): SAC and TD3 presets for Hopper-v5 and
HalfCheetah-v5 train through `lab run` and the benchmark, on tiny budgets."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lab

pytest.importorskip("mujoco")
ROOT = Path(__file__).resolve().parents[2]
TINY = {"num_envs": 2, "actor_fc_layers": "[16]", "critic_fc_layers": "[16]", "replay_capacity": 1000,
        "batch_size": 16, "initial_collect_steps": 64, "collect_steps_per_iteration": 16,
        "train_steps_per_iteration": 4, "env_steps_per_step": 128, "max_env_steps": 256, "eval_episodes": 1}


def sets(params: dict) -> list[str]:
    return [arg for key, value in params.items() for arg in ("--set", f"{key}={value}")]


@pytest.mark.parametrize("preset", ["sac-hopper", "sac-halfcheetah", "td3-hopper", "td3-halfcheetah"])
def test_mujoco_presets_validate_with_rl_zoo_settings(preset):
    from lab import spec as specs

    from lab import workload as workloads

    spec = specs.load(preset)[0]
    params = vars(workloads.get(spec.workload).make_config(spec.trial_params))  # the defaults the preset keeps
    assert params["env_id"] in ("Hopper-v5", "HalfCheetah-v5") and params["max_env_steps"] == 200_000
    assert params["initial_collect_steps"] == 10_000 and params["batch_size"] == 256  # rl-zoo's learning_starts
    assert params["collect_steps_per_iteration"] == params["train_steps_per_iteration"]  # one gradient step a step


@pytest.mark.slow
def test_a_mujoco_trial_runs_through_lab_run(tmp_path):
    env = {"LAB_HOME": str(tmp_path / "home")}
    run = lab("run", "sac-hopper", *sets(TINY), "--set", "resources.cpu=1", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = re.search(r"experiment ids: (\d+)", run.stdout).group(1)
    shown = lab("show", experiment, env=env)
    assert "TERMINATED" in shown.stdout.upper() or "terminated" in shown.stdout, shown.stdout


@pytest.mark.slow
def test_mujoco_benchmark_prints_steps_per_second_and_a_curve_on_a_tiny_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mujoco_learning.py"), "--presets", "td3-hopper", "--steps", "256",
         "--eval-every", "128", "--random-episodes", "2", "--png-dir", str(tmp_path),
         *sets({k: v for k, v in TINY.items() if k not in ("max_env_steps", "env_steps_per_step")})],
        capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: the target missed, as on a tiny budget
    assert re.search(r"td3-hopper: random policy -?[\d.]+ \+- [\d.]+ over 2 episodes", result.stdout), result.stdout
    assert re.search(r"at 2\d\d env steps in \d+ s, \d+ env steps/s", result.stdout), result.stdout  # a round may overshoot
    assert (tmp_path / "mujoco-td3-hopper.png").stat().st_size > 1000

"""envs/: the lab's GridMaze, its registration, Atari preprocessing, optional suites, the conv DQN on Breakout."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import gym_envs
from envs.grid_maze import DEFAULT_LAYOUT, GridMaze, shortest_path_length
from lab.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = [2, 2, 1, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1]  # the default maze's shortest path (down, right, ...)


def test_envs_modules_import_no_tensorflow():
    code = ("import sys, envs.gym_envs, envs.grid_maze, gymnasium; "
            "gymnasium.make('lab/GridMaze-v0'); "
            "print([m for m in ('tensorflow', 'tf_agents', 'ray') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_lab_ids_are_registered_by_the_env_checks_in_a_fresh_process():
    """As in a Ray worker: the id check (which agents.tf_env runs before building an env) registers the lab's envs."""
    code = ("import gymnasium; assert 'lab/GridMaze-v0' not in gymnasium.registry; "
            "from envs.gym_envs import check_env_id; check_env_id('lab/GridMaze-v0'); "
            "print(gymnasium.make('lab/GridMaze-v0').spec.max_episode_steps)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "100"


def test_grid_maze_passes_gymnasiums_env_checker():
    check_env(gymnasium.make("lab/GridMaze-v0", render_mode="rgb_array").unwrapped, skip_render_check=False)
    check_env(gymnasium.make("lab/GridMaze-v0", slip=0.2).unwrapped)


def test_shortest_path_scores_the_best_return_and_a_wall_stops_the_agent():
    assert shortest_path_length() == len(SOLUTION) == 16
    env = gymnasium.make("lab/GridMaze-v0")
    observation, _ = env.reset(seed=0)
    assert observation.dtype == np.float32 and observation.sum() == 1 and observation[0] == 1
    observation, reward, terminated, _, info = env.step(1)  # right from S: a floor cell
    assert info["position"] == (0, 1) and reward == pytest.approx(-0.01) and not terminated
    _, _, _, _, info = env.step(1)  # right again: a wall, no move
    assert info["position"] == (0, 1)
    env.reset(seed=0)
    total = 0.0
    for action in SOLUTION:
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
    assert terminated and not truncated and total == pytest.approx(0.85)


def test_random_walk_is_truncated_by_the_time_limit():
    env = gymnasium.make("lab/GridMaze-v0")
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(0)  # up from the start: always a wall
        steps, done = steps + 1, terminated or truncated
    assert truncated and steps == 100


def test_rendering_draws_the_agent():
    env = GridMaze(render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (7 * 32, 7 * 32, 3) and first.dtype == np.uint8
    env.step(2)
    assert not np.array_equal(first, env.render())
    text = GridMaze(render_mode="ansi")
    text.reset()
    assert text.render().splitlines()[0] == "A.#...."


@pytest.mark.parametrize("layout, match", [
    (("S..", "..."), "exactly one 'S' and one 'G'"),
    (("S.X", "..G"), "may only hold"),
])
def test_bad_layouts_are_refused(layout, match):
    with pytest.raises(ValueError, match=match):
        GridMaze(layout=layout)


def test_slip_makes_moves_random_but_seeded():
    def positions(seed):
        env = GridMaze(slip=0.5)
        env.reset(seed=seed)
        return [env.step(2)[4]["position"] for _ in range(20)]

    assert positions(3) == positions(3) != positions(4)
    assert DEFAULT_LAYOUT[0][0] == "S"


def test_atari_ids_get_the_standard_preprocessing():
    env = gym_envs.make_gym_env("ALE/Breakout-v5")
    try:
        assert env.observation_space.shape == (84, 84, 4) and env.observation_space.dtype == np.uint8
        observation, _ = env.reset(seed=0)
        assert observation.shape == (84, 84, 4) and observation.dtype == np.uint8 and observation.max() > 0
        assert env.unwrapped._frameskip == 1  # frame skipping is AtariPreprocessing's (4), not the emulator's
    finally:
        env.close()
    gym_envs.check_spaces("ALE/Breakout-v5", "DQN", discrete_actions=True, vector_observations=False)
    with pytest.raises(gym_envs.EnvError, match=r"MLP networks need flat vector observations.*84, 84, 4"):
        gym_envs.check_spaces("ALE/Breakout-v5", "DQN", discrete_actions=True)


def test_mujoco_ids_name_the_pip_extra_when_mujoco_is_missing():
    import importlib.util

    if importlib.util.find_spec("mujoco") is not None:
        pytest.skip("mujoco is installed here")
    with pytest.raises(gym_envs.EnvError, match=r"^'Hopper-v5' needs mujoco, which is not installed: pip install agent-lab\[mujoco\]$"):
        gym_envs.check_env_id("Hopper-v5")


def test_mujoco_error_is_one_line_from_the_cli():
    import importlib.util

    from tests.conftest import lab

    if importlib.util.find_spec("mujoco") is not None:
        pytest.skip("mujoco is installed here")

    result = lab("run", "dqn-cartpole", "--set", "env_id=Hopper-v5", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: error: 'Hopper-v5' needs mujoco, which is not installed: pip install agent-lab[mujoco]"]


# ------------------------------------------------------------------ the DQN presets on these envs
def preset_params(name: str, **overrides) -> dict:
    from lab import spec as specs

    return {**specs.load(name)[0].trial_params, **overrides}


def test_conv_dqn_runs_a_few_iterations_on_breakout(tmp_path):
    from lab.workload.testing import make

    params = preset_params(
        "dqn-breakout", num_envs=2, replay_capacity=200, initial_collect_steps=32, collect_steps_per_iteration=16,
        train_steps_per_iteration=2, batch_size=8, target_update_period=4, epsilon_decay_steps=64,
        env_steps_per_step=32, max_env_steps=64, eval_episodes=1, max_episode_steps=40,
    )
    workload = make("dqn", params, trial_dir=str(tmp_path))
    try:
        assert [layer.name for layer in workload.q_network.layers[0].layers][:1] == ["scale_pixels"]
        first, second = workload.step(), workload.step()
        assert not first["done"] and second["done"] and second["charts/env_steps"] >= 64 and second["train/gradient_steps"] > 0
        assert math.isfinite(second["train/loss"]) and second["eval/episode_length"] == 40
        assert type(workload.optimizer).__name__ == "RMSprop"
        observations = np.random.default_rng(0).integers(0, 256, (3, 84, 84, 4)).astype(np.uint8)
        assert workload.greedy_actions(observations).shape == (3,)
    finally:
        workload.close()


def test_conv_layers_need_image_observations_and_valid_triples():
    from agents.dqn import DQN

    with pytest.raises(SpecError, match=r"conv layers need image observations .* 'CartPole-v1'"):
        DQN.make_config({"conv_layers": [[8, 3, 1]]})
    with pytest.raises(SpecError, match=r"conv_layers must be \[filters, kernel, stride\] triples"):
        DQN.make_config({"env_id": "ALE/Breakout-v5", "conv_layers": [[8, 3]]})


@pytest.mark.slow
def test_gridmaze_preset_is_learned_by_dqn(tmp_path):
    """The shipped preset on its budget: DQN finds the 16-step path (return 0.85) within a few thousand steps."""
    from lab.workload.testing import make

    workload = make("dqn", preset_params("dqn-gridmaze", max_env_steps=10_000), trial_dir=str(tmp_path))
    try:
        while True:
            metrics = workload.step()
            if metrics["eval/average_return"] >= 0.8 or metrics["done"]:
                break
        assert metrics["eval/average_return"] == pytest.approx(0.85, abs=1e-4), metrics
        assert metrics["charts/env_steps"] <= 10_000
    finally:
        workload.close()


def test_vector_env_steps_exactly_like_the_batched_wrappers():
    """The fast path (agents/vector_env.py) gives the same time steps as BatchedPyEnvironment, resets included."""
    from tf_agents.environments import batched_py_environment

    from agents.tf_env import make_py_env
    from agents.vector_env import make_vector_py_env

    n = 3
    batched = batched_py_environment.BatchedPyEnvironment([make_py_env("CartPole-v1", 5 + i) for i in range(n)],
                                                          multithreading=False)
    vector = make_vector_py_env("CartPole-v1", n, seed=5)
    assert vector.batched and vector.batch_size == n
    assert vector.time_step_spec() == batched.time_step_spec() and vector.action_spec() == batched.action_spec()
    rng = np.random.default_rng(0)
    pairs = [(batched.reset(), vector.reset())]
    for _ in range(200):
        action = rng.integers(2, size=n)
        pairs.append((batched.step(action), vector.step(action)))
    for expected, got in pairs:
        for name in ("step_type", "reward", "discount", "observation"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
            assert getattr(got, name).dtype == getattr(expected, name).dtype, name
    step_types = np.stack([got.step_type for _, got in pairs])
    assert (step_types == 2).sum() >= 10 and (step_types[1:] == 0).sum() >= 10  # episodes ended and restarted
    assert all(got.discount[got.step_type == 2].max(initial=0) == 0 for _, got in pairs)  # terminations: discount 0
    vector.close()

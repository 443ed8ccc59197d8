"""EnvPool as a second env backend (envs/envpool_env.py, envs/backends.py): on fixed seeds, the same
observation layout and dtypes, reward and termination semantics as the Gymnasium path."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("envpool")

from envs.backends import make_vector_env, resolve_backend  # noqa: E402


def rollout(env_id: str, backend: str, steps: int, training: bool = False, n: int = 2, seed: int = 3,
            max_episode_steps: int | None = None):
    """(observation space, observations dtype/shape, rewards, terminated, truncated, first-after-end flags)."""
    envs = make_vector_env(env_id, n, seed, training=training, backend=backend, max_episode_steps=max_episode_steps)
    rng = np.random.default_rng(seed)
    observation, _ = envs.reset(seed=[seed + i for i in range(n)])
    shapes = {(observation.dtype, observation.shape)}
    rewards, terminated, truncated, resets = [], [], [], []
    ended = np.zeros(n, bool)
    space = envs.single_action_space
    for _ in range(steps):
        if hasattr(space, "n"):
            action = rng.integers(space.n, size=n)
        else:
            action = rng.uniform(space.low, space.high, (n,) + space.shape).astype(space.dtype)
        observation, reward, term, trunc, _ = envs.step(action)
        shapes.add((observation.dtype, observation.shape))
        resets.append(ended.copy())  # the step after an episode's last: a reset, reward 0
        rewards.append(np.asarray(reward, np.float64))
        terminated.append(np.asarray(term))
        truncated.append(np.asarray(trunc))
        ended = np.asarray(term) | np.asarray(trunc)
    envs.close()
    return (envs.single_observation_space, shapes, np.array(rewards), np.array(terminated), np.array(truncated),
            np.array(resets))


def test_auto_picks_envpool_for_its_ids_and_gymnasium_for_the_rest():
    assert resolve_backend("CartPole-v1", "auto") == "envpool"
    assert resolve_backend("ALE/Breakout-v5", "auto") == "envpool"
    assert resolve_backend("lab/GridMaze-v0", "auto") == "gymnasium"
    assert resolve_backend("CartPole-v1", "gymnasium") == "gymnasium"
    with pytest.raises(ValueError, match="EnvPool has no environment 'lab/GridMaze-v0'"):
        resolve_backend("lab/GridMaze-v0", "envpool")


def test_cartpole_on_both_backends_steps_alike():
    got = {backend: rollout("CartPole-v1", backend, 300, max_episode_steps=40) for backend in ("gymnasium", "envpool")}
    (space_g, shapes_g, rew_g, term_g, trunc_g, reset_g), (space_e, shapes_e, rew_e, term_e, trunc_e, reset_e) = (
        got["gymnasium"], got["envpool"])
    assert space_g.shape == space_e.shape == (4,) and shapes_g == shapes_e == {(np.dtype(np.float32), (2, 4))}
    for rewards, resets, term, trunc in ((rew_g, reset_g, term_g, trunc_g), (rew_e, reset_e, term_e, trunc_e)):
        assert np.all(rewards[resets] == 0) and np.all(rewards[~resets] == 1)  # 1 a step, 0 on the reset step
        assert term.any() and not np.any(term & trunc)  # random actions drop the pole: terminated, not truncated
        lengths = np.diff(np.flatnonzero(reset_e[:, 0] if rewards is rew_e else reset_g[:, 0]))
        assert lengths.size and lengths.max() <= 41  # the time limit of 40 agent steps (+1 reset step)


def test_breakout_on_both_backends_has_the_same_layout_rewards_and_lives():
    ends = {}
    for training in (True, False):
        for backend in ("gymnasium", "envpool"):
            space, shapes, rewards, terminated, truncated, resets = rollout("ALE/Breakout-v5", backend, 600,
                                                                            training=training)
            assert space.shape == (84, 84, 4) and space.dtype == np.uint8, backend
            assert shapes == {(np.dtype(np.uint8), (2, 84, 84, 4))}, backend
            assert set(np.unique(rewards)) <= {0.0, 1.0, 4.0, 7.0}, backend  # Breakout's brick values
            assert np.all(rewards[resets] == 0) and not truncated.any(), backend
            ends[backend, training] = int(terminated.sum())
    for backend in ("gymnasium", "envpool"):  # training episodes are single lives: ~5x as many ends
        assert ends[backend, True] >= 3 * max(ends[backend, False], 1), ends


def test_the_same_frames_when_the_game_is_deterministic():
    """Both backends preprocess alike: the first frames after a reset (no-op starts aside) show the same
    Breakout screen, greyscale 84x84 with the same brick rows."""
    frames = {}
    for backend in ("gymnasium", "envpool"):
        envs = make_vector_env("ALE/Breakout-v5", 1, 0, backend=backend)
        observation, _ = envs.reset(seed=[0])
        frames[backend] = observation[0, :, :, -1].astype(np.int16)
        envs.close()
    rows = slice(20, 35)  # the rows of bricks, which no-op starts do not move
    assert np.abs(frames["gymnasium"][rows] - frames["envpool"][rows]).mean() < 8


def test_mujoco_on_both_backends_has_the_same_spaces_and_rewards_per_step():
    pytest.importorskip("mujoco")
    results = {backend: rollout("Hopper-v5", backend, 200) for backend in ("gymnasium", "envpool")}
    (space_g, shapes_g, rew_g, term_g, *_), (space_e, shapes_e, rew_e, term_e, *_) = results.values()
    assert space_g.shape == space_e.shape == (11,)
    assert {s for _, s in shapes_g} == {s for _, s in shapes_e} == {(2, 11)}
    assert term_g.any() and term_e.any()  # random actions make the hopper fall: terminated (unhealthy)
    # per step: healthy reward 1 + forward progress - control cost, within the same range on both
    assert abs(np.median(rew_g) - np.median(rew_e)) < 0.5


@pytest.mark.parametrize("env_id", ["CartPole-v1", "ALE/Breakout-v5"])
def test_the_tf_agents_adapter_gives_the_same_specs_on_both_backends(env_id):
    from agents.vector_env import make_vector_py_env

    gym, pool = (make_vector_py_env(env_id, 2, seed=0, backend=backend) for backend in ("gymnasium", "envpool"))
    try:
        assert gym.time_step_spec() == pool.time_step_spec() and gym.action_spec() == pool.action_spec()
        first = pool.reset()
        assert first.observation.dtype == gym.observation_spec().dtype and first.step_type.tolist() == [0, 0]
    finally:
        gym.close()
        pool.close()


def test_dqn_trains_on_envpool(tmp_path):
    from agents.dqn import DQN
    from lab.workload.testing import make

    workload = make("dqn", {**DQN.test_params, "env_backend": "envpool"}, trial_dir=str(tmp_path))
    try:
        assert type(workload.train_env.pyenv._envs).__name__ == "EnvPoolVectorEnv"
        metrics = workload.step()
        assert metrics["charts/env_steps"] >= 200 and metrics["eval/average_return"] >= 8
    finally:
        workload.close()

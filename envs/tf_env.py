"""Gymnasium -> TF-Agents: build seeded (batched) TF environments from a Gymnasium id.

    from envs.tf_env import make_tf_env
    train_env = make_tf_env("CartPole-v1", num_envs=8, seed=0)   # TFPyEnvironment, batch_size 8

TensorFlow, TF-Agents and Gymnasium are imported inside the functions, so importing this module is
cheap. The batch is a `BatchedPyEnvironment` without threads: on 2 cores that was faster than
threads or `ParallelPyEnvironment` (shared/STACK.md). Member `i` is seeded with `seed + i`.
"""
from __future__ import annotations

from typing import Any

from lab.errors import SpecError


def check_env_id(env_id: str) -> None:
    """Raise SpecError, suggesting close names, when Gymnasium does not know `env_id` (or its suite is missing)."""
    import gymnasium

    from envs import gym_envs

    gym_envs.check_available(env_id)  # importing gym_envs registered the lab's ids (Atari's when asked for)
    if env_id not in gymnasium.registry:
        from lab.workload import suggest

        raise SpecError(f"unknown Gymnasium environment '{env_id}'{suggest(env_id, gymnasium.registry)}")


def check_spaces(env_id: str, agent: str, discrete_actions: bool | None, vector_observations: bool = True,
                 backend: str = "gymnasium") -> None:
    """SpecError, before anything runs, when the env's spaces do not suit the agent.

    Uses Gymnasium's spaces only (no TensorFlow), so specs are checked when they are loaded.
    `discrete_actions`: True (DQN, C51), False (SAC, TD3, DDPG) or None (either, e.g. PPO).
    `vector_observations`: True: flat vectors (MLP networks); False: images (height, width, channels; conv).
    `backend`: the env backend asked for (envs/backends.py): envpool must be installed and have the id.
    """
    from gymnasium import spaces

    from envs.gym_envs import make_gym_env

    from envs.backends import resolve_backend

    check_env_id(env_id)
    try:
        resolve_backend(env_id, backend)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    env = make_gym_env(env_id)  # with the lab's preprocessing (Atari: (84, 84, 4) uint8 frames)
    try:
        action_space, observation_space = env.action_space, env.observation_space
    finally:
        env.close()
    is_discrete = isinstance(action_space, spaces.Discrete)
    if discrete_actions is True and not is_discrete:
        raise SpecError(f"{agent} needs one discrete action, but '{env_id}' has {type(action_space).__name__} "
                        f"actions {getattr(action_space, 'shape', '')}; use an actor-critic agent (SAC, PPO)")
    if discrete_actions is False and not isinstance(action_space, spaces.Box):
        raise SpecError(f"{agent} needs continuous (Box) actions, but '{env_id}' has {action_space}")
    if vector_observations and not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1):
        raise SpecError(f"{agent}'s MLP networks need flat vector observations, but '{env_id}' observes "
                        f"{observation_space} (images need a conv network)")
    if not vector_observations and not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3):
        raise SpecError(f"{agent}'s conv layers need image observations (height, width, channels), but "
                        f"'{env_id}' observes {observation_space}")


def make_py_env(env_id: str, seed: int | None = None, training: bool = False, **load_kwargs: Any):
    """One TF-Agents PyEnvironment (auto-reset, Gymnasium's time limit), its RNG seeded with `seed`.

    Ids starting with `ALE/` get the standard Atari preprocessing (envs/gym_envs.py).
    """
    from tf_agents.environments import suite_gymnasium

    from envs import gym_envs

    check_env_id(env_id)
    if gym_envs.is_atari(env_id):
        load_kwargs.setdefault("gym_env_wrappers", gym_envs.atari_wrappers(training))
        load_kwargs["gym_kwargs"] = {**gym_envs.make_kwargs(env_id), **(load_kwargs.get("gym_kwargs") or {})}
    env = suite_gymnasium.load(env_id, **load_kwargs)
    if seed is not None:
        env.seed(seed)  # GymnasiumWrapper.seed: replaces the env's np_random, kept across resets
    return env


def make_tf_env(env_id: str, num_envs: int = 1, seed: int = 0, vector: bool = True, training: bool = False,
                backend: str = "gymnasium", **load_kwargs: Any):
    """A TFPyEnvironment over a BatchedPyEnvironment of `num_envs` copies, seeded seed, seed+1, ...

    `vector=True`: over one Gymnasium (or EnvPool, `backend`) vector env instead (envs/vector_env.py:
    the same time steps, ~1.9x faster collection, benchmarks/rl_collection.py); of `load_kwargs` only
    `max_episode_steps` applies there. `training`: the learner's envs (Atari: episodic life, clipped
    rewards; evaluation envs play the full game).
    """
    from tf_agents.environments import batched_py_environment, tf_py_environment

    if vector:
        from envs.vector_env import make_vector_py_env

        if set(load_kwargs) - {"max_episode_steps"}:
            raise TypeError(f"make_tf_env(vector=True) takes no {sorted(set(load_kwargs) - {'max_episode_steps'})}")
        return tf_py_environment.TFPyEnvironment(
            make_vector_py_env(env_id, num_envs, seed, training=training, backend=backend, **load_kwargs))
    envs = [make_py_env(env_id, seed + i, training, **load_kwargs) for i in range(num_envs)]
    batched = batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)
    return tf_py_environment.TFPyEnvironment(batched)

"""Gymnasium -> TF-Agents: build seeded, batched TF environments from a Gymnasium id (`envs/` has no TensorFlow).

    from agents.tf_env import make_tf_env
    train_env = make_tf_env("CartPole-v1", num_envs=8, seed=0)   # TFPyEnvironment, batch_size 8

TensorFlow, TF-Agents and Gymnasium are imported inside the functions, so importing this module is
cheap. The batch is one Gymnasium vector env (`agents/vector_env.py`); `vector=False` builds TF-Agents'
`BatchedPyEnvironment` without threads instead (on 2 cores faster than threads or
`ParallelPyEnvironment`). Member `i` is seeded with `seed + i`. `spec_checked` turns the EnvError of
`envs`' checks into the lab's SpecError; `check_agent_env` runs those an agent's config needs.
"""
from __future__ import annotations

from typing import Any

from agents.vector_env import make_vector_py_env
from lab.errors import SpecError


def spec_checked(check, *args, **kwargs) -> None:
    """Run an `envs.gym_envs` check (`check_env_id`, `check_spaces`) with its EnvError raised as the lab's
    SpecError: a one-line error and exit code 2 when a spec is loaded."""
    from envs.gym_envs import EnvError

    try:
        check(*args, **kwargs)
    except EnvError as exc:
        raise SpecError(str(exc)) from None


def check_agent_env(env_id: str, agent: str, backend: str = "gymnasium", **space_kwargs: Any) -> None:
    """SpecError, before any trial starts, unless Gymnasium knows `env_id`, the env `backend` can step it
    (envs.backends.resolve_backend) and its spaces suit `agent` (envs.gym_envs.check_spaces, `space_kwargs`)."""
    from envs.backends import resolve_backend
    from envs.gym_envs import check_env_id, check_spaces

    spec_checked(check_env_id, env_id)
    spec_checked(resolve_backend, env_id, backend)
    spec_checked(check_spaces, env_id, agent, **space_kwargs)


def make_py_env(env_id: str, seed: int | None = None, training: bool = False, **load_kwargs: Any):
    """One TF-Agents PyEnvironment (auto-reset, Gymnasium's time limit), its RNG seeded with `seed`.

    Ids starting with `ALE/` get the standard Atari preprocessing (envs/gym_envs.py).
    """
    from tf_agents.environments import suite_gymnasium

    from envs import gym_envs

    spec_checked(gym_envs.check_env_id, env_id)
    if gym_envs.is_atari(env_id):
        load_kwargs.setdefault("gym_env_wrappers", gym_envs.atari_wrappers(training))
        load_kwargs["gym_kwargs"] = {**gym_envs.make_kwargs(env_id), **(load_kwargs.get("gym_kwargs") or {})}
    env = suite_gymnasium.load(env_id, **load_kwargs)
    if seed is not None:
        env.seed(seed)  # GymnasiumWrapper.seed: replaces the env's np_random, kept across resets
    return env


def make_tf_env(env_id: str, num_envs: int = 1, seed: int = 0, vector: bool = True, training: bool = False,
                backend: str = "gymnasium", **load_kwargs: Any):
    """A TFPyEnvironment over `num_envs` copies, seeded seed, seed+1, ...

    `vector=True` (default): over one Gymnasium vector env (agents/vector_env.py); of `load_kwargs` only
    `max_episode_steps` applies there. `vector=False`: over a BatchedPyEnvironment (the same time steps,
    ~1.9x slower collection, benchmarks/rl_collection.py). `training`: the learner's envs (Atari: episodic
    life, clipped rewards; evaluation envs play the full game). `backend`: gymnasium | envpool | auto
    (envs/backends.py; the vector path only).
    """
    from tf_agents.environments import batched_py_environment, tf_py_environment

    from envs.gym_envs import check_env_id

    if vector:
        if set(load_kwargs) - {"max_episode_steps"}:
            raise TypeError(f"make_tf_env(vector=True) takes no {sorted(set(load_kwargs) - {'max_episode_steps'})}")
        spec_checked(check_env_id, env_id)
        return tf_py_environment.TFPyEnvironment(
            make_vector_py_env(env_id, num_envs, seed, training=training, backend=backend, **load_kwargs))
    envs = [make_py_env(env_id, seed + i, training, **load_kwargs) for i in range(num_envs)]
    batched = batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)
    return tf_py_environment.TFPyEnvironment(batched)

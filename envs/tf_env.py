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
    """Raise SpecError, suggesting close names, when Gymnasium does not know `env_id`."""
    import gymnasium

    if env_id not in gymnasium.registry:
        from lab.workload import suggest

        raise SpecError(f"unknown Gymnasium environment '{env_id}'{suggest(env_id, gymnasium.registry)}")


def make_py_env(env_id: str, seed: int | None = None, **load_kwargs: Any):
    """One TF-Agents PyEnvironment (auto-reset, Gymnasium's time limit), its RNG seeded with `seed`."""
    from tf_agents.environments import suite_gymnasium

    check_env_id(env_id)
    env = suite_gymnasium.load(env_id, **load_kwargs)
    if seed is not None:
        env.seed(seed)  # GymnasiumWrapper.seed: replaces the env's np_random, kept across resets
    return env


def make_tf_env(env_id: str, num_envs: int = 1, seed: int = 0, **load_kwargs: Any):
    """A TFPyEnvironment over a BatchedPyEnvironment of `num_envs` copies, seeded seed, seed+1, ..."""
    from tf_agents.environments import batched_py_environment, tf_py_environment

    envs = [make_py_env(env_id, seed + i, **load_kwargs) for i in range(num_envs)]
    batched = batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)
    return tf_py_environment.TFPyEnvironment(batched)

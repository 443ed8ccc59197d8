"""Which library steps a batch of envs: Gymnasium (`SyncVectorEnv`) or EnvPool (envs/envpool_env.py).

    envs = make_vector_env("ALE/Breakout-v5", num_envs=8, seed=0, training=True, backend="auto")

`backend`: `gymnasium` (the default of every agent), `envpool`, or `auto` (EnvPool when it is installed
and has the id, else Gymnasium). Both give the same observation layout and dtypes, rewards and
termination semantics (tests/agents/test_envpool.py); their random streams differ. No TensorFlow here.
"""
from __future__ import annotations

import functools

BACKENDS = ("auto", "gymnasium", "envpool")


def resolve_backend(env_id: str, backend: str) -> str:
    """`gymnasium` or `envpool` for `env_id`; EnvError (a ValueError, one line) when envpool is asked for and
    cannot serve it."""
    from envs import envpool_env
    from envs.gym_envs import EnvError

    if backend not in BACKENDS:
        raise EnvError(f"env_backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    if backend == "gymnasium":
        return backend
    if not envpool_env.installed():
        if backend == "envpool":
            raise EnvError("env_backend 'envpool' needs EnvPool: pip install agent-lab[envpool]")
        return "gymnasium"
    if envpool_env.envpool_id(env_id) is None:
        if backend == "envpool":
            raise EnvError(f"EnvPool has no environment '{env_id}' (env_backend: gymnasium or auto steps it with Gymnasium)")
        return "gymnasium"
    return "envpool"


def make_vector_env(env_id: str, num_envs: int, seed: int = 0, training: bool = False,
                    max_episode_steps: int | None = None, backend: str = "gymnasium"):
    """`num_envs` copies of `env_id` with the lab's preprocessing, as a Gymnasium-style vector env.

    Gymnasium: a SyncVectorEnv in NEXT_STEP auto-reset mode, member i seeded with seed + i at the
    first reset. `max_episode_steps`: a time limit other than the id's own, in agent steps.
    """
    if resolve_backend(env_id, backend) == "envpool":
        from envs.envpool_env import make_envpool_vector_env

        return make_envpool_vector_env(env_id, num_envs, seed, training, max_episode_steps)
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    from envs.gym_envs import make_gym_env

    make = functools.partial(_make_limited, make_gym_env, env_id, max_episode_steps, training)
    return SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.NEXT_STEP)


def _make_limited(make_gym_env, env_id: str, max_episode_steps: int | None, training: bool):
    """The env with `max_episode_steps` counted in agent steps: a TimeLimit outside the preprocessing, as
    suite_gymnasium.load does (inside, an Atari limit would count raw frames and reset no-ops)."""
    import gymnasium

    env = make_gym_env(env_id, training=training)
    return gymnasium.wrappers.TimeLimit(env, max_episode_steps) if max_episode_steps else env

"""EnvPool as a second env backend: its C++ batched envs behind the interface of a Gymnasium vector env.

    from envs.envpool_env import make_envpool_vector_env
    envs = make_envpool_vector_env("ALE/Breakout-v5", num_envs=8, seed=0, training=True)
    observations, _ = envs.reset()                       # (8, 84, 84, 4) uint8, as the Gymnasium path

Optional (`pip install agent-lab[envpool]`, envpool==1.2.5: the newest release with Python 3.11 wheels).
It has Atari, MuJoCo and classic-control ids; `envpool_id` maps a Gymnasium id to its own (None if it
lacks it). The env it makes has the Gymnasium path's semantics (envs/gym_envs.py, envs/atari.py):
- Atari: 30 no-op starts, 4-frame skip with max-pooling, 84x84 grey, 4 frames stacked, channels last,
  uint8; sticky actions (25%) as ALE v5; no FIRE on reset; episodic life and sign-clipped rewards for
  training envs only; 27,000 agent steps (108k frames) at most per episode;
- MuJoCo and classic control: the same spaces, rewards and time limits as Gymnasium's v5 / v1 ids;
- auto-reset as Gymnasium's NEXT_STEP mode: the step after an episode's last one resets that env
  (its action is ignored) and returns the first observation with reward 0.
Member i is seeded with `seed + i` when the pool is made (EnvPool seeds at construction, not at reset).
No TensorFlow and no lab imports here.
"""
from __future__ import annotations

import functools
import importlib.util

import numpy as np
from gymnasium import spaces

ATARI_PREFIX = "ALE/"
STICKY_ACTIONS = 0.25  # ALE v5's repeat_action_probability


def installed() -> bool:
    return importlib.util.find_spec("envpool") is not None


@functools.cache
def _all_ids() -> frozenset[str]:
    import envpool

    return frozenset(envpool.list_all_envs())


def envpool_id(env_id: str) -> str | None:
    """EnvPool's name for the Gymnasium id `env_id` (`ALE/Breakout-v5` -> `Breakout-v5`), None if it lacks it."""
    name = env_id[len(ATARI_PREFIX):] if env_id.startswith(ATARI_PREFIX) else env_id
    return name if name in _all_ids() else None


def make_kwargs(env_id: str, training: bool, max_episode_steps: int | None) -> dict:
    """`envpool.make` options that give the Gymnasium path's semantics (module docstring)."""
    kwargs: dict = {}
    if env_id.startswith(ATARI_PREFIX):
        kwargs.update(episodic_life=training, reward_clip=training, use_fire_reset=False,
                      repeat_action_probability=STICKY_ACTIONS, noop_max=30, frame_skip=4, stack_num=4,
                      img_height=84, img_width=84, gray_scale=True)
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps
    return kwargs


class EnvPoolVectorEnv:
    """`num_envs` EnvPool envs with the methods the lab's vector adapter uses from a Gymnasium vector env."""

    def __init__(self, env_id: str, num_envs: int, seed: int = 0, training: bool = False,
                 max_episode_steps: int | None = None):
        import envpool

        name = envpool_id(env_id)
        if name is None:
            raise ValueError(f"EnvPool {envpool.__version__} has no environment '{env_id}'")
        self.num_envs = num_envs
        self._pool = envpool.make_gymnasium(name, num_envs=num_envs, seed=seed,
                                            **make_kwargs(env_id, training, max_episode_steps))
        self._channels_last = env_id.startswith(ATARI_PREFIX)
        space = self._pool.observation_space
        if self._channels_last:  # EnvPool stacks frames first: (4, 84, 84) -> (84, 84, 4)
            stack, height, width = space.shape
            space = spaces.Box(0, 255, (height, width, stack), np.uint8)
        self.single_observation_space = space
        self.single_action_space = self._pool.action_space

    def _observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, 1, -1)) if self._channels_last else observation

    def reset(self, seed=None):
        """All envs reset (`seed` is ignored: the pool was seeded when made)."""
        observation, info = self._pool.reset()
        return self._observation(observation), info

    def step(self, actions):
        observation, reward, terminated, truncated, info = self._pool.step(np.asarray(actions))
        return (self._observation(observation), np.asarray(reward, np.float32), np.asarray(terminated, bool),
                np.asarray(truncated, bool), info)

    def close(self) -> None:
        self._pool.close()


def make_envpool_vector_env(env_id: str, num_envs: int, seed: int = 0, training: bool = False,
                            max_episode_steps: int | None = None) -> EnvPoolVectorEnv:
    return EnvPoolVectorEnv(env_id, num_envs, seed, training, max_episode_steps)

"""A Gymnasium (or EnvPool) vector env as ONE batched TF-Agents PyEnvironment (the fast collection path).

    from agents.vector_env import make_vector_py_env
    py_env = make_vector_py_env("CartPole-v1", num_envs=8, seed=0)     # batched, batch_size 8

`BatchedPyEnvironment` steps a list of `GymnasiumWrapper`s, each converting its own time step through
TF-Agents' nest and spec machinery: 712 CPU us per batched step of 8 CartPoles, whose own physics take
85 us. Here Gymnasium's `SyncVectorEnv` steps the copies and returns stacked arrays, turned into one
batched TimeStep with a few NumPy operations: 117 us; under a tf.function'd driver with DQN's
epsilon-greedy policy and a replay buffer, 502 us instead of 946 (benchmarks/rl_collection.py). Auto-reset is Gymnasium's NEXT_STEP
mode, which is TF-Agents' convention: the step after a LAST one resets that env (its action is
ignored) and returns FIRST with reward 0. A truncated episode (time limit) ends LAST with discount 1,
a terminated one with discount 0. Member i is seeded with seed + i at the first reset. The vector env comes from envs/backends.py
(Gymnasium's SyncVectorEnv or EnvPool); image observations keep their uint8 frames (agents/pixels.py).

TF-Agents is imported when the first env is made (the class is built then), so importing this module
stays light.
"""
from __future__ import annotations

import functools

import numpy as np


def make_vector_py_env(env_id: str, num_envs: int, seed: int = 0, max_episode_steps: int | None = None,
                       training: bool = False, backend: str = "gymnasium"):
    """`num_envs` copies of `env_id` (with the lab's preprocessing) in one batched PyEnvironment.

    `max_episode_steps`: a time limit other than the id's own. `training`: the learner's envs (Atari:
    episodic life, clipped rewards). `backend`: gymnasium | envpool | auto (envs/backends.py). An unknown
    id is envs' EnvError (agents/tf_env.make_tf_env raises it as the lab's SpecError).
    """
    from envs.backends import make_vector_env
    from envs.gym_envs import check_env_id

    check_env_id(env_id)
    return _vector_env_class()(make_vector_env(env_id, num_envs, seed, training, max_episode_steps, backend),
                               num_envs, seed)


@functools.cache
def _vector_env_class():
    from tf_agents.environments import gymnasium_wrapper, py_environment
    from tf_agents.trajectories import time_step as ts

    from agents.pixels import observation_spec

    class GymnasiumVectorPyEnvironment(py_environment.PyEnvironment):
        def __init__(self, vector_env, num_envs: int, seed: int):
            super().__init__(handle_auto_reset=False)  # the vector env resets (NEXT_STEP), TF-Agents must not
            self._envs = vector_env
            self._num_envs, self._seed = num_envs, seed
            self._observation_spec = observation_spec(self._envs.single_observation_space)
            self._action_spec = gymnasium_wrapper.spec_from_gym_space(self._envs.single_action_space, name="action")
            self._ended = np.zeros(num_envs, bool)  # envs whose last step ended an episode: they reset next

        @property
        def batched(self) -> bool:
            return True

        @property
        def batch_size(self) -> int:
            return self._num_envs

        def observation_spec(self):
            return self._observation_spec

        def action_spec(self):
            return self._action_spec

        def _observation(self, observation):
            return np.asarray(observation, self._observation_spec.dtype)

        def _reset(self):
            seeds = None if self._seed is None else [self._seed + i for i in range(self._num_envs)]
            observation, _ = self._envs.reset(seed=seeds)
            self._seed = None  # later resets continue the seeded RNGs
            self._ended[:] = False
            n = self._num_envs
            return ts.TimeStep(np.full(n, ts.StepType.FIRST, np.int32), np.zeros(n, np.float32),
                               np.ones(n, np.float32), self._observation(observation))

        def _step(self, action):
            observation, reward, terminated, truncated, _ = self._envs.step(np.asarray(action))
            step_type = np.where(self._ended, ts.StepType.FIRST,
                                 np.where(terminated | truncated, ts.StepType.LAST, ts.StepType.MID))
            self._ended = terminated | truncated
            return ts.TimeStep(step_type.astype(np.int32), np.asarray(reward, np.float32),
                               np.where(terminated, 0.0, 1.0).astype(np.float32), self._observation(observation))

        def render(self, mode: str = "rgb_array"):
            raise NotImplementedError("render one env with envs.gym_envs.make_gym_env(id, render_mode=...)")

        def close(self) -> None:
            self._envs.close()

    return GymnasiumVectorPyEnvironment

"""The standard Atari preprocessing (Mnih et al. 2015; Machado et al. 2018), Gymnasium only.

    env = gymnasium.make("ALE/Breakout-v5", frameskip=1)
    for wrapper in atari_wrappers(training=True):
        env = wrapper(env)                          # (84, 84, 4) uint8, channels last

Both kinds of env: up to 30 no-op actions after a reset, 4-frame skip with max-pooling over the last
two frames, 84x84 greyscale, the last 4 frames stacked, channels last (Keras' Conv2D layout). Frames
stay uint8 (0..255): the agent's network scales them inside its graph, so a replay buffer stores one
byte per pixel (28 KB per observation; DQN's keeps its newest frame only, 7 KB: agents/frame_replay.py).
Training envs only (`training=True`): a lost life ends the episode for the learner (the game itself
goes on, no reset) and rewards are clipped to their sign. Evaluation envs play the full game, rewards
unclipped: the score a paper reports.
"""
from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

FRAME_STACK = 4
SCREEN_SIZE = 84
NOOP_MAX = 30
FRAME_SKIP = 4


class EpisodicLife(gymnasium.Wrapper):
    """A lost life is a terminal step for the learner; the next reset goes on with the same game
    (one no-op step) unless the game is over. Training only."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self._lives, self._game_over = 0, True

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return observation, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self._game_over:
            observation, info = self.env.reset(**kwargs)
        else:  # a life was lost: continue the game from where it is
            observation, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                observation, info = self.env.reset(**kwargs)
        self._lives, self._game_over = self.env.unwrapped.ale.lives(), False
        return observation, info


class ClipReward(gymnasium.RewardWrapper):
    """Rewards clipped to their sign (-1, 0, 1). Training only."""

    def reward(self, reward):
        return float(np.sign(reward))


class ChannelsLast(gymnasium.ObservationWrapper):
    """(stack, height, width) uint8 frames -> (height, width, stack) uint8."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        stack, height, width = env.observation_space.shape
        self.observation_space = spaces.Box(0, 255, (height, width, stack), np.uint8)

    def observation(self, observation):
        return np.ascontiguousarray(np.moveaxis(np.asarray(observation, np.uint8), 0, -1))


def atari_wrappers(training: bool = False, frame_stack: int = FRAME_STACK) -> list:
    """The wrappers (callables env -> env) of the standard preprocessing, in order (module docstring).

    The env must be made with `frameskip=1` (AtariPreprocessing skips frames itself).
    """
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    preprocessing = [lambda env: AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP,
                                                    screen_size=SCREEN_SIZE, grayscale_obs=True)]
    training_only = [EpisodicLife, ClipReward] if training else []
    return preprocessing + training_only + [lambda env: FrameStackObservation(env, frame_stack), ChannelsLast]

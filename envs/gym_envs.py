"""The lab's Gymnasium side: its own ids, Atari preprocessing, optional suites. No TensorFlow.

Importing this module registers the lab's environments with Gymnasium (`lab/GridMaze-v0`); the Atari
ids (`ALE/Breakout-v5`, ...) are registered when one is first checked (ale-py costs ~0.1 s to import).
`check_env_id` runs before any env is built (the agents' `agents.tf_env` calls it), so the ids exist in
every process that builds one, Ray workers included. Problems are `EnvError`s (a ValueError), one line each.

    from envs.gym_envs import make_gym_env
    env = make_gym_env("ALE/Breakout-v5", render_mode="rgb_array")   # preprocessed: (84, 84, 4) uint8

Ids starting with `ALE/` get the standard DQN preprocessing (Mnih et al. 2015, as in the Hands-On ML
book; envs/atari.py): `frameskip=1` in `make`, then AtariPreprocessing (30 no-op starts, 4-frame skip
with max-pooling, 84x84 grayscale), FrameStackObservation of 4, channels last, uint8 frames; training
envs also end an episode at a lost life and clip rewards to their sign.
"""
from __future__ import annotations

import difflib
import importlib.util
from typing import Any

import gymnasium
from gymnasium import spaces


class EnvError(ValueError):
    """An id Gymnasium does not know, a missing optional suite, or spaces that do not suit an agent."""

LAB_ENVS = {  # id -> (entry point, max_episode_steps)
    "lab/GridMaze-v0": ("envs.grid_maze:GridMaze", 100),
}
ATARI_PREFIX = "ALE/"
OPTIONAL_SUITES = {  # entry-point prefix -> (module it needs, pip extra)
    "gymnasium.envs.mujoco": ("mujoco", "mujoco"),
    "gymnasium.envs.box2d": ("Box2D", "box2d"),
    "ale_py": ("ale_py", "atari"),
}


def register(atari: bool = False) -> None:
    """Register the lab's ids (and Atari's with `atari`, when ale-py is there) with Gymnasium; idempotent."""
    for env_id, (entry_point, max_steps) in LAB_ENVS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=entry_point, max_episode_steps=max_steps)
    if atari and importlib.util.find_spec("ale_py") is not None and "ALE/Pong-v5" not in gymnasium.registry:
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr per env made
        gymnasium.register_envs(ale_py)


register()


def check_available(env_id: str) -> None:
    """EnvError naming the pip extra when `env_id` belongs to an optional suite that is not installed."""
    if is_atari(env_id):
        if importlib.util.find_spec("ale_py") is None:
            raise EnvError(f"'{env_id}' needs the Atari emulator: pip install agent-lab[atari]")
        register(atari=True)
    spec = gymnasium.registry.get(env_id)
    entry_point = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    for prefix, (module, extra) in OPTIONAL_SUITES.items():
        if entry_point.startswith(prefix) and importlib.util.find_spec(module) is None:
            raise EnvError(f"'{env_id}' needs {module}, which is not installed: pip install agent-lab[{extra}]")


def check_env_id(env_id: str) -> None:
    """EnvError, suggesting close names, when Gymnasium does not know `env_id` (or its suite is missing)."""
    check_available(env_id)  # importing this module registered the lab's ids (Atari's when asked for)
    if env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, sorted(gymnasium.registry), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise EnvError(f"unknown Gymnasium environment '{env_id}'{hint}")


def check_spaces(env_id: str, agent: str, discrete_actions: bool | None, vector_observations: bool = True,
                 frame_stack: int = 0) -> None:
    """EnvError, before anything runs, when the env's spaces do not suit the agent (whether the env backend
    asked for can step it is `envs.backends.resolve_backend`'s check).

    `discrete_actions`: True (DQN, C51), False (SAC, TD3, DDPG) or None (either, e.g. PPO).
    `vector_observations`: True: flat vectors (MLP networks); False: images (height, width, channels; conv).
    `frame_stack`: when positive, the observations must be that many stacked frames (height, width, frame_stack).
    """
    check_env_id(env_id)
    env = make_gym_env(env_id)  # with the lab's preprocessing (Atari: (84, 84, 4) uint8 frames)
    try:
        action_space, observation_space = env.action_space, env.observation_space
    finally:
        env.close()
    is_discrete = isinstance(action_space, spaces.Discrete)
    if discrete_actions is True and not is_discrete:
        raise EnvError(f"{agent} needs one discrete action, but '{env_id}' has {type(action_space).__name__} "
                       f"actions {getattr(action_space, 'shape', '')}; use an actor-critic agent (SAC, PPO)")
    if discrete_actions is False and not isinstance(action_space, spaces.Box):
        raise EnvError(f"{agent} needs continuous (Box) actions, but '{env_id}' has {action_space}")
    if vector_observations and not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1):
        raise EnvError(f"{agent}'s MLP networks need flat vector observations, but '{env_id}' observes "
                       f"{observation_space} (images need a conv network)")
    if not vector_observations and not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3):
        raise EnvError(f"{agent}'s conv layers need image observations (height, width, channels), but "
                       f"'{env_id}' observes {observation_space}")
    shape = getattr(observation_space, "shape", None) or ()
    if frame_stack and (len(shape) != 3 or shape[-1] != frame_stack):
        raise EnvError(f"frame_stack {frame_stack} needs observations of {frame_stack} stacked frames (height, "
                       f"width, {frame_stack}), but '{env_id}' observes shape {tuple(shape)}")


def is_atari(env_id: str) -> bool:
    return env_id.startswith(ATARI_PREFIX)


def atari_wrappers(training: bool = False) -> list:
    """The wrappers of the standard Atari preprocessing, in order (envs/atari.py)."""
    from envs.atari import atari_wrappers as wrappers

    return wrappers(training)


def make_kwargs(env_id: str) -> dict[str, Any]:
    """Extra `gymnasium.make` arguments an id needs (Atari: frameskip=1, AtariPreprocessing skips)."""
    return {"frameskip": 1} if is_atari(env_id) else {}


def make_gym_env(env_id: str, render_mode: str | None = None, training: bool = False, **kwargs: Any) -> gymnasium.Env:
    """A Gymnasium env with the lab's preprocessing for its id (Atari), e.g. for `lab eval --video`.

    `training`: the learner's env (Atari: episodic life and clipped rewards); else the full game.
    """
    check_available(env_id)
    if render_mode is not None:  # only when asked: an env class need not take the argument
        kwargs["render_mode"] = render_mode
    env = gymnasium.make(env_id, **{**make_kwargs(env_id), **kwargs})
    for wrapper in atari_wrappers(training) if is_atari(env_id) else []:
        env = wrapper(env)
    return env

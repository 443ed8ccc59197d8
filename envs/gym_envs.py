"""The lab's Gymnasium side: its own ids, Atari preprocessing, optional suites. No TensorFlow.

Importing this module registers the lab's environments with Gymnasium (`lab/GridMaze-v0`); the Atari
ids (`ALE/Breakout-v5`, ...) are registered when one is first checked (ale-py costs ~0.1 s to import).
`envs.tf_env` checks every id before it builds an env, so the ids exist in every process that builds
one, Ray workers included.

    from envs.gym_envs import make_gym_env
    env = make_gym_env("ALE/Breakout-v5", render_mode="rgb_array")   # preprocessed: (84, 84, 4) uint8

Ids starting with `ALE/` get the standard DQN preprocessing (Mnih et al. 2015, as in the Hands-On ML
book; envs/atari.py): `frameskip=1` in `make`, then AtariPreprocessing (30 no-op starts, 4-frame skip
with max-pooling, 84x84 grayscale), FrameStackObservation of 4, channels last, uint8 frames; training
envs also end an episode at a lost life and clip rewards to their sign.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium

from lab.errors import SpecError

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
    """SpecError naming the pip extra when `env_id` belongs to an optional suite that is not installed."""
    if is_atari(env_id):
        if importlib.util.find_spec("ale_py") is None:
            raise SpecError(f"'{env_id}' needs the Atari emulator: pip install agent-lab[atari]")
        register(atari=True)
    spec = gymnasium.registry.get(env_id)
    entry_point = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    for prefix, (module, extra) in OPTIONAL_SUITES.items():
        if entry_point.startswith(prefix) and importlib.util.find_spec(module) is None:
            raise SpecError(f"'{env_id}' needs {module}, which is not installed: pip install agent-lab[{extra}]")


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

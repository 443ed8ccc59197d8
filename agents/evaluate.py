"""`lab eval`: play a trained policy for N episodes, report its return, optionally record a video.

    lab eval 3 --episodes 10                  # experiment 3's best trial (restored, then exported)
    lab eval out/policy --video run.gif       # a PolicySaver folder written by `lab export`

A policy is a TF-Agents PolicySaver SavedModel with a `lab_policy.json` beside it naming the env id
and agent (agents/saved_policy.py, which writes and reads it). An experiment id is turned into one: its
trial's workload is rebuilt and restored (lab/results/artifacts.py), then exported into a temporary folder,
so both ways evaluate exactly what `lab export` ships. Episodes run in one Gymnasium env with the lab's preprocessing
(envs/gym_envs.py), episode i reset with seed `seed + i`; the first one is rendered when a video is
asked for (GIF with imageio, MP4 with imageio-ffmpeg).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

# load_policy: named here by the `agent_lab.loaders` entry point of installs made before it moved
from agents.saved_policy import POLICY_META, load_policy, policy_folder  # noqa: F401
from lab.errors import LabError
from lab.results.provenance import private_copy

MAX_VIDEO_FRAMES = 2_000  # a longer first episode is cut in the video (not in the returns)
VIDEO_SUFFIXES = (".gif", ".mp4")


@dataclass
class Evaluation:
    env_id: str
    agent: str
    train_step: int
    returns: list[float]
    lengths: list[int]
    policy_path: str
    video: str | None = None
    video_frames: int = 0  # frames the written file holds
    video_rendered: int = 0  # frames rendered (a GIF merges repeated ones)
    trial_id: str | None = field(default=None)

    def summary(self) -> dict[str, float]:
        return {"eval/average_return": float(np.mean(self.returns)), "eval/return_std": float(np.std(self.returns)),
                "eval/episode_length": float(np.mean(self.lengths)), "eval/length_std": float(np.std(self.lengths))}


def evaluate(source: str, episodes: int = 10, video: str | None = None, trial_id: str | None = None,
             seed: int = 0, trust: bool = False) -> Evaluation:
    """Evaluate `source` (an experiment id or a PolicySaver folder) over `episodes` greedy episodes.

    A folder this lab did not export is refused unless `trust`: a SavedModel's graph is code."""
    if episodes <= 0:
        raise LabError(f"--episodes must be positive, got {episodes}")
    if video is not None and not video.lower().endswith(VIDEO_SUFFIXES):
        raise LabError(f"--video must name a .gif or .mp4 file, got '{video}'")
    if source.isdigit():
        with tempfile.TemporaryDirectory(prefix="lab-eval-") as tmp:
            path, trial = export_experiment(int(source), tmp, trial_id)
            result = evaluate_policy(path, episodes, video, seed)
        result.trial_id, result.policy_path = trial, f"experiment {source}, trial {trial}"
        return result
    if trial_id is not None:
        raise LabError("--trial only applies to an experiment id, not to a policy folder")
    folder = policy_folder(source)
    with private_copy(folder, "policy", trust) as copy:  # what was checked is what is loaded
        result = evaluate_policy(copy, episodes, video, seed)
    result.policy_path = folder
    return result


def export_experiment(experiment_id: int, out: str, trial_id: str | None = None) -> tuple[str, str]:
    """Restore the experiment's (best or named) trial and export its policy under `out`; (path, trial id)."""
    from lab import settings
    from lab import workload as workloads
    from lab.results.artifacts import load_trial_workload, trial_record

    experiment, trial = trial_record(experiment_id, trial_id)
    cls = workloads.get(experiment["workload"])
    if not hasattr(cls.make_config(trial["config"]), "env_id"):
        raise LabError(f"experiment {experiment_id} ran '{experiment['workload']}', which has no policy to evaluate "
                       "(lab eval plays RL agents)")
    settings.apply_worker_env()
    import tensorflow as tf

    try:
        workload = load_trial_workload(experiment_id, trial["trial_id"], policy_only=True)  # no replay buffer
    except (FileNotFoundError, AssertionError, ValueError, tf.errors.OpError) as exc:
        raise LabError(f"cannot restore trial {trial['trial_id']} of experiment {experiment_id}: "
                       f"{str(exc).splitlines()[0]}") from None
    try:
        return workload.export(out), trial["trial_id"]
    finally:
        workload.close()


def evaluate_policy(path: str, episodes: int, video: str | None, seed: int) -> Evaluation:
    """Play the saved policy at `path` in its env (named by lab_policy.json)."""
    from lab import settings

    with open(os.path.join(path, POLICY_META)) as handle:
        meta = json.load(handle)
    if "env_id" not in meta:
        raise LabError(f"{os.path.join(path, POLICY_META)} names no env_id")
    from envs.gym_envs import EnvError, check_env_id, make_gym_env

    env_id = meta["env_id"]
    try:
        check_env_id(env_id)
    except EnvError as exc:
        raise LabError(str(exc)) from None
    settings.apply_worker_env()
    import tensorflow as tf
    import tensorflow_probability  # noqa: F401  (registers the TFP specs the saved policy refers to; docs/stack.md)
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import time_step as ts

    try:
        policy = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as exc:
        raise LabError(f"cannot load the policy in '{path}': {str(exc).splitlines()[0]}") from None
    specs = tensor_spec.from_pbtxt_file(os.path.join(path, "policy_specs.pbtxt"))["collect_data_spec"]
    observation_spec = specs.observation
    env = make_gym_env(env_id, render_mode="rgb_array" if video else None)
    if meta.get("max_episode_steps"):  # the time limit the agent was trained and evaluated with
        import gymnasium

        env = gymnasium.wrappers.TimeLimit(env, int(meta["max_episode_steps"]))
    try:
        check_fits(env, observation_spec, specs.action, env_id, meta.get("agent", "?"))
        returns, lengths, frames = [], [], []
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            state = policy.get_initial_state(batch_size=1)
            step_type, reward, total, length, done = ts.StepType.FIRST, 0.0, 0.0, 0, False
            record = video is not None and episode == 0
            while not done:
                if record and len(frames) < MAX_VIDEO_FRAMES:
                    frames.append(env.render())
                time_step = ts.TimeStep(
                    step_type=tf.constant([step_type], tf.int32), reward=tf.constant([reward], tf.float32),
                    discount=tf.constant([1.0], tf.float32),
                    observation=tf.constant(np.asarray(observation)[None], observation_spec.dtype),
                )
                action_step = policy.action(time_step, state)
                state = action_step.state
                action = action_step.action.numpy()[0]
                observation, reward, terminated, truncated, _ = env.step(action)
                total, length, step_type = total + float(reward), length + 1, ts.StepType.MID
                done = terminated or truncated
            if record and len(frames) < MAX_VIDEO_FRAMES:
                frames.append(env.render())
            returns.append(total)
            lengths.append(length)
    finally:
        env.close()
    result = Evaluation(env_id, meta.get("agent", "?"), int(meta.get("train_step", -1)), returns, lengths, path)
    if video:
        written = write_video(video, frames, env.metadata.get("render_fps") or 30)
        result.video, result.video_frames, result.video_rendered = video, written, len(frames)
    return result


def check_fits(env, observation_spec, action_spec, env_id: str, agent: str) -> None:
    """LabError when the policy was trained on other observations or actions than `env_id` has."""
    from gymnasium import spaces

    shape = tuple(observation_spec.shape.as_list())
    if env.observation_space.shape != shape:
        raise LabError(f"the {agent} policy observes {list(shape)}, but '{env_id}' gives "
                       f"{list(env.observation_space.shape)}: it was trained on another environment")
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        fits = action_spec.dtype.is_integer and int(action_spec.maximum) - int(action_spec.minimum) + 1 == space.n
    else:
        fits = action_spec.dtype.is_floating and tuple(action_spec.shape.as_list()) == space.shape
    if not fits:
        raise LabError(f"the {agent} policy's actions ({action_spec.dtype.name} {action_spec.shape.as_list()}) do not "
                       f"fit '{env_id}' ({space}): it was trained on another environment")


def write_video(path: str, frames: list, fps: float) -> int:
    """GIF (imageio's pillow writer) or MP4 (imageio-ffmpeg); a LabError naming the package when missing.

    Returns the frames the file holds, read back: the GIF encoder merges repeated frames into one longer one.
    """
    if not frames or frames[0] is None:
        raise LabError("the environment rendered no frames (no rgb_array render mode?)")
    import imageio.v2 as imageio

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if path.lower().endswith(".gif"):
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)  # duration: ms per frame
        from PIL import Image

        with Image.open(path) as gif:
            return int(getattr(gif, "n_frames", 1))
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise LabError("MP4 needs imageio-ffmpeg: pip install agent-lab[video] (or write a .gif)") from None
    imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    with imageio.get_reader(path) as reader:
        return int(reader.count_frames())


def format_result(result: Evaluation) -> str:
    summary = result.summary()
    lines = [f"{result.agent} on {result.env_id} (train step {result.train_step}), {result.policy_path}:",
             (f"  return  {summary['eval/average_return']:.4g} +- {summary['eval/return_std']:.4g} "
              f"over {len(result.returns)} episodes (min {min(result.returns):.4g}, max {max(result.returns):.4g})"),
             f"  length  {summary['eval/episode_length']:.4g} +- {summary['eval/length_std']:.4g} steps"]
    if result.video:
        merged = result.video_rendered - result.video_frames
        note = f"; {merged} repeated frames of {result.video_rendered} merged into longer ones" if merged > 0 else ""
        lines.append(f"  video   {result.video} ({result.video_frames} frames of the first episode{note})")
    return "\n".join(lines)

"""Pieces every TF-Agents workload shares: batched greedy evaluation, greedy actions, checkpoints, env closing.

TensorFlow and TF-Agents are imported inside the functions (see lab/workload.py).
"""
from __future__ import annotations

import os

import numpy as np

EVAL_MAX_STEPS = 100_000  # safety cap on one evaluation, for environments without a time limit


def make_greedy_evaluation(policy, eval_env, episodes: int):
    """A tf.function playing one greedy episode in each of the `episodes` batched eval envs, all at once.

    Returns (returns, lengths) of those first episodes. Built with autograph=False (explicit while_loop):
    AutoGraph-converting TF-Agents' Python code is what makes tracing slow.
    """
    import tensorflow as tf

    @tf.function(autograph=False)
    def evaluate():
        def env_step(time_step, returns, lengths, running):
            time_step = eval_env.step(policy.action(time_step).action)
            returns += tf.where(running, time_step.reward, 0.0)
            lengths += tf.cast(running, tf.int64)
            return time_step, returns, lengths, tf.logical_and(running, ~time_step.is_last())

        n = episodes
        start = (eval_env.reset(), tf.zeros([n]), tf.zeros([n], tf.int64), tf.ones([n], tf.bool))
        _, returns, lengths, _ = tf.while_loop(
            lambda *loop_vars: tf.reduce_any(loop_vars[-1]), env_step, start, maximum_iterations=EVAL_MAX_STEPS
        )
        return returns, lengths

    return evaluate


def episode_observers(num_envs: int, env_steps):
    """Observers for a collect driver: (count_env_steps, track_returns, running_returns, finished_returns).

    `count_env_steps` adds the env steps taken to `env_steps` (LAST -> FIRST boundary transitions are
    resets, not steps); `track_returns` sums the returns of training episodes as they end (at their
    LAST -> FIRST boundary) into `finished_returns` = [sum, count], kept until the caller resets it.
    """
    import tensorflow as tf

    running_returns = tf.Variable(tf.zeros([num_envs]), trainable=False)  # episodes under way
    finished_returns = tf.Variable(tf.zeros([2]), trainable=False)  # sum, count since the last step()

    def count_env_steps(traj):
        env_steps.assign_add(tf.reduce_sum(tf.cast(~traj.is_boundary(), tf.int64)))

    def track_returns(traj):
        returns = tf.where(traj.is_first(), 0.0, running_returns) + traj.reward
        ended = tf.cast(traj.is_last(), tf.float32)
        finished_returns.assign_add(tf.stack([tf.reduce_sum(returns * ended), tf.reduce_sum(ended)]))
        running_returns.assign(returns)

    return count_env_steps, track_returns, running_returns, finished_returns


def round_metrics(workload, steps: int, start_steps: int, train_seconds: float) -> dict:
    """What every agent reports after its training rounds: a greedy evaluation, counters, speed, and the
    mean return of the training episodes that ended (its `finished_returns`, then reset for the next step).

    `workload` has `_evaluate`, `finished_returns`, `train_step` and `config.max_env_steps`.
    """
    import time

    returns_sum, episodes = workload.finished_returns.numpy()
    workload.finished_returns.assign([0.0, 0.0])
    started = time.perf_counter()
    returns, lengths = workload._evaluate()
    metrics = {
        "eval/average_return": float(np.mean(returns)),
        "eval/episode_length": float(np.mean(lengths)),
        "train/gradient_steps": int(workload.train_step.numpy()),
        "charts/env_steps": steps,
        "charts/sps": (steps - start_steps) / max(train_seconds, 1e-9),  # training only, eval apart
        "charts/eval_seconds": time.perf_counter() - started,
        "done": steps >= workload.config.max_env_steps,
    }
    if episodes:  # returns of the exploring (collect) policy, episodes ended during this step
        metrics["train/episode_return"] = float(returns_sum / episodes)
    return metrics


def greedy_actions(policy, network, observations: np.ndarray) -> np.ndarray:
    """The greedy policy's actions for a batch of observations (tests, demos)."""
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    observations = tf.convert_to_tensor(observations, dtype=network.input_tensor_spec.dtype)
    return policy.action(ts.restart(observations, batch_size=len(observations))).action.numpy()


def write_checkpoint(checkpoint, checkpoint_dir: str, name: str) -> None:
    checkpoint.write(os.path.join(checkpoint_dir, name))


def read_checkpoint(checkpoint, checkpoint_dir: str, name: str, agent: str) -> None:
    """Restore `checkpoint` from `<dir>/<name>`; a one-line FileNotFoundError when it is not there."""
    path = os.path.join(checkpoint_dir, name)
    if not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"no {agent} checkpoint in {checkpoint_dir} (expected {name}.index)")
    checkpoint.read(path).assert_existing_objects_matched()


POLICY_META = "lab_policy.json"  # written beside a PolicySaver export: which env and agent it belongs to


def export_policy(policy, out_dir: str, train_step, env_id: str, agent: str, max_episode_steps: int = 0) -> str:
    """Save the greedy `policy` with TF-Agents' PolicySaver into `<out_dir>/policy`; return that folder.

    A `lab_policy.json` beside the SavedModel names the env id and agent, so `lab eval PATH` can rebuild
    the environment (and `max_episode_steps`, the time limit the agent was trained and evaluated with,
    0: the env's own). Loading in a fresh process needs `import tensorflow_probability` first (STACK.md).
    """
    import json

    from tf_agents.policies import policy_saver

    path = os.path.join(out_dir, "policy")
    policy_saver.PolicySaver(policy, train_step=train_step).save(path)
    with open(os.path.join(path, POLICY_META), "w") as handle:
        json.dump({"env_id": env_id, "agent": agent, "train_step": int(train_step.numpy()),
                   "max_episode_steps": int(max_episode_steps)}, handle)
    return path


def close_envs(*envs) -> None:
    for env in envs:
        if env is not None:
            env.close()

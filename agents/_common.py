"""Pieces every TF-Agents workload shares: `AgentWorkload` (greedy actions, checkpoints, export, closing),
batched greedy evaluation, the training-episode observers and the metrics of a step.

TensorFlow and TF-Agents are imported inside the functions (see lab/workload/base.py).
"""
from __future__ import annotations

import os

import numpy as np

from lab.workload import Workload

EVAL_SEED_OFFSET = 10_000  # evaluation env i is seeded with seed + EVAL_SEED_OFFSET + i (apart from training)
EVAL_MAX_STEPS = 100_000  # safety cap on one evaluation, for environments without a time limit


def make_greedy_evaluation(policy, eval_env, episodes: int):
    """A tf.function playing one greedy episode in each of the `episodes` batched eval envs, all at once, for
    at most `max_steps` env steps (an int32 scalar: a warm-up runs the same graph for one step).

    Returns (returns, lengths) of those first episodes. Built with autograph=False (explicit while_loop):
    AutoGraph-converting TF-Agents' Python code is what makes tracing slow.
    """
    import tensorflow as tf

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int32)])
    def evaluate(max_steps):
        def env_step(time_step, returns, lengths, running):
            time_step = eval_env.step(policy.action(time_step).action)
            returns += tf.where(running, time_step.reward, 0.0)
            lengths += tf.cast(running, tf.int64)
            return time_step, returns, lengths, tf.logical_and(running, ~time_step.is_last())

        n = episodes
        start = (eval_env.reset(), tf.zeros([n]), tf.zeros([n], tf.int64), tf.ones([n], tf.bool))
        _, returns, lengths, _ = tf.while_loop(
            lambda *loop_vars: tf.reduce_any(loop_vars[-1]), env_step, start, maximum_iterations=max_steps
        )
        return returns, lengths

    return evaluate


def traced_evaluation(evaluate):
    """`evaluate` traced now, as a call whose step cap is optional: `_evaluate()` plays whole episodes (up to
    EVAL_MAX_STEPS), `_evaluate(1)` runs the same graph for one step."""
    import tensorflow as tf

    concrete = evaluate.get_concrete_function()
    return lambda max_steps=EVAL_MAX_STEPS: concrete(tf.constant(max_steps, tf.int32))


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


ROUND_METRICS = frozenset({  # the keys of round_metrics (train/episode_return once a training episode ended)
    "eval/average_return", "eval/episode_length", "train/gradient_steps", "charts/env_steps", "charts/sps",
    "charts/eval_seconds", "done", "train/episode_return",
})


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


def write_checkpoint(checkpoint, checkpoint_dir: str, name: str) -> None:
    checkpoint.write(os.path.join(checkpoint_dir, name))


def read_checkpoint(checkpoint, checkpoint_dir: str, name: str, agent: str) -> None:
    """Restore `checkpoint` from `<dir>/<name>`; a one-line FileNotFoundError when it is not there."""
    path = os.path.join(checkpoint_dir, name)
    if not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"no {agent} checkpoint in {checkpoint_dir} (expected {name}.index)")
    status = checkpoint.read(path)
    status.assert_existing_objects_matched()
    status.expect_partial()  # a policy-only rebuild has no replay buffer: no warning per value it leaves unread


def distribution_parameters(policy, observations: np.ndarray) -> np.ndarray:
    """The floating-point tensors of `policy`'s action distribution for `observations` (a TFP distribution
    is a composite tensor: logits, or loc and scale), one row per observation."""
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    observations = tf.convert_to_tensor(observations, dtype=policy.time_step_spec.observation.dtype)
    distribution = policy.distribution(ts.restart(observations, batch_size=len(observations))).action
    n, rows = len(observations), []
    for part in tf.nest.flatten(distribution, expand_composites=True):
        if part.dtype.is_floating:  # per observation, or shared by all (a scalar, a state-independent scale)
            value = part.numpy()
            per_row = value.ndim > 0 and value.shape[0] == n
            rows.append(value.reshape(n, -1) if per_row else np.broadcast_to(value.reshape(1, -1), (n, value.size)))
    return np.concatenate(rows, axis=1)


def close_envs(*envs) -> None:
    for env in envs:
        if env is not None:
            env.close()


class AgentWorkload(Workload):
    """What every agent's base (agents/off_policy.py, _on_policy.py) shares.

    A subclass's `setup` sets `agent`, `eval_policy` (the greedy policy it evaluates and exports),
    `train_env`, `eval_env`, `train_step` and `checkpoint` (a tf.train.Checkpoint). With
    `context.policy_only` (`lab eval`, `lab export`) it returns once the agent and checkpoint are built:
    one training env for the specs, `eval_env` None, no replay buffer or tf.functions.
    """

    label = ""  # "DQN": error messages and export names

    def make_envs(self, max_episode_steps: int = 0) -> None:
        """`train_env` (the learner's: Atari's episodic life and clipped rewards) and `eval_env` (the full
        game); rebuilt only for its policy, one training env for the specs and no eval envs."""
        from agents.tf_env import make_tf_env

        cfg, policy_only = self.config, self.context.policy_only
        limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
        self.train_env = make_tf_env(cfg.env_id, 1 if policy_only else cfg.num_envs, seed=cfg.seed, training=True,
                                     backend="gymnasium" if policy_only else cfg.env_backend, **limit)
        self.eval_env = None if policy_only else make_tf_env(
            cfg.env_id, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET, backend=cfg.env_backend, **limit)

    def train_rounds(self, one_round) -> tuple[dict, list]:
        """Rounds until `env_steps_per_step` more env steps (a round may overshoot), then `round_metrics`.

        `one_round(steps)` trains one round from the env step count `steps` and returns (the new count,
        its losses or None); returns the step's metrics and the rounds' losses.
        """
        import time

        cfg = self.config
        start_steps = steps = int(self.env_steps.numpy())
        target = min(start_steps + cfg.env_steps_per_step, cfg.max_env_steps)
        losses = []
        started = time.perf_counter()
        while steps < target:
            steps, loss = one_round(steps)
            if loss is not None:
                losses.append(loss)
        return round_metrics(self, steps, start_steps, time.perf_counter() - started), losses

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        """The greedy policy's actions for a batch of observations (tests, demos, lab.workload.testing)."""
        import tensorflow as tf
        from tf_agents.trajectories import time_step as ts

        observations = tf.convert_to_tensor(observations, dtype=self.observation_spec().dtype)
        return self.eval_policy.action(ts.restart(observations, batch_size=len(observations))).action.numpy()

    def policy_outputs(self, observations: np.ndarray) -> np.ndarray:
        """What the policy acts on, for a batch of observations, one row each: here the parameters of the
        collect policy's action distribution (logits; means and scales). The restore check compares them."""
        return distribution_parameters(self.agent.collect_policy, observations)

    def probe_observations(self, n: int = 16, seed: int = 0) -> np.ndarray:
        """`n` seeded observations drawn within the observation spec's bounds (clipped to +-10)."""
        spec = self.observation_spec()
        low = np.broadcast_to(np.maximum(getattr(spec, "minimum", -1.0), -10.0), spec.shape)
        high = np.broadcast_to(np.minimum(getattr(spec, "maximum", 1.0), 10.0), spec.shape)
        return np.random.default_rng(seed).uniform(low, high, (n, *spec.shape)).astype(spec.dtype.as_numpy_dtype)

    def observation_spec(self):
        """The envs' observation spec (the training env's: a policy-only rebuild has no eval envs)."""
        return self.train_env.observation_spec()

    def save(self, checkpoint_dir: str) -> None:
        write_checkpoint(self.checkpoint, checkpoint_dir, self.name)

    def restore(self, checkpoint_dir: str) -> None:
        read_checkpoint(self.checkpoint, checkpoint_dir, self.name, self.label)

    def export(self, out_dir: str) -> str:
        """The greedy policy, saved with PolicySaver (`lab export`, `lab eval PATH`)."""
        from agents.saved_policy import export_policy

        return export_policy(self.eval_policy, out_dir, self.train_step, self.config.env_id, self.label,
                             getattr(self.config, "max_episode_steps", 0))

    @classmethod
    def load_exported(cls, path: str):
        """The policy `export` wrote (a SavedModel), loaded; trusted, as the caller exported it."""
        from agents.saved_policy import load_policy

        return load_policy(path, trust=True)

    def close(self) -> None:
        close_envs(getattr(self, "train_env", None), getattr(self, "eval_env", None))

"""SAC, TD3 and DDPG's family (agents/sac.py, td3.py, ddpg.py): continuous actions, actor and critics.

An agent file holds its `Config` (a subclass of `ContinuousConfig` below), `make_agent`, which builds
the TF-Agents networks and agent, and `loss_metrics`; the loop (envs, replay buffer, collect/train
rounds, greedy evaluation, checkpoints, export) is agents/off_policy.py's. What this family adds to
it: uniformly random actions until `learning_starts` (a driver of its own), then the agent's collect
policy; a sample is one transition, and one whose first step ends an episode (LAST -> FIRST, the
auto-reset) is no transition: its weight in the losses is 0.

TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.off_policy import OffPolicyWorkload, ReplayChecks

TEST_PARAMS = {  # a few seconds: the conformance test and tests/agents/test_continuous_agents.py
    "env_id": "Pendulum-v1", "num_envs": 2, "actor_fc_layers": [16], "critic_fc_layers": [16],
    "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40, "collect_steps_per_iteration": 8,
    "train_steps_per_iteration": 4, "env_steps_per_step": 100, "eval_episodes": 2, "max_env_steps": 1_000,
}


@dataclass
class ContinuousConfig(ReplayChecks):
    """The fields every off-policy continuous-action agent has; the agent files add their own."""

    env_id: str = "Pendulum-v1"  # Gymnasium id: continuous (Box) actions, vector observations
    env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
    num_envs: int = 8  # training envs, stepped together (one Gymnasium vector env)
    actor_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the actor (an MLP; 256x256 was 3-4x slower)
    critic_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the critic, on [observation, action]
    actor_learning_rate: float = 1e-3  # Adam
    critic_learning_rate: float = 1e-3  # Adam
    gamma: float = 0.99  # discount factor
    target_update_tau: float = 0.005  # soft (Polyak) update of the target networks, every gradient step
    replay_capacity: int = 100_000  # transitions kept, split evenly over the envs
    batch_size: int = 256  # transitions per gradient step
    initial_collect_steps: int = 1_000  # env steps of uniformly random actions before training
    collect_steps_per_iteration: int = 64  # env steps per round, over all envs (>= num_envs)
    train_steps_per_iteration: int = 64  # gradient steps per round (= collect steps: replay ratio 1)
    env_steps_per_step: int = 1_000  # env steps trained by one step() (one Tune iteration)
    eval_episodes: int = 10  # greedy episodes per evaluation, played at once
    max_env_steps: int = 30_000  # budget: step() returns done=True once it is spent
    save_replay_buffer: bool = True  # checkpoints hold the replay buffer: no refill on resume
    seed: int = 0  # seeds TensorFlow, NumPy and the envs

    def check_common(self, agent: str) -> None:
        """ValueError on impossible values; SpecError unless the env has Box actions and vector observations."""
        self.check_replay(("num_envs", "actor_learning_rate", "critic_learning_rate", "target_update_tau",
                           "replay_capacity", "batch_size", "collect_steps_per_iteration", "train_steps_per_iteration",
                           "env_steps_per_step", "eval_episodes", "max_env_steps"), window=2)
        for name in ("actor_fc_layers", "critic_fc_layers"):
            layers = getattr(self, name)
            if not layers or any(units <= 0 for units in layers):
                raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(layers)}")
        if self.target_update_tau > 1.0:
            raise ValueError(f"target_update_tau must be in (0, 1], got {self.target_update_tau}")
        if self.initial_collect_steps < 0:
            raise ValueError("initial_collect_steps cannot be negative")
        from agents.tf_env import check_agent_env

        check_agent_env(self.env_id, agent, self.env_backend, discrete_actions=False)


class ContinuousWorkload(OffPolicyWorkload):
    """An actor-critic agent with continuous actions trained from a replay buffer (SAC, TD3, DDPG)."""

    loss_names = ("train/actor_loss", "train/critic_loss")

    def collect_policies(self) -> list:
        """Uniformly random actions until `learning_starts`, then the agent's collect policy."""
        from tf_agents.policies import random_tf_policy

        random_policy = random_tf_policy.RandomTFPolicy(self.train_env.time_step_spec(), self.train_env.action_spec())
        return [random_policy, self.agent.collect_policy]

    def transition_weights(self, experience):
        """0 for the auto-reset "transitions" (LAST -> FIRST), 1 for the others."""
        import tensorflow as tf

        return tf.cast(~experience.is_boundary()[:, 0], tf.float32)

    def policy_outputs(self, observations):
        """The actor's action distribution (SAC: the squashed Gaussian's parameters; TD3, DDPG: the actions)."""
        from agents._common import distribution_parameters

        return distribution_parameters(self.agent.policy, observations)

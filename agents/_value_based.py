"""DQN and C51's family (agents/dqn.py, c51.py): the Q-network, epsilon-greedy exploration, n-step samples.

An agent file holds its `Config` (a subclass of `ValueBasedConfig` below), `make_network` and
`make_agent`; the loop (envs, replay buffer, collect/train rounds, greedy evaluation, checkpoints) is
agents/off_policy.py's. What this family adds to it: `build_agent` makes the Q-network and its optimizer
before the agent; the collect policy is epsilon-greedy throughout (epsilon 1 until `learning_starts`,
then decaying linearly); a sample is `n_step_update + 1` consecutive steps (the n-step return), and
with `frame_stack` the replay keeps only each observation's newest frame (agents/frame_replay.py).

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with
           the epsilon-greedy policy (uniformly random until `initial_collect_steps`);
  train    `train_steps_per_iteration` gradient steps, each on `batch_size` n-step transitions
           sampled uniformly from the replay buffer; the target network is copied every
           `target_update_period` gradient steps (equal to the gradient steps per round by default:
           one target sync per round).

TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.off_policy import OffPolicyWorkload, ReplayChecks

TEST_PARAMS = {  # a few seconds: the conformance test
    "num_envs": 2, "fc_layers": [16], "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40,
    "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2, "target_update_period": 2,
    "epsilon_decay_steps": 100, "env_steps_per_step": 200, "eval_episodes": 2, "max_env_steps": 1_000,
}


@dataclass
class ValueBasedConfig(ReplayChecks):
    """The fields every value-based agent has (defaults: CartPole-v1); the agent files add their own."""

    env_id: str = "CartPole-v1"  # Gymnasium id: discrete actions, vector observations
    env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
    num_envs: int = 8  # training envs, stepped together (one Gymnasium vector env)
    fc_layers: tuple[int, ...] = (128, 128)  # hidden layers of the Q-network (an MLP)
    max_episode_steps: int = 0  # time limit of training and eval episodes (0: the env's own)
    learning_rate: float = 3e-3  # Adam
    adam_epsilon: float = 1e-7  # Adam's epsilon (Keras' default; Dopamine's Atari agents use 1.5e-4 = 0.01 / 32)
    gamma: float = 0.99  # discount factor
    n_step_update: int = 3  # n of the n-step return in the TD target
    replay_capacity: int = 50_000  # transitions kept, split evenly over the envs
    batch_size: int = 64  # transitions per gradient step
    initial_collect_steps: int = 1_000  # env steps of uniformly random actions before training
    collect_steps_per_iteration: int = 256  # env steps per round, over all envs (>= num_envs)
    train_steps_per_iteration: int = 256  # gradient steps per round
    target_update_period: int = 256  # gradient steps between copies into the target network
    epsilon_start: float = 1.0  # exploration rate at env step 0 (1.0 anyway before initial_collect_steps),
    epsilon_end: float = 0.04  # decaying linearly to this rate
    epsilon_decay_steps: int = 8_000  # at this env step
    env_steps_per_step: int = 1_000  # env steps trained by one step() (one Tune iteration)
    eval_episodes: int = 10  # greedy episodes per evaluation, played at once
    max_env_steps: int = 50_000  # budget: step() returns done=True once it is spent
    grad_clip: float = 10.0  # clip gradients to this global norm (0: no clipping)
    save_replay_buffer: bool = True  # checkpoints hold the replay buffer (~2.7 MB at 50k): no refill on resume
    frame_stack: int = 0  # observations are this many stacked frames (Atari: 4): the replay keeps the newest
    #   frame of each and rebuilds the stacks when it samples (agents/frame_replay.py: 4x less memory)
    seed: int = 0  # seeds TensorFlow, NumPy and the envs

    def check_common(self, agent: str, vector_observations: bool = True) -> None:
        """ValueError on impossible values; SpecError unless the env has one discrete action (and its observations fit)."""
        window = self.n_step_update + max(self.frame_stack, 1)  # consecutive steps one sample reads
        self.check_replay(("num_envs", "learning_rate", "n_step_update", "replay_capacity", "batch_size",
                           "collect_steps_per_iteration", "train_steps_per_iteration", "target_update_period",
                           "epsilon_decay_steps", "env_steps_per_step", "eval_episodes", "max_env_steps"),
                          window, "n_step_update + max(frame_stack, 1) = ")
        if not self.fc_layers or any(units <= 0 for units in self.fc_layers):
            raise ValueError(f"fc_layers must be a non-empty list of positive sizes, got {list(self.fc_layers)}")
        if self.max_episode_steps < 0:
            raise ValueError(f"max_episode_steps cannot be negative, got {self.max_episode_steps}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"adam_epsilon must be positive, got {self.adam_epsilon}")
        if self.initial_collect_steps < 0 or self.grad_clip < 0 or self.frame_stack < 0:
            raise ValueError("initial_collect_steps, grad_clip and frame_stack cannot be negative")
        from agents.tf_env import check_agent_env

        check_agent_env(self.env_id, agent, self.env_backend, discrete_actions=True,
                        vector_observations=vector_observations, frame_stack=self.frame_stack)


class ValueBasedWorkload(OffPolicyWorkload):
    """A Q-learning agent trained from a replay buffer (DQN, C51): the off-policy loop with a Q-network."""

    loss_names = ("train/loss",)

    def make_network(self, observation_spec, action_spec):
        """The subclass's (online) Q-network."""
        raise NotImplementedError

    def make_optimizer(self):
        import tensorflow as tf

        return tf.keras.optimizers.Adam(learning_rate=self.config.learning_rate, epsilon=self.config.adam_epsilon)

    def make_agent(self, time_step_spec, action_spec):
        """The subclass's TF-Agents agent over `q_network` and `optimizer`, exploring with `epsilon`."""
        raise NotImplementedError

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return super().metric_names(config) | {"train/epsilon"}

    @property
    def sample_steps(self) -> int:
        return self.config.n_step_update + 1  # the n-step return's transitions

    def build_agent(self, time_step_spec, action_spec):
        self.q_network = self.make_network(time_step_spec.observation, action_spec)
        self.optimizer = self.make_optimizer()
        agent = self.make_agent(time_step_spec, action_spec)
        self.optimizer.build(self.q_network.trainable_variables)  # slots now, not inside the train loop
        return agent

    def epsilon(self):
        """Exploration rate, from the env step counter (read inside the collect graph): 1 until `learning_starts`."""
        import tensorflow as tf

        cfg = self.config
        fraction = tf.minimum(tf.cast(self.env_steps, tf.float32) / float(cfg.epsilon_decay_steps), 1.0)
        decayed = cfg.epsilon_start + fraction * (cfg.epsilon_end - cfg.epsilon_start)
        return tf.where(self.env_steps < self.learning_starts, 1.0, decayed)

    def epsilon_at(self, env_steps: int) -> float:
        """`epsilon()` at the env step count `env_steps`, in Python (agents/numpy_collect.py)."""
        cfg = self.config
        if env_steps < self.learning_starts:
            return 1.0
        fraction = min(env_steps / float(cfg.epsilon_decay_steps), 1.0)
        return cfg.epsilon_start + fraction * (cfg.epsilon_end - cfg.epsilon_start)

    def make_replay(self):
        """Stacked frames (`frame_stack`) are stored once each: only the newest frame of each observation."""
        cfg = self.config
        if not cfg.frame_stack:
            return super().make_replay()
        from agents.frame_replay import NewestFrameReplay

        replay = NewestFrameReplay(self.agent.collect_data_spec, batch_size=cfg.num_envs,
                                   max_length=cfg.replay_capacity // cfg.num_envs, frames=cfg.frame_stack)
        self.replay_buffer = replay.buffer
        return replay

    def loss_metrics(self, loss_info) -> list:
        return [loss_info.loss]

    def policy_outputs(self, observations):
        """The Q-network's outputs (DQN: Q-values; C51: the logits of each action's atoms), one row each."""
        import tensorflow as tf

        outputs, _ = self.q_network(tf.convert_to_tensor(observations, dtype=self.observation_spec().dtype))
        return outputs.numpy().reshape(len(observations), -1)

    def checkpointed(self) -> dict:
        return dict(agent=self.agent, q_network=self.q_network, optimizer=self.optimizer,
                    train_step=self.train_step, env_steps=self.env_steps)

    def step(self) -> dict[str, float | bool]:
        metrics = super().step()
        metrics["train/epsilon"] = float(self.epsilon())
        return metrics

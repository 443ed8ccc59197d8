"""PPO with an adaptive KL penalty (Schulman et al. 2017, section 4) instead of the clipped objective.

TF-Agents' `PPOKLPenaltyAgent` adds beta * KL(old policy || new policy) to the loss and adapts beta
after each gradient step: x1.5 when the KL exceeds (1 + tolerance) * target, /1.5 below
(1 - tolerance) * target. Everything else is PPO's (agents/ppo.py): rounds, GAE, minibatch epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.ppo import PPO, TEST_PARAMS, PPOConfig


class PPOKLPenalty(PPO):
    name = "ppo_kl"
    label = "PPO-KL"
    test_params = dict(TEST_PARAMS)

    @dataclass
    class Config(PPOConfig):
        initial_adaptive_kl_beta: float = 1.0  # the KL penalty's starting coefficient
        adaptive_kl_target: float = 0.01  # the KL per gradient step that beta steers towards
        adaptive_kl_tolerance: float = 0.5  # no change of beta within target x (1 +- tolerance)

        def check(self) -> None:
            if self.initial_adaptive_kl_beta <= 0 or self.adaptive_kl_target <= 0:
                raise ValueError("initial_adaptive_kl_beta and adaptive_kl_target must be positive")
            if not 0 < self.adaptive_kl_tolerance < 1:
                raise ValueError(f"adaptive_kl_tolerance must be in (0, 1), got {self.adaptive_kl_tolerance}")
            self.check_ppo("PPO-KL")

    def make_agent(self, time_step_spec, action_spec):
        from tf_agents.agents.ppo import ppo_kl_penalty_agent

        cfg = self.config
        return self.agent_class(ppo_kl_penalty_agent.PPOKLPenaltyAgent)(
            time_step_spec, action_spec, **self.agent_settings(),
            initial_adaptive_kl_beta=cfg.initial_adaptive_kl_beta, adaptive_kl_target=cfg.adaptive_kl_target,
            adaptive_kl_tolerance=cfg.adaptive_kl_tolerance, kl_cutoff_factor=0.0)  # no extra cutoff penalty

    def checkpointed(self) -> dict:
        return {**super().checkpointed(), "adaptive_kl_beta": self.agent._adaptive_kl_beta}  # no public accessor

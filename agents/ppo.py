"""PPO (clipped objective) with TF-Agents on a Gymnasium environment, discrete or continuous actions.

The `Config` (its defaults solve CartPole-v1) and TF-Agents' `PPOClipAgent`; the rounds (collect,
advantages, minibatch epochs), evaluation and checkpoints are agents/_ppo.py's and _on_policy.py's.
"""
from __future__ import annotations

from dataclasses import dataclass

from agents._ppo import TEST_PARAMS, PPOConfig, PPOWorkload


class PPO(PPOWorkload):
    name = "ppo"
    label = "PPO"
    test_params = dict(TEST_PARAMS)

    @dataclass
    class Config(PPOConfig):
        importance_ratio_clipping: float = 0.2  # epsilon of the clipped surrogate objective

        def check(self) -> None:
            self.check_ppo("PPO", non_negative=("importance_ratio_clipping",))

    def make_agent(self, time_step_spec, action_spec):
        from tf_agents.agents.ppo import ppo_clip_agent

        return ppo_clip_agent.PPOClipAgent(time_step_spec, action_spec, **self.agent_settings(),
                                           importance_ratio_clipping=self.config.importance_ratio_clipping)

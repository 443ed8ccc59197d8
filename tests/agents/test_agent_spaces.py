"""Every agent refuses, when its spec is loaded, an env whose spaces it cannot learn (one check: envs.gym_envs.check_spaces)."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from lab import workload as workloads
from lab.errors import SpecError


class ImageEnv(gymnasium.Env):
    """(8, 8, 3) images; discrete actions, or Box ones as `LabTest/ImageBox-v0`."""

    observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)

    def __init__(self, render_mode=None, box_actions: bool = False):
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32) if box_actions else spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((8, 8, 3), np.uint8), 0.0, True, False, {}


for env_id, kwargs in (("LabTest/Image-v0", {}), ("LabTest/ImageBox-v0", {"box_actions": True})):
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=ImageEnv, max_episode_steps=10, kwargs=kwargs)

DISCRETE = {"dqn": "DQN", "c51": "C51", "reinforce": "REINFORCE"}
CONTINUOUS = {"sac": "SAC", "td3": "TD3", "ddpg": "DDPG"}
EITHER = {"ppo": "PPO", "ppo_kl": "PPO-KL"}


@pytest.mark.parametrize("name", [*DISCRETE, *CONTINUOUS, *EITHER])
def test_unknown_env_id_suggests_close_names(name):
    with pytest.raises(SpecError, match=r"^unknown Gymnasium environment 'CartPol-v1' \(did you mean 'CartPole-v1'"):
        workloads.get(name).make_config({"env_id": "CartPol-v1"})


@pytest.mark.parametrize("name", DISCRETE)
def test_continuous_actions_are_refused_by_discrete_agents(name):
    with pytest.raises(SpecError, match=rf"^{DISCRETE[name]} needs one discrete action, but 'Pendulum-v1' has Box"):
        workloads.get(name).make_config({"env_id": "Pendulum-v1"})


@pytest.mark.parametrize("name", CONTINUOUS)
def test_discrete_actions_are_refused_by_continuous_agents(name):
    with pytest.raises(SpecError, match=rf"^{CONTINUOUS[name]} needs continuous \(Box\) actions, but 'CartPole-v1'"):
        workloads.get(name).make_config({"env_id": "CartPole-v1"})


@pytest.mark.parametrize("name", [*DISCRETE, *CONTINUOUS, *EITHER])
def test_image_observations_are_refused_by_mlp_agents(name):
    label = {**DISCRETE, **CONTINUOUS, **EITHER}[name]
    env_id = "LabTest/ImageBox-v0" if name in CONTINUOUS else "LabTest/Image-v0"
    with pytest.raises(SpecError, match=rf"^{label}'s MLP networks need flat vector observations.*\(8, 8, 3\)"):
        workloads.get(name).make_config({"env_id": env_id})


def test_dqn_takes_images_with_conv_layers_and_only_then():
    workloads.get("dqn").make_config({"env_id": "LabTest/Image-v0", "conv_layers": [[8, 3, 1]]})
    with pytest.raises(SpecError, match=r"conv layers need image observations"):
        workloads.get("dqn").make_config({"env_id": "CartPole-v1", "conv_layers": [[8, 3, 1]]})


def test_frame_stack_must_match_the_observed_stack_before_any_trial():
    """LabTest/Image-v0 observes (8, 8, 3): a stack of 3 frames fits, 4 does not; refused at load, not in the trial."""
    params = {"env_id": "LabTest/Image-v0", "conv_layers": [[8, 3, 1]]}
    workloads.get("dqn").make_config({**params, "frame_stack": 3})
    with pytest.raises(SpecError, match=r"^frame_stack 4 needs observations of 4 stacked frames .*\(8, 8, 3\)"):
        workloads.get("dqn").make_config({**params, "frame_stack": 4})
    with pytest.raises(SpecError, match=r"^frame_stack 4 needs .* 'CartPole-v1' observes shape \(4,\)"):
        workloads.get("c51").make_config({"env_id": "CartPole-v1", "frame_stack": 4})

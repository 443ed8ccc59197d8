"""Every CartPole RL preset is a Tune sweep: a search space, several samples, ASHA on the greedy eval return.

No training here: the specs are loaded and validated (every value the search can produce goes through the
workload's Config) and the Tune scheduler and search space are built as `lab run` builds them.
"""
from __future__ import annotations

import pytest

from lab import spec as specs

RL_SWEEPS = ("dqn-cartpole", "ppo-cartpole", "ppo-kl-cartpole", "c51-cartpole", "reinforce-cartpole")


def agent_presets() -> list[str]:
    """The CartPole presets shipped in agents/presets (the RL sweeps; Atari and maze presets are single runs)."""
    return sorted(name for name, item in specs.presets().items()
                  if item.parent.parent.name == "agents" and name.endswith("-cartpole"))


def test_every_cartpole_agent_ships_a_sweep():
    assert set(RL_SWEEPS) <= set(agent_presets())


@pytest.mark.parametrize("name", agent_presets())
def test_rl_preset_is_an_asha_sweep_on_the_greedy_return(name):
    (spec,) = specs.load(name)  # validates the params and every value of the search space
    assert spec.metric == "eval/average_return" and spec.mode == "max"
    assert spec.reference.metric == "eval/average_return" and spec.reference.score >= 475
    assert spec.search and 3 <= spec.num_samples <= 4
    assert all(set(dist) <= {"loguniform", "uniform", "choice", "randint"} for dist in spec.search.values())
    scheduler = spec.scheduler
    assert scheduler.type == "asha" and scheduler.reduction_factor > 1
    assert scheduler.grace_period < scheduler.max_t
    # a trial stops at the reference, at max_t iterations or when the workload's budget is spent
    assert spec.stop["eval/average_return"] == spec.reference.score
    assert spec.stop["training_iteration"] == scheduler.max_t
    assert spec.resources.cpu <= 1  # two trials at a time on 2 cores


@pytest.mark.parametrize("name", RL_SWEEPS)
def test_tune_builds_asha_and_the_search_space(name):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from lab.execution import runner

    (spec,) = specs.load(name)
    scheduler = runner.scheduler(spec)
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._max_t == spec.scheduler.max_t and scheduler._reduction_factor == spec.scheduler.reduction_factor
    space = runner.param_space(spec)
    for key in spec.search:
        assert isinstance(space[key], tune.search.sample.Domain), key
    assert space["seed"] == spec.seed
    from lab import workload as workloads

    assert workloads.get(spec.workload).make_config(spec.trial_params).env_id == "CartPole-v1"


def test_quickstart_runs_dqn_as_one_trial():
    """The quickstart stays short: its DQN member is a single trial, with dqn-cartpole's params otherwise."""
    from lab import workload as workloads

    (dqn,) = [spec for spec in specs.load("quickstart") if spec.workload == "dqn"]
    assert dqn.num_samples == 1 and not dqn.search
    assert dqn.reference.score == 475 and dqn.stop["eval/average_return"] == 475
    (preset,) = specs.load("dqn-cartpole")
    cls = workloads.get("dqn")
    tuned = cls.make_config(preset.trial_params)  # the search key left at the workload's (tuned) default
    assert cls.make_config(dqn.trial_params) == tuned

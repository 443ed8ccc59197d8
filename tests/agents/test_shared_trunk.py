"""PPO with one trunk for the actor and the value network (agents/shared_trunk.py): one set of trunk
variables, trained by both losses, saved and restored once; a mismatched trunk is refused."""
from __future__ import annotations

import numpy as np
import pytest

from agents.ppo import TEST_PARAMS

SHARED = {**TEST_PARAMS, "shared_trunk": True, "actor_fc_layers": [16], "value_fc_layers": [16]}


def test_actor_and_value_share_one_trunk_that_both_losses_train(tmp_path):
    from lab.workload.testing import make

    workload = make("ppo", SHARED, trial_dir=str(tmp_path))
    try:
        actor = {v.ref() for v in workload.actor_net.trainable_variables}
        value = {v.ref() for v in workload.value_net.trainable_variables}
        shared = actor & value
        assert len(shared) == 2 and len(actor) == 4 and len(value) == 4  # the trunk's kernel and bias; two heads
        assert len(workload.variables) == 6  # each variable once for the optimizer
        trunk_before = [v.deref().numpy().copy() for v in shared]
        heads_before = {name: [v.numpy().copy() for v in net.trainable_variables if v.ref() not in shared]
                        for name, net in (("actor", workload.actor_net), ("value", workload.value_net))}
        metrics = workload.step()
        assert np.isfinite(metrics["train/loss"])
        assert all(not np.allclose(b, v.deref().numpy()) for b, v in zip(trunk_before, shared))
        for name, net in (("actor", workload.actor_net), ("value", workload.value_net)):
            after = [v.numpy() for v in net.trainable_variables if v.ref() not in shared]
            assert any(not np.allclose(b, a) for b, a in zip(heads_before[name], after)), name
    finally:
        workload.close()


def test_a_shared_trunk_checkpoint_restores_into_a_fresh_workload(tmp_path):
    from lab.workload.testing import make

    first = make("ppo", SHARED, trial_dir=str(tmp_path / "a"))
    try:
        first.step()
        first.save(str(tmp_path / "checkpoint"))
        weights = [v.numpy() for v in first.variables]
    finally:
        first.close()
    second = make("ppo", SHARED, trial_dir=str(tmp_path / "b"))
    try:
        second.restore(str(tmp_path / "checkpoint"))
        assert all(np.array_equal(w, v.numpy()) for w, v in zip(weights, second.variables))
        trunk = {v.ref() for v in second.actor_net.trainable_variables} & {v.ref() for v in second.value_net.trainable_variables}
        assert len(trunk) == 2  # still one trunk after the restore
    finally:
        second.close()


def test_a_shared_trunk_needs_equal_actor_and_value_layers():
    from agents.ppo import PPO
    from lab.errors import SpecError

    with pytest.raises(SpecError, match="shared_trunk: actor_fc_layers \\[16\\] and value_fc_layers \\[32\\] must be equal"):
        PPO.make_config({**SHARED, "value_fc_layers": [32]})

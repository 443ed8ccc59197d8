"""keras_multiworker: data-parallel Keras (MultiWorkerMirroredStrategy) through a Ray Train TensorflowTrainer."""
from __future__ import annotations

import json

import pytest

from lab.workload.testing import make

PARAMS = {"num_workers": 2, "cpus_per_worker": 0.5, "subset": 2000, "hidden_units": [64], "batch_size": 64,
          "validation_split": 0.1, "max_epochs": 3, "seed": 1}


def test_bad_worker_settings_are_config_errors():
    from lab.errors import SpecError
    from lab.workload import get

    with pytest.raises(SpecError, match="multiple of num_workers"):
        get("keras_multiworker").make_config({**PARAMS, "batch_size": 65})
    with pytest.raises(SpecError, match="num_workers"):
        get("keras_multiworker").make_config({**PARAMS, "num_workers": -1})


@pytest.mark.slow
def test_two_workers_both_train_and_resume_from_the_checkpoint(tmp_path, ray_shared):
    first = make("keras_multiworker", PARAMS, trial_dir=str(tmp_path / "a"))
    one = first.step()  # epoch 1: one trainer.fit() on two workers
    ranks = [json.loads((tmp_path / "a" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and one["charts/replicas"] == 2
    assert all(len(r["losses"]) == 1 for r in ranks)
    first.save(str(tmp_path / "checkpoint"))
    first.close()

    second = make("keras_multiworker", {**PARAMS, "epochs_per_step": 2}, trial_dir=str(tmp_path / "b"))
    second.restore(str(tmp_path / "checkpoint"))
    two = second.step()  # epochs 2 and 3 in one trainer.fit(), from epoch 1's weights and optimizer state
    second.close()
    assert (two["charts/epoch"], two["done"]) == (3, True)
    ranks = [json.loads((tmp_path / "b" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["world_size"], r["epoch"], len(r["losses"])) for r in ranks] == [(2, 3, 2), (2, 3, 2)]
    assert two["train/loss"] < one["train/loss"], (one, two)
    assert two["val/accuracy"] > 0.6, two  # 10 classes: chance is 0.1

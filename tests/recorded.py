"""A trained trial recorded in the registry without Ray: a workload stepped here, checkpointed and sealed as
Tune's trainable does, then written to the registry as a finished experiment (fast fixtures for the
commands that read a trial back: export, eval, tensorboard, lab.load)."""
from __future__ import annotations

from pathlib import Path


def record_trial(name: str, params: dict | None, folder: Path, metric: str, spec: dict | None = None) -> int:
    """Step workload `name` once, checkpoint it under `folder` (within the storage root, $LAB_HOME/experiments);
    the new experiment's id (in $LAB_HOME)."""
    from lab.workload import checkpoints
    from lab import workload as workloads
    from lab.registry import Registry, now
    from lab.workload.testing import make

    cls = workloads.get(name)
    params = dict(cls.test_params if params is None else params)
    trial_dir, checkpoint = folder / "trial", folder / "trial" / "checkpoint_000000"
    workload = make(name, params, trial_dir=str(trial_dir))
    try:
        metrics = workload.step()
        checkpoint.mkdir(parents=True)
        workload.save(str(checkpoint))
    finally:
        workload.close()
    checkpoints.seal(str(checkpoint))
    spec = {"name": f"recorded-{name}", "workload": name, "params": params, "metric": metric, "mode": "max",
            **(spec or {})}
    registry = Registry()
    experiment_id = registry.create_experiment(spec, user="tester", host="here", storage_path=str(folder))
    registry.upsert_trial(experiment_id, f"{name}_00000", status="TERMINATED", config=params, iterations=1,
                          last_result=metrics, best_result=metrics, best_metric=metrics[metric],
                          checkpoint_path=str(checkpoint), logdir=str(trial_dir))
    registry.update_experiment(experiment_id, status="completed", ended_at=now())
    return experiment_id

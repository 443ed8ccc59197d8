"""A recorded trial brought back to life: its workload rebuilt from the registry and its checkpoint.

    workload = load_trial_workload(experiment_id=3)          # the best trial, restored
    export_trial(3, "out/")                                  # -> workload.export("out/"): skops, .keras, PolicySaver

`lab export` and `lab eval` are built on these. The trial's config comes from the registry, its state
from the last checkpoint Tune wrote (no pickle: each workload reads its own safe format).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab import settings
from lab import workload as workloads
from lab.errors import LabError
from lab.workload import checkpoints


def trial_record(experiment_id: int, trial_id: str | None = None, registry=None) -> tuple[dict, dict]:
    """(experiment, trial) records: the named trial, else the experiment's best one."""
    from lab.registry import Registry

    registry = registry or Registry()
    experiment = registry.experiment(experiment_id)
    if trial_id is None:
        trial = registry.best_trial(experiment_id)
        if trial is None:
            raise LabError(f"experiment {experiment_id} has no trial that reported '{experiment['metric']}'")
        return experiment, trial
    for trial in registry.trials(experiment_id):
        if trial["trial_id"] == trial_id or trial["trial_id"].endswith(f"_{trial_id}"):
            return experiment, trial
    known = ", ".join(t["trial_id"] for t in registry.trials(experiment_id))
    raise LabError(f"experiment {experiment_id} has no trial '{trial_id}' (trials: {known or 'none'})")


def load_trial_workload(experiment_id: int, trial_id: str | None = None, workdir: str | None = None,
                        registry=None, policy_only: bool = False) -> workloads.Workload:
    """The trial's workload: built from its recorded config, set up, restored from its checkpoint.

    The caller closes it. `workdir` receives whatever the workload writes while set up (default: a
    temporary folder, removed by `close`). `policy_only`: only to export its model (TrialContext.policy_only: an RL agent
    allocates no replay buffer).
    """
    experiment, trial = trial_record(experiment_id, trial_id, registry)
    checkpoint = trial.get("checkpoint_path")
    if not checkpoint:
        raise LabError(f"trial {trial['trial_id']} of experiment {experiment_id} has no checkpoint "
                       f"(status {trial['status']})")
    from lab.infra import storage
    from lab.spec.safety import printable

    where = storage.recorded(checkpoint, f"checkpoint of trial {printable(trial['trial_id'])[:100]}")
    scratch = None if workdir else tempfile.mkdtemp(prefix="lab-trial-")  # removed by close, or on failure
    workdir = workdir or scratch
    try:
        # S3, GCS: the machine that reads it is rarely the one that wrote it
        checkpoint = where.path if where.is_local else _download(where.uri, os.path.join(workdir, "checkpoint"))
        if not os.path.isdir(checkpoint):
            raise LabError(f"checkpoint folder {printable(checkpoint)} of trial {printable(trial['trial_id'])} "
                           "is gone")
        checkpoints.verify(checkpoint)
        settings.apply_worker_env()
        cls = workloads.get(experiment["workload"])
        config = cls.make_config(trial["config"])
    except BaseException:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    context = workloads.TrialContext(trial_dir=workdir, trial_id=trial["trial_id"], policy_only=policy_only)
    workload = cls(config, context)
    if scratch:
        close = workload.close

        def close_and_clean() -> None:  # the temporary folder goes with the workload
            try:
                close()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

        workload.close = close_and_clean
    try:
        workload.setup()
    except BaseException:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        workload.restore(checkpoint)
    except BaseException:
        workload.close()
        raise
    return workload


def _download(uri: str, local: str) -> str:
    """A checkpoint folder on remote storage copied to `local` (verified against its manifest afterwards)."""
    import pyarrow.fs

    from lab.errors import one_line
    from lab.infra import storage

    where = storage.resolve(uri, "the trial's recorded checkpoint")
    try:
        os.makedirs(local, exist_ok=True)
        pyarrow.fs.copy_files(where.path, local, source_filesystem=where.filesystem)
    except Exception as exc:  # noqa: BLE001 - pyarrow's OSError, a missing object
        raise LabError(f"checkpoint {where.uri} cannot be read: {one_line(exc)}") from None
    return local


def export_trial(experiment_id: int, out: str, trial_id: str | None = None,
                 force: bool = False) -> tuple[str, dict[str, Any]]:
    """Write the trial's model in its workload's portable format as the folder `out`; (written path, trial).

    `out` must be absent or empty (or `force`: then it is replaced as a whole) and not a symbolic link.
    The export is written into a temporary folder beside it, then renamed into place: a failure leaves
    `out` as it was. Its content hash is recorded (lab/results/provenance.py), so the lab's loaders know it.
    """
    from lab.results.provenance import record_export

    target = Path(out).expanduser()
    _check_out(target, force)
    _, trial = trial_record(experiment_id, trial_id)
    parent = target.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent)
    try:
        os.chmod(staging, 0o755)  # noqa: S103 - an export is meant to be shared, as mkdir makes it
        workload = load_trial_workload(experiment_id, trial["trial_id"], policy_only=True)  # no replay buffer
        try:
            path = workload.export(staging)
        finally:
            workload.close()
        inside = os.path.relpath(os.path.realpath(path), os.path.realpath(staging))
        if inside.startswith(os.pardir):
            raise LabError(f"the {trial['trial_id']} export wrote outside its folder: {path}")
        record_export(staging)
        if inside != os.curdir:
            record_export(path)
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return str(target / inside) if inside != os.curdir else str(target), trial


def _check_out(target: Path, force: bool) -> None:
    if target.is_symlink():
        raise LabError(f"--out {target} is a symbolic link: give a real folder")
    if target.exists() and not target.is_dir():
        raise LabError(f"--out {target} is a file: give a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise LabError(f"--out {target} is not empty: pass --force to replace it")


def _replace(staging: str, target: Path) -> None:
    """Move `staging` to `target`, replacing what is there (renames only, no file is followed)."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.absolute().parent)
    os.rename(target, os.path.join(old, "previous"))
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)  # rmtree does not follow symbolic links

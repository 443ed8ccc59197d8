"""The one Tune adapter: runs any registered workload as a `ray.tune.Trainable`.

It also owns the trial's TensorBoard run (one events file in the trial folder): the HParams record,
the workload's namespaced scalars after every step, and the images/text the workload logs.
"""
from __future__ import annotations

import math
import os
import random

import numpy as np
from ray import tune

from lab import settings
from lab import workload as workloads
from lab.workload import checkpoints


class WorkloadTrainable(tune.Trainable):
    """setup -> workload.setup, step -> workload.step (NaN fails the trial), save/restore -> checkpoints."""

    def setup(self, config: dict, workload: str) -> None:
        settings.apply_worker_env()
        cpus = self.trial_resources.required_resources.get("CPU", 1) if self.trial_resources else 1
        # TensorFlow sizes its thread pools to the machine, not to the trial: trials side by side would
        # oversubscribe the cores (read by TensorFlow when a workload imports it)
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, int(cpus))))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(max(1, int(cpus))))
        self._workload_name = workload
        self._build(config)

    def _build(self, config: dict) -> None:
        from lab.workload.tboard import (  # in the trial's worker: the driver never writes them
            MediaLogger,
            SummaryWriter,
        )

        cls = workloads.get(self._workload_name)
        workload_config = cls.make_config(config)
        random.seed(workload_config.seed)
        np.random.seed(workload_config.seed % 2**32)
        trial_dir = tensorboard_dir(self)
        self._writer = SummaryWriter(trial_dir)
        self._writer.hparams(hparams_of(config), trial_id=self.trial_id)
        self._media = MediaLogger(self._writer)
        context = workloads.TrialContext(
            trial_dir=trial_dir,
            trial_id=self.trial_id,
            num_gpus=float(self.trial_resources.required_resources.get("GPU", 0)) if self.trial_resources else 0.0,
            logger=self._media,
        )
        self.workload = cls(workload_config, context)
        try:
            self.workload.setup()
        except BaseException:
            self._writer.close()
            raise

    def step(self) -> dict:
        self._media.step = self.iteration + 1
        metrics = self.workload.step()
        for key, value in metrics.items():
            if isinstance(value, (float, np.floating)) and not math.isfinite(value):
                raise FloatingPointError(f"metric '{key}' is {value} at iteration {self.iteration + 1}")
        self._writer.scalars({k: v for k, v in metrics.items() if "/" in k}, step=self.iteration + 1)
        self._writer.flush()
        return metrics

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.workload.save(checkpoint_dir)
        # last: a checkpoint cut short has no manifest; its progress lets a resume start from it even when
        # Tune's saved state does not name it (lab.execution.tune_fixes.restore_from_a_checkpoint_that_exists)
        checkpoints.seal(checkpoint_dir, progress={"training_iteration": self.iteration,
                                                   "time_total_s": self._time_total})

    def restore(self, checkpoint_path) -> None:
        """Verify the checkpoint against its manifest before Ray reads anything of it (Ray's own `restore`
        would unpickle a planted `_dict_checkpoint.pkl` before `load_checkpoint` is called), then restore from
        that same verified local copy."""
        from ray.train._internal.checkpoint_manager import _TrainingResult

        if isinstance(checkpoint_path, str):
            checkpoint_path = tune.Checkpoint.from_directory(checkpoint_path)
        if isinstance(checkpoint_path, tune.Checkpoint):
            checkpoint_path = _TrainingResult(checkpoint=checkpoint_path, metrics={})
        with checkpoint_path.checkpoint.as_directory() as local:
            checkpoints.verify(local)
            metrics = checkpoint_path.metrics
            if "training_iteration" not in metrics:  # a checkpoint Tune's state does not name: its own record
                with open(os.path.join(local, checkpoints.MANIFEST)) as handle:
                    metrics = {**checkpoints.progress(handle.read()), **metrics}
            verified = _TrainingResult(checkpoint=tune.Checkpoint.from_directory(local), metrics=metrics)
            super().restore(verified)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        checkpoints.verify(checkpoint_dir)
        self.workload.restore(checkpoint_dir)

    def reset_config(self, new_config: dict) -> bool:
        """Reuse this actor for the next trial (TuneConfig(reuse_actors=True)): no new process, no re-import."""
        self.cleanup()
        self._build(new_config)
        return True

    def cleanup(self) -> None:
        workload, writer = getattr(self, "workload", None), getattr(self, "_writer", None)
        try:
            if workload is not None:
                workload.close()
        finally:
            if writer is not None:
                writer.close()


def tensorboard_dir(trainable: tune.Trainable) -> str:
    """Where a trial writes its TensorBoard run: the trial folder when storage is local (or shared),
    else the working directory that Tune syncs to storage with the checkpoints."""
    storage = trainable._storage
    path = storage.trial_fs_path if storage is not None else trainable.logdir
    if storage is not None and not os.path.isabs(path):
        path = storage.trial_working_directory
    os.makedirs(path, exist_ok=True)
    return path


def hparams_of(config: dict) -> dict:
    """The trial's parameters as HParams values (lists become strings, nested keys are flattened)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in hparams_of(value).items()})
        else:
            flat[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat

"""Data-parallel Keras through Ray Train: the book's MLP (chapter 10) on N workers with MultiWorkerMirroredStrategy.

How it fits the workload protocol: one `step()` runs one Ray Train `TensorflowTrainer.fit()` (the V2
trainer) of `epochs_per_step` epochs on `num_workers` worker processes, which start from the previous
step's checkpoint; the trainer's last report comes back as the step's metrics, its last checkpoint is
kept by the workload and is what `save`/`restore` move around. So Tune sees an ordinary trainable:
schedulers, `max_failures` and `lab resume` work unchanged. (`Tuner(trainer)` is refused by Ray Train V2,
and Tune needs no `TuneReportCallback` here: the workload returns the metrics itself.)

Each worker reads the data itself (imagesets, offline), builds the model under the strategy and trains
on its shard (tf.data auto-sharding by DATA: worker r takes every N-th example of each global batch).
Under MultiWorkerMirroredStrategy saving runs a collective, so EVERY rank writes the checkpoint (rank 0
into the one it reports, the others into a throwaway folder): saving on rank 0 alone deadlocks.
`num_workers: 0` trains in the trial's own process with no strategy and no Ray Train (the conformance test).

Resources: the trial itself needs little (`resources: {cpu: 0.5}`); the workers ask Ray for
`cpus_per_worker` each, on any node. Checkpoints are plain folders: on a multi-node cluster the trial's
folder must be on storage every node sees (LAB_STORAGE on a shared file system), as for any restore.

    from lab.workload.testing import make
    w = make("keras_multiworker", {"num_workers": 2, "subset": 600, "max_epochs": 2})
    print(w.step())
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import imagesets as data
from lab.workload import Workload, suggest

STATE_FILE = "state.json"  # the epoch counter beside the TensorFlow checkpoint
CHECKPOINT_PREFIX = "model"  # tf.train.Checkpoint files: model.index, model.data-*
EVAL_BATCH_SIZE = 512


# ---------------------------------------------------------------- what every worker runs
def train_worker(config: dict, rank: int, world_size: int, report: Callable[[dict, str | None], None]) -> None:
    """Train `epochs` epochs from `restore_from` (a checkpoint folder, or None); report after each epoch.

    `report(metrics, checkpoint_dir_or_None)` is ray.train.report under Ray Train, a plain callback in-process.
    """
    from deep.backend import load_tf
    from deep.models import make_mlp
    from deep.pipeline import split_validation

    tf = load_tf()
    # the strategy must exist before any other TensorFlow op: it reads TF_CONFIG (set by Ray Train's backend)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if world_size > 1 else tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(config["seed"])  # the same initial weights on every rank
    (x, y), (x_test, y_test) = data.load(config["dataset"], subset=config["subset"], seed=config["seed"])
    (x_train, y_train), (x_val, y_val) = split_validation(x, y, config["validation_split"], config["seed"])

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    def batches(xs, ys, batch_size, shuffle_seed=None):
        dataset = tf.data.Dataset.from_tensor_slices((xs, ys))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(ys), seed=shuffle_seed)
        return dataset.batch(batch_size).with_options(options)

    with strategy.scope():
        model = make_mlp(x_train.shape[1:], 10, config["hidden_units"], config["dropout"], False, "relu")
        model.compile(optimizer=tf.keras.optimizers.Adam(config["learning_rate"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        epoch = 0
        if config.get("restore_from"):
            model.optimizer.build(model.trainable_variables)
            checkpoint.read(os.path.join(config["restore_from"], CHECKPOINT_PREFIX)).assert_consumed()
            with open(os.path.join(config["restore_from"], STATE_FILE)) as file:
                epoch = int(json.load(file)["epoch"])

    losses = []
    for _ in range(config["epochs"]):
        start = time.perf_counter()
        history = model.fit(batches(x_train, y_train, config["batch_size"], config["seed"] * 100_003 + epoch),
                            epochs=epoch + 1, initial_epoch=epoch, verbose=0).history
        seconds = time.perf_counter() - start
        epoch += 1
        losses.append(float(history["loss"][-1]))
        metrics = {"train/loss": losses[-1], "train/accuracy": float(history["accuracy"][-1])}
        if len(y_val):
            val = model.evaluate(batches(x_val, y_val, EVAL_BATCH_SIZE), verbose=0, return_dict=True)
            metrics.update({"val/loss": float(val["loss"]), "val/accuracy": float(val["accuracy"])})
        test = model.evaluate(batches(x_test, y_test, EVAL_BATCH_SIZE), verbose=0, return_dict=True)
        metrics.update({
            "test/loss": float(test["loss"]), "test/accuracy": float(test["accuracy"]),
            "charts/samples_per_sec": len(y_train) / seconds, "charts/seconds_per_epoch": seconds,
            "charts/epoch": epoch, "charts/replicas": strategy.num_replicas_in_sync,
        })
        folder = tempfile.mkdtemp(prefix=f"lab-mwms-rank{rank}-")
        checkpoint.write(os.path.join(folder, CHECKPOINT_PREFIX))  # every rank: a collective under MWMS
        with open(os.path.join(folder, STATE_FILE), "w") as file:
            json.dump({"epoch": epoch}, file)
        try:
            report(metrics, folder if rank == 0 else None)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if config.get("rank_log_dir") and os.path.isdir(config["rank_log_dir"]):  # evidence that every rank trained
        with open(os.path.join(config["rank_log_dir"], f"rank-{rank}.json"), "w") as file:
            json.dump({"rank": rank, "world_size": world_size, "epoch": epoch, "losses": losses,
                       "examples": int(len(y_train))}, file)


def ray_train_loop(config: dict) -> None:
    """The `train_loop_per_worker` of the TensorflowTrainer."""
    import ray.train

    context = ray.train.get_context()

    def report(metrics: dict, folder: str | None) -> None:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder) if folder else None)

    train_worker(config, context.get_world_rank(), context.get_world_size(), report)


# ---------------------------------------------------------------- the workload
class KerasMultiWorker(Workload):
    """The MLP trained data-parallel by a Ray Train TensorflowTrainer; one step = one trainer.fit()."""

    name = "keras_multiworker"
    test_params = {"num_workers": 0, "subset": 300, "hidden_units": [32], "max_epochs": 2, "validation_split": 0.1}

    @dataclass
    class Config:
        dataset: str = "fashion_mnist"  # fashion_mnist, mnist or digits (imagesets.DATASETS)
        hidden_units: tuple[int, ...] = (300, 100)  # the MLP's hidden Dense layers (ReLU)
        dropout: float = 0.2  # dropout after each hidden layer
        learning_rate: float = 1e-3  # Adam
        batch_size: int = 128  # GLOBAL batch size: each of N workers computes gradients on batch_size / N
        num_workers: int = 2  # Ray Train workers (0: train in the trial's process, no Ray Train)
        cpus_per_worker: float = 1.0  # CPUs Ray reserves for each worker
        epochs_per_step: int = 1  # epochs of one trainer.fit() (one Tune iteration)
        max_epochs: int = 10  # step() returns done=True once this many epochs are trained
        validation_split: float = 0.0833333  # stratified fraction of the training images held out
        subset: int = 0  # a stratified sample of this many training images (0: all)
        seed: int = 0  # weights, shuffling, validation split and subset

        def check(self) -> None:
            if self.dataset not in data.DATASETS:
                raise ValueError(f"unknown data set '{self.dataset}'{suggest(self.dataset, data.DATASETS)}")
            for name in ("learning_rate", "batch_size", "epochs_per_step", "max_epochs", "cpus_per_worker"):
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            if self.num_workers < 0 or self.subset < 0 or not 0 <= self.dropout < 1 or not 0 <= self.validation_split < 1:
                raise ValueError("num_workers and subset must be >= 0, dropout and validation_split in [0, 1)")
            if self.num_workers and self.batch_size % self.num_workers:
                raise ValueError(f"batch_size {self.batch_size} must be a multiple of num_workers {self.num_workers}")

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        names = {"train/loss", "train/accuracy", "test/loss", "test/accuracy", "charts/samples_per_sec",
                 "charts/seconds_per_epoch", "charts/epoch", "charts/replicas", "done"}
        return frozenset(names | ({"val/loss", "val/accuracy"} if config.validation_split > 0 else set()))

    def setup(self) -> None:
        self.epoch = 0
        self.latest = os.path.join(self.context.trial_dir, "latest-checkpoint")  # the last fit's checkpoint
        shutil.rmtree(self.latest, ignore_errors=True)

    def step(self) -> dict[str, Any]:
        c = self.config
        epochs = min(c.epochs_per_step, max(c.max_epochs - self.epoch, 1))
        loop_config = {**asdict(c), "hidden_units": list(c.hidden_units), "epochs": epochs,
                       "restore_from": self.latest if os.path.isdir(self.latest) else None,
                       "rank_log_dir": self.context.trial_dir}
        if c.num_workers == 0:
            metrics, folder = self._fit_here(loop_config)
        else:
            metrics, folder = self._fit_with_ray_train(loop_config)
        staging = self.latest + ".new"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging)
        shutil.rmtree(self.latest, ignore_errors=True)
        os.replace(staging, self.latest)
        self.close()  # the run's own folders: what matters now is `latest`
        self.epoch = int(metrics["charts/epoch"])
        return {**{k: float(v) for k, v in metrics.items() if "/" in k}, "done": self.epoch >= c.max_epochs}

    def _fit_here(self, loop_config: dict) -> tuple[dict, str]:
        reports: list[dict] = []
        keep = os.path.join(self.context.trial_dir, "fit-here")

        def report(metrics: dict, folder: str | None) -> None:
            reports.append(metrics)
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(folder, keep)

        train_worker(loop_config, 0, 1, report)
        return reports[-1], keep

    def _fit_with_ray_train(self, loop_config: dict) -> tuple[dict, str]:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer

        if not ray.is_initialized():  # outside Tune (a test, a notebook): a local Ray with the lab's settings
            from lab.infra.connect import connect

            connect(None)
        c = self.config
        storage = os.path.join(os.path.abspath(self.context.trial_dir), "ray-train")
        trainer = TensorflowTrainer(
            ray_train_loop,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(num_workers=c.num_workers, use_gpu=self.context.num_gpus > 0,
                                         resources_per_worker={"CPU": c.cpus_per_worker}),
            run_config=RunConfig(name=f"epoch-{self.epoch}", storage_path=storage),
        )
        result = trainer.fit()  # raises TrainingFailedError when a worker fails: the trial fails (and retries)
        if result.checkpoint is None:
            raise RuntimeError("the Ray Train run reported no checkpoint")
        return result.metrics, result.checkpoint.path

    def save(self, checkpoint_dir: str) -> None:
        shutil.copytree(self.latest, checkpoint_dir, dirs_exist_ok=True)

    def restore(self, checkpoint_dir: str) -> None:
        shutil.rmtree(self.latest, ignore_errors=True)
        shutil.copytree(checkpoint_dir, self.latest)
        with open(os.path.join(self.latest, STATE_FILE)) as file:
            self.epoch = int(json.load(file)["epoch"])

    def close(self) -> None:
        for name in ("ray-train", "fit-here"):
            shutil.rmtree(os.path.join(self.context.trial_dir, name), ignore_errors=True)

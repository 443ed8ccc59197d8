"""The one workload protocol (registered and found by `lab.workload.registry`).

A workload is one trainable thing (a scikit-learn pipeline, a Keras model, a TF-Agents agent).
It knows nothing of Ray or TensorBoard files: the Tune adapter (`lab.execution.trainable`) drives it.

    class MyWorkload(Workload):               # registered in pyproject.toml:
        name = "my_workload"                  # [project.entry-points."agent_lab.workloads"]
                                              # my_workload = "my_package.my_module:MyWorkload"

        @dataclass
        class Config:
            seed: int = 0
            learning_rate: float = 1e-3

        test_params = {"learning_rate": 1e-2}    # a tiny run for the conformance test

        def setup(self): ...                      # heavy work: data, model
        def step(self) -> dict[str, float]: ...   # one unit of training, flat namespaced metrics
        def save(self, checkpoint_dir): ...
        def restore(self, checkpoint_dir): ...
        def export(self, out_dir) -> str: ...     # optional: the model in a portable format (`lab export`)
        @classmethod
        def load_exported(cls, path): ...         # optional: what export wrote, loaded (lab.workload.testing checks it)
        @classmethod
        def metric_names(cls, config): ...        # the keys step() reports (specs and lab.workload.testing check them)

Workloads are found through the `agent_lab.workloads` entry points (`lab.plugins`): `get(name)`
imports only that workload's module, `discover()` all of them. Workload modules must not import
TensorFlow or Ray at module level (import them inside `setup`), so that specs validate, and the CLI
starts, without paying for those imports.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from lab.errors import LabError
from lab.workload.config import build_dataclass


@dataclasses.dataclass
class TrialContext:
    """What the adapter gives a workload: where to write, how to log media, which devices it has."""

    trial_dir: str
    trial_id: str = "local"
    num_gpus: float = 0.0
    logger: Any = None  # lab.workload.tboard.MediaLogger: .image(tag, array), .text(tag, str), .figure(tag, fig)
    policy_only: bool = False  # rebuilt only to export or evaluate its model (`lab export`, `lab eval`): an RL
    #   workload then builds its policy and networks, not its replay buffer or training machinery


class Workload:
    """Base class of every workload; subclasses set `name` and `Config` and override the methods."""

    name: ClassVar[str]
    Config: ClassVar[type]
    test_params: ClassVar[dict[str, Any]] = {}  # a tiny run (seconds) for the conformance test

    def __init__(self, config: Any, context: TrialContext):
        self.config = config
        self.context = context

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Validate a plain dict into `Config`; raise SpecError naming the first problem."""
        return build_dataclass(cls.Config, params, owner=f"workload '{cls.name}'")

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The params as they should be recorded (called once, after validation, when a spec is loaded):
        e.g. a data file by its absolute path and content hash, so a rerun or resume means the same data."""
        return params

    @classmethod
    def searchable_params(cls, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Parameters beyond `Config` that `params` may also set, grouped ({group: {name: default}}):
        e.g. a scikit-learn pipeline's `step__param` names by step (`lab params` lists them)."""
        return {}

    @classmethod
    def metric_names(cls, config: Any) -> frozenset[str] | None:
        """The metric keys `step()` reports under `config` (before `setup`); None: not declared.

        Specs are checked against it: a `metric`, `stop` key or scheduler metric outside it is refused
        before anything runs. The conformance suite checks it against a real `step()`.
        """
        return None

    def setup(self) -> None:
        """Load data, build models. Called once, in the trial's process."""

    def step(self) -> dict[str, Any]:
        """Train one unit (an epoch, N env steps, one CV run); return flat namespaced metrics.

        Keys look like `eval/average_return`, `train/loss`, `charts/sps`. Return `done: True` once
        the workload's own budget is spent.
        """
        raise NotImplementedError

    def save(self, checkpoint_dir: str) -> None:
        """Write everything needed to resume into `checkpoint_dir` (no pickle)."""
        raise NotImplementedError

    def restore(self, checkpoint_dir: str) -> None:
        """Load the state written by `save`."""
        raise NotImplementedError

    def export(self, out_dir: str) -> str:
        """Write the trained model in a portable, safe format under `out_dir`; return the written path.

        Optional (`lab export`): scikit-learn -> skops, Keras -> `.keras`, TF-Agents -> PolicySaver.
        """
        raise LabError(f"workload '{self.name}' cannot export its model")

    @classmethod
    def load_exported(cls, path: str) -> Any:
        """Load what `export` wrote at `path` (the conformance suite loads it in a fresh process)."""
        raise LabError(f"workload '{cls.name}' cannot load an exported model")

    def close(self) -> None:
        """Release resources (environments, sessions)."""



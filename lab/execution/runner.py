"""Run an experiment spec as a Ray Tune experiment and record it in the registry.

Ray is started locally unless an address is given. Everything is checked (registry reachable,
cluster reachable, resources available) before the experiment is written to the registry.
"""
from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import settings
from lab.errors import ClusterError, LabError
from lab.infra.connect import connect
from lab.registry import Registry, now
from lab.execution.logs import one_line_error, tune_logs_to_file, write_experiment_log
from lab.execution.tracking import check_mlflow, mlflow_callbacks
from lab.spec.model import ExperimentSpec

FINISHED = ("TERMINATED", "ERROR")


@dataclass
class Outcome:
    """What one run produced: the registry id, its final status and the best trial (if any)."""

    experiment_id: int
    name: str
    status: str
    num_trials: int
    num_errors: int
    best: dict[str, Any] | None
    storage_path: str


def check_resources(spec: ExperimentSpec) -> None:
    """Fail fast when no node could ever run a trial (Tune would leave it PENDING forever)."""
    import ray

    available = ray.cluster_resources()
    for name, key in (("cpu", "CPU"), ("gpu", "GPU")):
        wanted = getattr(spec.resources, name)
        have = available.get(key, 0.0)
        if wanted > have:
            raise ClusterError(
                f"experiment '{spec.name}' asks for {wanted:g} {name.upper()}(s) per trial "
                f"but the Ray cluster has {have:g}"
            )


# ------------------------------------------------------------------ Tune objects
def param_space(spec: ExperimentSpec) -> dict[str, Any]:
    from lab.execution import search

    return search.param_space(spec)


def scheduler(spec: ExperimentSpec):
    from lab.execution import search

    return search.scheduler(spec)


def trainable(spec: ExperimentSpec):
    from ray import tune

    from lab.execution.trainable import WorkloadTrainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(WorkloadTrainable, workload=spec.workload), resources)


def make_tuner(spec: ExperimentSpec, experiment_id: int, registry: Registry | str, folder: str,
               verbose: bool = False):
    """The Tuner of one experiment; `folder` is its storage location (a path or a URI, see lab.infra.storage);
    `registry` (or its URL) receives the trials (its password is not kept in what Tune pickles)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from lab.infra import storage
    from lab.execution import search
    from lab.execution.callbacks import RegistryCallback
    from lab.execution.progress import ProgressCallback

    stop = dict(spec.stop)
    where = storage.resolve(folder)
    run_config = tune.RunConfig(
        name=where.path.rstrip("/").rsplit("/", 1)[-1],
        storage_path=where.path.rstrip("/").rsplit("/", 1)[0],
        storage_filesystem=where.filesystem,
        # remote storage: TensorBoard files are written in the trial's working folder (lab.execution.trainable), synced
        sync_config=tune.SyncConfig(sync_artifacts=not where.is_local),
        stop=stop or None,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2 if spec.scheduler.type != "pbt" else 4,  # PBT exploits other trials' checkpoints
            checkpoint_frequency=spec.checkpoint_every,
            checkpoint_at_end=True,
        ),
        callbacks=[
            RegistryCallback(registry, experiment_id, spec.metric, spec.mode,
                             uri_scheme=None if where.is_local else where.scheme),
            CSVLoggerCallback(),
            JsonLoggerCallback(),
            *mlflow_callbacks(spec, experiment_id),
            *([] if verbose else [ProgressCallback(spec.metric, spec.mode)]),
        ],
        verbose=1 if verbose else 0,
    )
    tune_config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        num_samples=spec.num_samples,
        scheduler=scheduler(spec),
        search_alg=search.searcher(spec),
        time_budget_s=spec.time_budget_s or None,
        reuse_actors=True,
        trial_name_creator=lambda trial: f"{spec.workload}_{trial.trial_id}",
        trial_dirname_creator=lambda trial: f"{spec.workload}_{trial.trial_id}",
    )
    return tune.Tuner(trainable(spec), param_space=param_space(spec), tune_config=tune_config, run_config=run_config)


# ------------------------------------------------------------------ runs
def run(spec: ExperimentSpec, address: str | None = None, registry: Registry | None = None,
        verbose: bool = False) -> Outcome:
    """Run one experiment to its end (or Ctrl-C) and return its outcome; `verbose`: Tune's tables and logs."""
    from lab.infra import storage as storages
    from lab.results import environment
    from lab.execution import profile
    from lab.spec import as_runnable

    spec = as_runnable(spec)  # checked once: a spec made by lab.spec's one way in is not checked again
    profile.mark("run")
    registry = registry or Registry()
    registry.check()
    storage = storages.resolve(spec.storage or settings.storage_path(), "the spec" if spec.storage else "LAB_STORAGE")
    if storage.is_local and settings.lab_home().absolute() in Path(storage.path).absolute().parents:
        settings.private_dir()  # the default storage: inside a 0700 LAB_HOME
    storage.check_writable()
    storages.remember_root(storage)  # the user chose it: its experiments may be resumed and removed later
    check_mlflow(spec)
    connect(address, verbose=verbose)
    profile.mark("connected")
    check_resources(spec)
    env_record, diff = environment.record()
    experiment_id = registry.create_experiment(
        spec.to_dict(), user=_user(), host=socket.gethostname(), git_commit=env_record["git_commit"],
        environment=env_record,
    )
    identity = registry.experiment(experiment_id)["uuid"]
    where = storage.join(f"{spec.name}-{experiment_id}-{identity.replace('-', '')[:12]}")  # unique across registries and time
    folder = where.uri
    try:
        storages.claim(where, storages.marker_of(experiment_id, identity, spec.name))
    except (LabError, OSError) as exc:
        message = str(exc) if isinstance(exc, LabError) else f"cannot create {folder}: {exc.strerror or exc}"
        registry.update_experiment(experiment_id, status="failed", ended_at=now(), error=message)
        raise LabError(message) from None
    registry.update_experiment(experiment_id, storage_path=folder)
    environment.save_diff(where, diff)
    tuner = make_tuner(spec, experiment_id, registry, folder, verbose=verbose)
    return _fit(tuner, experiment_id, spec, registry, folder, verbose)


def resume(experiment_id: int, address: str | None = None, registry: Registry | None = None,
           verbose: bool = False, trust: bool = False) -> Outcome:
    """Continue an interrupted experiment from its Tune state; finished trials are not rerun.

    Tune unpickles what the folder holds (tuner.pkl, experiment_state-*.json), so before Ray is even
    started the registry's storage_path must lie under the configured storage root, carry this
    experiment's marker and, on local storage, be a tree only this user can write; remote storage (which
    the lab cannot check) needs `trust`. Its recorded spec goes first through the one way in
    (`lab.spec.runnable`): a data file that changed, a row someone edited, fail as they would for `lab rerun`.
    It is trusted with the services it names: resume uses those its own Tune state holds, checked below."""
    from lab.infra import storage
    from lab.results.provenance import check_owned
    from lab.spec import Source, runnable

    registry = registry or Registry()
    record = registry.experiment(experiment_id)
    spec = runnable(record["spec"], Source.recorded(experiment_id, trusted=True))
    if not record["storage_path"]:
        raise LabError(f"experiment {experiment_id} has no resumable Tune state (no storage folder recorded)")
    where = storage.recorded(record["storage_path"], f"experiment {experiment_id}'s storage folder")
    if where.is_local:
        check_owned(where.path)
    elif not trust:
        raise LabError(f"experiment {experiment_id} is on remote storage ({where.uri}), where the lab cannot see who "
                       "wrote its files and Tune unpickles them: pass --trust if you trust everyone who can write there")
    storage.check_marker(where, record)
    folder = where.uri
    connect(address, verbose=verbose)  # before importing Ray: it sets RAY_AUTH_MODE for token clusters, read at import
    from ray import tune

    if not tune.Tuner.can_restore(where.path, storage_filesystem=where.filesystem):
        raise LabError(f"experiment {experiment_id} has no resumable Tune state at {folder}")
    tuner = tune.Tuner.restore(where.path, trainable=trainable(spec), resume_unfinished=True, resume_errored=True,
                               storage_filesystem=where.filesystem)
    from lab.registry import now

    registry.update_experiment(experiment_id, status="running", ended_at=None, heartbeat_at=now())
    return _fit(tuner, experiment_id, spec, registry, folder, verbose, resuming=True)


def _fit(tuner, experiment_id: int, spec: ExperimentSpec, registry: Registry, folder: str,
         verbose: bool = False, resuming: bool = False) -> Outcome:
    from lab.errors import RegistryError
    from lab.execution import profile, tune_fixes
    from lab.execution.catchup import catch_up

    profile.mark("fit")
    error = None
    try:
        with tune_logs_to_file(experiment_id, enabled=not verbose), tune_fixes.applied(resuming=resuming):
            tuner.fit()
    except KeyboardInterrupt:
        pass  # Tune saved the experiment state: `lab resume ID` continues it
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as a one-line error
        log = write_experiment_log(experiment_id, exc)
        error = f"{one_line_error(exc)} (traceback: {log})"
    profile.mark("fit_done")
    try:
        catch_up(registry, experiment_id, folder, spec.metric, spec.mode)  # what the callback could not write
        return _record_end(experiment_id, spec.name, registry, folder, error, expected_trials(spec))
    except RegistryError as exc:
        raise LabError(f"experiment {experiment_id} ran, but the registry cannot record its end "
                       f"({str(exc).splitlines()[0]}): `lab resume {experiment_id}` records it once the database "
                       "is back") from None


def expected_trials(spec: ExperimentSpec) -> int | None:
    """How many trials the search makes (num_samples times every grid point); None under a time budget,
    which may end the experiment before all of them exist."""
    if spec.time_budget_s:
        return None
    points = 1
    for space in spec.search.values():
        if isinstance(space, dict) and isinstance(space.get("grid"), list):
            points *= len(space["grid"])
    return spec.num_samples * points


def _record_end(experiment_id: int, name: str, registry: Registry, folder: str, error: str | None,
                expected: int | None = None) -> Outcome:
    from lab.registry import now

    trials = registry.trials(experiment_id)
    errors = sum(t["status"] == "ERROR" for t in trials)
    unfinished = [t for t in trials if t["status"] not in FINISHED]
    if error:
        status = "failed"
    elif unfinished or not trials or (expected is not None and len(trials) < expected):
        # (Tune makes a search's trials as it runs them: Ctrl-C may leave some never made, none unfinished)
        status = "interrupted"
    elif errors == len(trials):
        status = "failed"
    else:
        status = "completed"
    registry.update_experiment(experiment_id, status=status, ended_at=now(), error=error)
    if error:
        raise LabError(f"experiment {experiment_id} failed: {error}")
    return Outcome(
        experiment_id=experiment_id,
        name=name,
        status=status,
        num_trials=len(trials),
        num_errors=errors,
        best=registry.best_trial(experiment_id),
        storage_path=folder,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid())


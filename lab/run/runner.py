"""Run an experiment spec as a Ray Tune experiment and record it in the registry.

Ray is started locally unless an address is given. Everything is checked (registry reachable,
cluster reachable, resources available) before the experiment is written to the registry.
"""
from __future__ import annotations

import contextlib

import getpass
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import settings
from lab.errors import ClusterError, LabError
from lab.registry import Registry
from lab.spec import ExperimentSpec

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


# ------------------------------------------------------------------ Ray
def connect(address: str | None, num_cpus: int | None = None, verbose: bool = False) -> None:
    """Join a cluster (an address), else the warm instance of `lab up`, else start Ray locally.

    ClusterError if it cannot be reached. Worker output reaches the console only when `verbose`.
    A local instance answers only on loopback, with token authentication (lab.infra.local_ray).
    """
    from lab.infra import local_ray

    settings.apply_worker_env()
    imported_before = "ray" in sys.modules  # a notebook, a test: Ray read its auth settings back then
    address = address or os.environ.get("LAB_RAY_ADDRESS") or None
    warm_instance = None
    if not address and not _ray_initialized():
        from lab.infra import warm

        warm_instance = warm.usable()
    if warm_instance is not None:
        os.environ.update(warm_instance.client_env())  # its own token; read when Ray is imported
    elif address and "RAY_AUTH_MODE" not in os.environ and _has_ray_token():
        os.environ["RAY_AUTH_MODE"] = "token"  # clusters from `ray start` want the token; read at import
    local = not address and warm_instance is None  # this driver starts its own instance
    if not address:
        local_ray.prepare_environment()  # before `import ray`: loopback listeners, token auth
    import ray

    if ray.is_initialized():
        return
    if imported_before:
        local_ray.reload_auth_settings()  # the token of this instance, not the one of an earlier session
    if local:
        local_ray.stop_dead_instances()  # what a driver killed earlier (SIGKILL) left running
        local_ray.mark_instance()
    runtime_env = {"env_vars": settings.worker_env()}
    if address and address != "auto":
        _check_reachable(address)
    try:
        if warm_instance is not None:
            # the warm workers belong to no job and have no runtime env: a job with one would start cold
            # workers; the instance's workers got the lab's environment from `lab up`
            same_env = warm_instance.worker_env == settings.worker_env()
            ray.init(address=warm_instance.address, runtime_env=None if same_env else runtime_env,
                     log_to_driver=verbose, logging_level="ERROR")
        elif address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=verbose, logging_level="ERROR")
        else:
            ray.init(runtime_env=runtime_env, log_to_driver=verbose,
                     **local_ray.ray_init_kwargs(num_cpus=num_cpus))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ClusterError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}") from None
    from lab.infra import signals

    if local:
        local_ray.record_processes()
    signals.terminate_like_ctrl_c()  # after ray.init, which installs its own SIGTERM handler


def _ray_initialized() -> bool:
    import sys

    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray retries an unreachable address for minutes: try a TCP connection first."""
    import socket

    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Ray address must look like HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _has_ray_token() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").exists())


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
    from lab.run import search

    return search.param_space(spec)


def scheduler(spec: ExperimentSpec):
    from lab.run import search

    return search.scheduler(spec)


def trainable(spec: ExperimentSpec):
    from ray import tune

    from lab.run.trainable import WorkloadTrainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(WorkloadTrainable, workload=spec.workload), resources)


def make_tuner(spec: ExperimentSpec, experiment_id: int, registry: Registry | str, folder: str,
               verbose: bool = False):
    """The Tuner of one experiment; `folder` is its storage location (a path or a URI, see lab.infra.storage);
    `registry` (or its URL) receives the trials (its password is not kept in what Tune pickles)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from lab.run import search

    from lab.infra import storage

    from lab.run import tune_fixes
    from lab.run.callbacks import RegistryCallback
    from lab.run.progress import ProgressCallback

    tune_fixes.apply()
    stop = dict(spec.stop)
    where = storage.resolve(folder)
    run_config = tune.RunConfig(
        name=where.path.rstrip("/").rsplit("/", 1)[-1],
        storage_path=where.path.rstrip("/").rsplit("/", 1)[0],
        storage_filesystem=where.filesystem,
        # remote storage: TensorBoard files are written in the trial's working folder (lab.run.trainable), synced
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
            *_mlflow_callbacks(spec, experiment_id),
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
    from lab.run import environment
    from lab.run import profile
    from lab.infra import storage as storages

    from lab.spec.metrics import check_metrics

    check_metrics(spec)  # a metric no trial reports would fail inside Tune, after the experiment is recorded
    profile.mark("run")
    registry = registry or Registry()
    registry.check()
    storage = storages.resolve(spec.storage or settings.storage_path(), "the spec" if spec.storage else "LAB_STORAGE")
    storage.check_writable()
    _check_mlflow(spec)
    connect(address, verbose=verbose)
    profile.mark("connected")
    check_resources(spec)
    env_record, diff = environment.record()
    experiment_id = registry.create_experiment(
        spec.to_dict(), user=_user(), host=socket.gethostname(), git_commit=env_record["git_commit"],
        environment=env_record,
    )
    where = storage.join(f"{spec.name}-{experiment_id}")
    folder = where.uri
    registry.update_experiment(experiment_id, storage_path=folder)
    environment.save_diff(where, diff)
    tuner = make_tuner(spec, experiment_id, registry, folder, verbose=verbose)
    return _fit(tuner, experiment_id, spec, registry, folder, verbose)


def resume(experiment_id: int, address: str | None = None, registry: Registry | None = None,
           verbose: bool = False) -> Outcome:
    """Continue an interrupted experiment from its Tune state; finished trials are not rerun."""
    registry = registry or Registry()
    record = registry.experiment(experiment_id)
    folder = record["storage_path"]
    if folder and "://" not in folder:  # Tune unpickles tuner.pkl: only from a folder nobody else could write
        from lab.results.provenance import check_owned

        check_owned(folder)
    connect(address, verbose=verbose)  # before importing Ray: it sets RAY_AUTH_MODE for token clusters, read at import
    from ray import tune

    from lab.infra import storage

    from lab.run import tune_fixes

    where = storage.resolve(folder) if folder else None
    if not where or not tune.Tuner.can_restore(where.path, storage_filesystem=where.filesystem):
        raise LabError(f"experiment {experiment_id} has no resumable Tune state at {folder}")
    from lab.spec import build_spec

    spec = build_spec(record["spec"], f"experiment {experiment_id}")
    tune_fixes.apply()
    tuner = tune.Tuner.restore(where.path, trainable=trainable(spec), resume_unfinished=True, resume_errored=True,
                               storage_filesystem=where.filesystem)
    from lab.registry import now

    registry.update_experiment(experiment_id, status="running", ended_at=None, heartbeat_at=now())
    return _fit(tuner, experiment_id, spec, registry, folder, verbose)


def _fit(tuner, experiment_id: int, spec: ExperimentSpec, registry: Registry, folder: str,
         verbose: bool = False) -> Outcome:
    from lab.run import profile
    from lab.run.catchup import catch_up
    from lab.errors import RegistryError

    profile.mark("fit")
    error = None
    try:
        with tune_logs_to_file(experiment_id, enabled=not verbose):
            tuner.fit()
    except KeyboardInterrupt:
        pass  # Tune saved the experiment state: `lab resume ID` continues it
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as a one-line error
        log = write_experiment_log(experiment_id, exc)
        error = f"{one_line_error(exc)} (traceback: {log})"
    profile.mark("fit_done")
    try:
        catch_up(registry, experiment_id, folder, spec.metric, spec.mode)  # what the callback could not write
        return _record_end(experiment_id, spec.name, registry, folder, error)
    except RegistryError as exc:
        raise LabError(f"experiment {experiment_id} ran, but the registry cannot record its end "
                       f"({str(exc).splitlines()[0]}): `lab resume {experiment_id}` records it once the database "
                       "is back") from None


def _record_end(experiment_id: int, name: str, registry: Registry, folder: str, error: str | None) -> Outcome:
    from lab.registry import now

    trials = registry.trials(experiment_id)
    errors = sum(t["status"] == "ERROR" for t in trials)
    unfinished = [t for t in trials if t["status"] not in FINISHED]
    if error:
        status = "failed"
    elif unfinished or not trials:
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


def experiment_log(experiment_id: int) -> Path:
    """The driver-side log of an experiment: full tracebacks of what the console shows as one line."""
    return settings.lab_home() / "logs" / f"experiment-{experiment_id}.log"


@contextlib.contextmanager
def tune_logs_to_file(experiment_id: int, enabled: bool = True):
    """Tune's own log records (a failed trial's traceback among them, and Train's storage errors, such as an
    old checkpoint it could not prune) go to the experiment's log file, not the console: the user sees the
    compact progress lines and `lab show` the trial's one-line error."""
    import logging

    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    path = experiment_log(experiment_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path)
    except OSError:  # no room for the log either: the records are dropped, the run goes on
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    propagates = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, propagates):
            logger.propagate = propagate
            logger.removeHandler(handler)
        handler.close()


def write_experiment_log(experiment_id: int, exc: BaseException) -> Path:
    """Append `exc` with its full traceback to the experiment's log; return the log's path."""
    import datetime as dt
    import traceback

    path = experiment_log(experiment_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat()} experiment {experiment_id}\n")
            handle.write("".join(traceback.format_exception(exc)))
    except OSError:
        pass  # the log is a courtesy: the one-line error still reaches the user
    return path


def one_line_error(exc: BaseException, max_chars: int = 300) -> str:
    """'Type: message' for an exception whose text may be a whole traceback (Tune wraps errors that way):
    the innermost error's last line then."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not text and exc.__cause__ is not None:
        return one_line_error(exc.__cause__)
    line = text[-1] if text and text[0].startswith("Traceback") else (
        f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)
    return line if len(line) <= max_chars else line[: max_chars - 3] + "..."


def mlflow_uri(spec: ExperimentSpec) -> str:
    """The MLflow tracking URI of a run: the spec's `mlflow`, else $LAB_MLFLOW_URI, else '' (none).

    A URI with a credential in it is refused (its login comes from MLFLOW_TRACKING_USERNAME/PASSWORD or
    MLFLOW_TRACKING_TOKEN, read by MLflow in the process that logs, never stored with the run)."""
    from lab.spec.safety import check_location

    uri = spec.mlflow or settings.mlflow_uri()
    check_location(uri, "MLflow", "the spec" if spec.mlflow else "LAB_MLFLOW_URI")
    return uri


def _check_mlflow(spec: ExperimentSpec) -> None:
    """MLflow installed and its tracking store readable, before anything is recorded."""
    uri = mlflow_uri(spec)
    if not uri:
        return
    from lab.spec import installed

    if not installed("mlflow"):
        raise LabError("--mlflow / LAB_MLFLOW_URI needs mlflow: pip install 'agent-lab[mlflow]'")
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store (MLflow 3 keeps it in maintenance)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MlflowException, OSError, requests' errors
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabError(f"MLflow tracking at {_redact(uri)} cannot be used: {line}") from None


def _mlflow_callbacks(spec: ExperimentSpec, experiment_id: int) -> list:
    """Ray's MLflowLoggerCallback (one MLflow run per trial, in an MLflow experiment named after the spec)."""
    uri = mlflow_uri(spec)
    if not uri:
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return [MLflowLoggerCallback(
        tracking_uri=uri,
        experiment_name=spec.name,
        tags={"lab.experiment_id": str(experiment_id), "lab.workload": spec.workload},
        # PBT changes a trial's config mid-run, and MLflow refuses to change a logged param
        log_params_on_trial_end=spec.scheduler.type == "pbt",
    )]


def _redact(uri: str) -> str:
    """A URI without the password of user:password@host."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        creds, _, host = rest.partition("@")
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return uri


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid())


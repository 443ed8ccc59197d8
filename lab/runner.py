"""Run an experiment spec as a Ray Tune experiment and record it in the registry.

Ray is started locally unless an address is given. Everything is checked (registry reachable,
cluster reachable, resources available) before the experiment is written to the registry.
"""
from __future__ import annotations

import getpass
import os
import socket
import subprocess
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
def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Start Ray locally (no address) or join a cluster; ClusterError if it cannot be reached."""
    settings.apply_worker_env()
    address = address or os.environ.get("LAB_RAY_ADDRESS") or None
    if address and "RAY_AUTH_MODE" not in os.environ and _has_ray_token():
        os.environ["RAY_AUTH_MODE"] = "token"  # clusters from `ray start` want the token; read at import
    import ray

    if ray.is_initialized():
        return
    runtime_env = {"env_vars": settings.worker_env()}
    if address and address != "auto":
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True, logging_level="ERROR")
        else:
            ray.init(
                num_cpus=num_cpus,
                runtime_env=runtime_env,
                include_dashboard=False,
                dashboard_host="127.0.0.1",
                logging_level="ERROR",
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ClusterError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}") from None


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
    from ray import tune

    makers = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda a: tune.uniform(*a),
        "loguniform": lambda a: tune.loguniform(*a),
        "randint": lambda a: tune.randint(*a),
    }
    space = dict(spec.trial_params)
    for key, dist in spec.search.items():
        (kind, args), = dist.items()
        space[key] = makers[kind](args)
    return space


def scheduler(spec: ExperimentSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler.type == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.scheduler.max_t,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor,
        )
    return FIFOScheduler()


def trainable(spec: ExperimentSpec):
    from ray import tune

    from lab.trainable import WorkloadTrainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(WorkloadTrainable, workload=spec.workload), resources)


def make_tuner(spec: ExperimentSpec, experiment_id: int, registry_url: str, folder: str):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from lab.callbacks import RegistryCallback

    stop = dict(spec.stop)
    run_config = tune.RunConfig(
        name=Path(folder).name,
        storage_path=str(Path(folder).parent),
        stop=stop or None,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2,
            checkpoint_frequency=spec.checkpoint_every,
            checkpoint_at_end=True,
        ),
        callbacks=[
            RegistryCallback(registry_url, experiment_id, spec.metric, spec.mode),
            CSVLoggerCallback(),
            JsonLoggerCallback(),
        ],
        verbose=1,
    )
    tune_config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        num_samples=spec.num_samples,
        scheduler=scheduler(spec),
        search_alg=BasicVariantGenerator(random_state=spec.seed),
        time_budget_s=spec.time_budget_s or None,
        reuse_actors=True,
        trial_name_creator=lambda trial: f"{spec.workload}_{trial.trial_id}",
        trial_dirname_creator=lambda trial: f"{spec.workload}_{trial.trial_id}",
    )
    return tune.Tuner(trainable(spec), param_space=param_space(spec), tune_config=tune_config, run_config=run_config)


# ------------------------------------------------------------------ runs
def run(spec: ExperimentSpec, address: str | None = None, registry: Registry | None = None) -> Outcome:
    """Run one experiment to its end (or Ctrl-C) and return its outcome."""
    registry = registry or Registry()
    registry.check()
    connect(address)
    check_resources(spec)
    storage = settings.storage_path()
    _check_writable(storage)
    experiment_id = registry.create_experiment(
        spec.to_dict(), user=_user(), host=socket.gethostname(), git_commit=_git_commit()
    )
    folder = os.path.join(storage, f"{spec.name}-{experiment_id}")
    registry.update_experiment(experiment_id, storage_path=folder)
    tuner = make_tuner(spec, experiment_id, registry.url, folder)
    return _fit(tuner, experiment_id, spec.name, registry, folder)


def resume(experiment_id: int, address: str | None = None, registry: Registry | None = None) -> Outcome:
    """Continue an interrupted experiment from its Tune state; finished trials are not rerun."""
    from ray import tune

    registry = registry or Registry()
    record = registry.experiment(experiment_id)
    folder = record["storage_path"]
    connect(address)
    if not folder or not tune.Tuner.can_restore(folder):
        raise LabError(f"experiment {experiment_id} has no resumable Tune state at {folder}")
    from lab.spec import build_spec

    spec = build_spec(record["spec"], f"experiment {experiment_id}")
    tuner = tune.Tuner.restore(folder, trainable=trainable(spec), resume_unfinished=True, resume_errored=True)
    registry.update_experiment(experiment_id, status="running", ended_at=None)
    return _fit(tuner, experiment_id, spec.name, registry, folder)


def _fit(tuner, experiment_id: int, name: str, registry: Registry, folder: str) -> Outcome:
    from lab.registry import now

    error = None
    try:
        tuner.fit()
    except KeyboardInterrupt:
        pass  # Tune saved the experiment state: `lab resume ID` continues it
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as a one-line error
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
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


def _check_writable(path: str) -> None:
    if "://" in path:
        return  # a remote URI: pyarrow checks it when Tune first writes
    try:
        os.makedirs(path, exist_ok=True)
        probe = Path(path) / ".lab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise LabError(f"storage path {path} is not writable: {exc.strerror}") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid())


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,  # the lab's own source tree
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None

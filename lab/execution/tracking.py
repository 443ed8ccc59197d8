"""MLflow tracking of a run (optional): its URI checked, then Ray's MLflowLoggerCallback."""
from __future__ import annotations

import os

from lab import settings
from lab.errors import LabError
from lab.spec.model import ExperimentSpec


def mlflow_uri(spec: ExperimentSpec) -> str:
    """The MLflow tracking URI of a run: the spec's `mlflow`, else $LAB_MLFLOW_URI, else '' (none).

    A URI with a credential in it is refused (its login comes from MLFLOW_TRACKING_USERNAME/PASSWORD or
    MLFLOW_TRACKING_TOKEN, read by MLflow in the process that logs, never stored with the run)."""
    from lab.spec.safety import check_location

    uri = spec.mlflow or settings.mlflow_uri()
    check_location(uri, "MLflow", "the spec" if spec.mlflow else "LAB_MLFLOW_URI")
    return uri


def check_mlflow(spec: ExperimentSpec) -> None:
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


def mlflow_callbacks(spec: ExperimentSpec, experiment_id: int) -> list:
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

"""The lab's settings, all from the environment, with documented defaults.

- LAB_HOME: the lab's folder (default ~/.agent-lab): registry.db, experiments/, keras/. Private: the lab
  makes it (and the folders it makes inside) mode 0700, and its own files there (registry, logs, records,
  tokens) 0600 (`private_dir`, `private_file`).
- LAB_REGISTRY_URL: an SQLAlchemy URL for the registry (default sqlite:///$LAB_HOME/registry.db);
  point it at PostgreSQL to share one registry in a team.
- LAB_STORAGE: where Tune writes experiments (default $LAB_HOME/experiments): a path (local, NFS) or a URI
  (s3://bucket/prefix, gs://..., file://...); see lab/infra/storage.py. A spec's `storage` (or `--storage`) wins.
- LAB_MLFLOW_URI: also log every trial to this MLflow tracking URI (a spec's `mlflow` or `--mlflow` wins).
- LAB_RAY_ADDRESS: a Ray cluster to use instead of starting Ray locally (same as --address).
- LAB_RAY_TOKEN_HOSTS: hosts that may receive the user's Ray token (lab/infra/ray_tokens.py).
- LAB_RECORD_DIFF: "1" records the lab checkout's uncommitted diff as source.diff (lab/results/environment.py).
"""
from __future__ import annotations

import os
from pathlib import Path

# Settings every process of the lab needs before TensorFlow is imported, Ray workers included.
WORKER_ENV = {
    "TF_USE_LEGACY_KERAS": "1",  # TF-Agents needs Keras 2 (tf_keras); see docs/stack.md
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the lab writes its own TensorBoard records
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables; `lab run --verbose` shows the classic ones
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # fractional-GPU trials share a GPU without grabbing all its memory
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # relative paths (a CSV file) mean the same in trials as in `lab run`
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage reports from the lab's Ray instances
}


def lab_home() -> Path:
    return Path(os.environ.get("LAB_HOME") or Path.home() / ".agent-lab").expanduser()


def private_dir(path: Path | str | None = None) -> Path:
    """`path` (default LAB_HOME) as a folder only this user can enter: made with mode 0700 (LAB_HOME first
    when `path` is inside it), or, when it is already there and this user's, set to 0700."""
    home = lab_home()
    folder = Path(path) if path is not None else home
    if folder != home and home in folder.parents:
        private_dir(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def private_file(path: Path | str, text: str | None = None) -> Path:
    """Create (or open) the file `path` with mode 0600, never through a symbolic link; write `text` when given
    (replacing what was there). Its folder is made private first."""
    path = Path(path)
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags | (os.O_TRUNC if text is not None else 0), 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(descriptor, 0o600)
        if text is not None:
            handle.write(text)
    return path


def registry_url() -> str:
    return os.environ.get("LAB_REGISTRY_URL") or f"sqlite:///{lab_home() / 'registry.db'}"


def storage_path() -> str:
    return os.environ.get("LAB_STORAGE") or str(lab_home() / "experiments")


def mlflow_uri() -> str:
    return os.environ.get("LAB_MLFLOW_URI", "")


def worker_env() -> dict[str, str]:
    """Environment variables shipped to every Ray worker (the lab's settings included)."""
    env = dict(WORKER_ENV)
    env["LAB_HOME"] = str(lab_home())
    env["KERAS_HOME"] = os.environ.get("KERAS_HOME") or str(lab_home() / "keras")
    for name in ("LAB_DATA_DIR",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def apply_worker_env() -> None:
    """Set the worker environment in this process (before TensorFlow is imported)."""
    for key, value in worker_env().items():
        os.environ.setdefault(key, value)

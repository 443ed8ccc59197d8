"""`lab submit`: run an experiment as a Ray job on a cluster, through its dashboard's job API.

The spec is resolved here (preset < YAML < --set, validated: bad input fails before anything is sent)
and written as plain spec files into a small folder that travels as the job's `runtime_env.working_dir`;
the job's entrypoint is `lab run spec-0.yaml --address auto` on the head node. The lab itself is NOT
shipped: it must be installed on the nodes (the cluster image, or the venv on PATH for
cluster/local_cluster.sh), like TensorFlow and Ray, which are far too big to upload per job.

The lab's settings (LAB_REGISTRY_URL, LAB_STORAGE, LAB_HOME, LAB_DATA_DIR) that are set here are
passed to the job as `runtime_env.env_vars`, the registry URL WITHOUT its password (the dashboard
shows a job's runtime_env to whoever can reach it): the head node needs the password itself, in its
own environment (PGPASSWORD, ~/.pgpass or its LAB_REGISTRY_URL). No credential travels with a job.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml

from lab import settings
from lab.errors import ClusterError, one_line

PASSED_SETTINGS = ("LAB_REGISTRY_URL", "LAB_STORAGE", "LAB_HOME", "LAB_DATA_DIR")
FINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def submit(source: str, overrides: list[str], address: str, wait: bool = False, out=print,
           trust_spec: bool = False) -> int:
    """Submit `lab run` of the resolved spec(s) as a Ray job; print its id. With `wait`, follow its
    logs and return its exit status; else return 0 once it is accepted."""
    from lab import spec as specs

    experiment_specs = specs.load(source, overrides, trust_spec)  # SpecError here: nothing is sent
    client = _client(address)
    with tempfile.TemporaryDirectory(prefix="lab-job-") as folder:
        commands = []
        for i, spec in enumerate(experiment_specs):
            name = f"spec-{i}.yaml"
            (Path(folder) / name).write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
            commands.append(f"lab run {shlex.quote(name)} --address auto --trust-spec")  # confirmed here
        runtime_env = {"working_dir": folder, "env_vars": job_env()}
        metadata = {"lab.source": source, "lab.specs": ",".join(s.name for s in experiment_specs)}
        deadline = time.monotonic() + 60
        while True:
            try:
                job_id = client.submit_job(entrypoint=" && ".join(commands), runtime_env=runtime_env, metadata=metadata)
                break
            except Exception as exc:  # noqa: BLE001 - the dashboard's error, as one line
                if "No available agent" in str(exc) and time.monotonic() < deadline:
                    time.sleep(2)  # a freshly started head: its job agent is not up yet
                    continue
                raise ClusterError(f"the Ray job API at {address} refused the job: {one_line(exc)}") from None
    out(f"submitted Ray job {job_id} to {address}: {', '.join(s.name for s in experiment_specs)}")
    if not wait:
        out(f"follow it with: ray job logs --address {address} --follow {job_id}")
        return 0
    return follow(client, job_id, out=out)


def follow(client, job_id: str, out=print) -> int:
    """Print the job's logs as they come; return its entrypoint's exit status (1 if unknown)."""
    import asyncio

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            out(lines.rstrip("\n"))

    try:
        asyncio.run(tail())
    except Exception:  # noqa: BLE001, S110 - the log stream broke: fall back to polling the status
        pass
    while (status := str(client.get_job_status(job_id))) not in FINAL:
        time.sleep(1)
    info = client.get_job_info(job_id)
    code = getattr(info, "driver_exit_code", None)
    out(f"Ray job {job_id}: {status}" + (f" (exit status {code})" if code is not None else ""))
    if status == "SUCCEEDED":
        return 0
    return int(code) if code not in (None, 0) else 1


def job_env() -> dict[str, str]:
    """The environment of the job: the lab's worker settings and the LAB_* settings set here."""
    # `lab run` in the job calls ray.init(runtime_env=...) with the worker settings: let Ray merge the two
    env = {**settings.WORKER_ENV, "RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}
    env.update({name: os.environ[name] for name in PASSED_SETTINGS if os.environ.get(name)})
    if "LAB_REGISTRY_URL" in env:  # the dashboard shows a job's env to whoever reaches it: no password there
        from lab.registry import public_url

        env["LAB_REGISTRY_URL"] = public_url(env["LAB_REGISTRY_URL"])
    return env


def _client(address: str):
    """A JobSubmissionClient for `http://HOST:PORT`; ClusterError (one line) when it cannot be reached."""
    url = urlparse(address if "://" in address else f"http://{address}")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ClusterError(f"the job API address must look like http://HOST:8265, got {address!r}")
    port = url.port or (443 if url.scheme == "https" else 8265)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray dashboard at {address}: {exc.strerror or exc}") from None
    from lab.infra import ray_tokens

    ray_tokens.apply_cluster_auth(address)  # the user's token only to a cluster it is for
    if "ray" in sys.modules:  # a notebook, a test: Ray read its auth settings before
        from lab.infra.local_ray import reload_auth_settings

        reload_auth_settings()
    import logging

    from ray.job_submission import JobSubmissionClient

    for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk", "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no 'Uploading package ...' lines

    try:
        return JobSubmissionClient(f"{url.scheme}://{url.hostname}:{port}")
    except Exception as exc:  # noqa: BLE001 - e.g. not a Ray dashboard, or a version mismatch
        raise ClusterError(f"no Ray job API at {address}: {one_line(exc)}") from None

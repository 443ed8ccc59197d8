"""The driver's Ray connection: a cluster (an address), else the warm instance of `lab up`, else a local Ray."""
from __future__ import annotations

import os
import sys

from lab import settings
from lab.errors import ClusterError


# ------------------------------------------------------------------ Ray
def connect(address: str | None, num_cpus: int | None = None, verbose: bool = False) -> None:
    """Join a cluster (an address), else the warm instance of `lab up`, else start Ray locally.

    ClusterError if it cannot be reached. Worker output reaches the console only when `verbose`.
    A local instance answers only on loopback, with token authentication (lab.infra.local_ray).
    """
    from lab.infra import local_ray, ray_tokens

    settings.apply_worker_env()
    imported_before = "ray" in sys.modules  # a notebook, a test: Ray read its auth settings back then
    address = address or os.environ.get("LAB_RAY_ADDRESS") or None
    warm_instance = None
    if not address and not _ray_initialized():
        from lab.infra import warm

        warm_instance = warm.usable(wait=warm.READY_TIMEOUT_S)  # one starting (the lab server's): joined
    local = not address and warm_instance is None  # this driver starts its own instance
    if warm_instance is not None:
        os.environ.pop("RAY_AUTH_TOKEN", None)  # it would win over the instance's token file
        os.environ.update(warm_instance.client_env())  # its own token; read when Ray is imported
    elif local and not _ray_initialized():
        ray_tokens.use_local_token()  # the lab's own 0600 token, not Ray's ~/.ray/auth_token
    if not address:
        local_ray.prepare_environment()  # before `import ray`: loopback listeners, token auth
    elif not _ray_initialized():
        if address == "auto":  # the cluster `auto` finds here: checked, then joined, as any other address
            address = ray_tokens.resolve_auto() or address
            imported_before = True  # resolving it imported Ray
        ray_tokens.apply_cluster_auth(address)  # the user's token only to a cluster it is for
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
        hint = f" ({ray_tokens.HINT})" if address and os.environ.get("RAY_AUTH_MODE") == "disabled" else ""
        raise ClusterError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}{hint}") from None
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


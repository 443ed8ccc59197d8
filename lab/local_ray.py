"""The one way the lab starts a local Ray instance: everything on loopback, token authentication on.

Ray 2.60 binds most of a node's listeners to the node's IP address: the GCS, the raylet and the
workers refuse a client without the token, but the Prometheus metrics endpoints (the dashboard
agent's, the dashboard's and the autoscaler's) answer anyone. Ray picks the loopback address as the
node IP when `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (a documented switch for single-machine use), and
every listener then binds 127.0.0.1. `_node_ip_address="127.0.0.1"` alone is not enough: Ray turns a
loopback node address back into the machine's own.

Every command that starts Ray locally (`lab run`, `lab resume`, `lab up`) must go through
`prepare_environment()` before `import ray` and pass `ray_init_kwargs()` to `ray.init`.
The token itself (Ray writes it to ~/.ray/auth_token when missing) is never read, printed or logged here.
"""
from __future__ import annotations

import os
import sys
from typing import Any

LOOPBACK = "127.0.0.1"

LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # node IP = loopback: every listener binds 127.0.0.1
}


def prepare_environment() -> None:
    """Set the local-instance environment in this process (inherited by every Ray process it starts).

    Token authentication: a new local instance turns it on unless RAY_AUTH_MODE says otherwise, so an
    opt-out (`RAY_AUTH_MODE=disabled`) is dropped; Ray then sets the mode itself (and refreshes its
    config, which an already imported Ray would not see from a variable set here).
    """
    os.environ.update(LOCAL_ENV)
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        os.environ.pop("RAY_AUTH_MODE", None)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray already imported (a test, a notebook): it read the switch at import
        constants.ENABLE_RAY_CLUSTER = False


def ray_init_kwargs(num_cpus: int | None = None, num_gpus: int | None = None, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of `ray.init` for a local instance that answers only on loopback."""
    kwargs: dict[str, Any] = {
        "include_dashboard": False,  # `lab up --dashboard` may turn it on: it then binds 127.0.0.1, behind the token
        "dashboard_host": LOOPBACK,
        "_node_ip_address": LOOPBACK,
        "logging_level": "ERROR",
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if num_gpus is not None:
        kwargs["num_gpus"] = num_gpus
    kwargs.update(extra)
    return kwargs

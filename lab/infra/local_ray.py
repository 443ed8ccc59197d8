"""The one way the lab starts a local Ray instance: everything on loopback, token authentication on.

Ray 2.60 binds most of a node's listeners to the node's IP address: the GCS, the raylet and the
workers refuse a client without the token, but the Prometheus metrics endpoints (the dashboard
agent's, the dashboard's and the autoscaler's) answer anyone. Ray picks the loopback address as the
node IP when `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (a documented switch for single-machine use), and
every listener then binds 127.0.0.1. `_node_ip_address="127.0.0.1"` alone is not enough: Ray turns a
loopback node address back into the machine's own.

Every command that starts Ray locally (`lab run`, `lab resume`, `lab up`) must go through
`prepare_environment()` before `import ray` and pass `ray_init_kwargs()` to `ray.init`.
The token is the lab's own (lab/ray_tokens.py: $LAB_HOME/run/auth_token, 0600), never Ray's ~/.ray/auth_token;
it is never printed or logged.
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from lab import settings

LOOPBACK = "127.0.0.1"

LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # node IP = loopback: every listener binds 127.0.0.1
    # no idle worker per CPU for the first driver: trials start their own (the warm pool is `lab up`'s);
    # a two-trial sweep on 2 cores then takes 9.5 CPU-s and 8.1 s instead of 10.4 and 9.3
    "RAY_prestart_worker_first_driver": "0",
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


def reload_auth_settings() -> None:
    """Make an already imported Ray read its token settings again before it starts or joins an instance.

    Ray caches the token (and the auth mode) it first read; a process that ran Ray before with other
    settings (a notebook after `lab down`, a test with its own RAY_AUTH_TOKEN) would otherwise start a GCS
    with one token and greet it with another. Only call it while Ray is not initialized.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")  # the config first: a reload under the old config may want the old token
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):  # a Ray without token authentication: nothing cached
        pass


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


# ------------------------------------------------------------------ the processes of a local instance
INSTANCE_VAR = "LAB_RAY_INSTANCE"  # inherited by every process of the instance: how its leftovers are found
_instance = ""  # this process's instance, once it started one
_instance_file: Path | None = None  # its record, fixed when it started (LAB_HOME may change later in a notebook or test)


def instances_dir() -> Path:
    return settings.lab_home() / "run"


def mark_instance() -> str:
    """Before `ray.init`: tag this driver's future Ray processes, and record the driver, so that the next
    lab command can stop them if this driver dies without shutting Ray down (SIGKILL)."""
    global _instance, _instance_file
    if _instance:
        return _instance
    import psutil

    _instance = instance = uuid.uuid4().hex[:16]
    os.environ[INSTANCE_VAR] = instance  # a fresh id even when a parent lab process set one
    folder = settings.private_dir(instances_dir())
    me = psutil.Process()
    _instance_file = folder / f"ray-{instance}.json"
    settings.private_file(_instance_file, json.dumps({"pid": me.pid, "create_time": me.create_time(), "processes": []}))
    atexit.register(_shutdown, instance, _instance_file)
    return instance


def record_processes() -> None:
    """After `ray.init`: record the instance's processes by pid and start time. Some rename themselves
    (setproctitle overwrites their environment block), so the environment tag alone does not find them."""
    if not _instance or _instance_file is None:
        return
    import psutil

    try:
        record = json.loads(_instance_file.read_text())
    except (OSError, ValueError):  # removed meanwhile: record the driver again
        me = psutil.Process()
        record = {"pid": me.pid, "create_time": me.create_time()}
    record["processes"] = [[p.pid, p.create_time()] for p in psutil.Process().children(recursive=True)]
    try:
        settings.private_file(_instance_file, json.dumps(record))
    except OSError:  # a courtesy for the next command: the run goes on without it
        pass


def _shutdown(instance: str, path: Path) -> None:
    """At exit: stop Ray, then anything of this instance that outlived it; forget the instance."""
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001, S110 - exiting anyway
        pass
    try:
        recorded = json.loads(path.read_text()).get("processes", [])
    except (OSError, ValueError):
        recorded = []
    stop_instance(instance, recorded)
    path.unlink(missing_ok=True)


def stop_dead_instances() -> int:
    """Stop the leftover processes of local instances whose driver died; return how many were stopped.

    Only processes tagged with such an instance's id are touched, never another Ray on the machine.
    """
    folder = instances_dir()
    if not folder.is_dir():
        return 0

    stopped = 0
    for record in folder.glob("ray-*.json"):
        instance = record.stem[len("ray-"):]
        try:
            driver = json.loads(record.read_text())
        except (OSError, ValueError):
            continue  # being written by a driver starting right now
        if not _same_process(driver.get("pid"), driver.get("create_time")):
            stopped += stop_instance(instance, driver.get("processes", []))
            record.unlink(missing_ok=True)
    return stopped


def _same_process(pid: int | None, create_time: float | None) -> bool:
    """Whether `pid` is still the process that started at `create_time` (pids are reused)."""
    import psutil

    try:
        return pid is not None and abs(psutil.Process(pid).create_time() - create_time) < 0.01
    except (psutil.Error, TypeError):
        return False


def stop_instance(instance: str, recorded: list = (), timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL, every process (but this one) of the instance: those recorded at its start
    (same pid and start time), and those whose environment carries its id."""
    import psutil

    tagged = {}
    for pid, started in recorded:
        if pid != os.getpid() and _same_process(pid, started):
            try:
                tagged[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid() or process.pid in tagged:
            continue
        try:
            if process.environ().get(INSTANCE_VAR) == instance:
                tagged[process.pid] = process
        except (psutil.Error, OSError):
            continue
    tagged = list(tagged.values())
    for process in tagged:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(tagged, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return len(tagged)

"""`lab run --address` on a local multi-node Ray cluster (cluster/local_cluster.sh: a head and a worker node)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.registry import Registry
from tests.conftest import ROOT, lab

SCRIPT = ROOT / "cluster" / "local_cluster.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_cluster_of(workers: int, cpus: int):
    """cluster/local_cluster.sh on free ports: yields (ray address, dashboard URL, env for the script)."""
    env = {**os.environ, "RAY": str(Path(sys.executable).parent / "ray"), "RAY_PORT": str(_free_port()),
           "DASHBOARD_PORT": str(_free_port())}
    env["CLUSTER_DIR"] = f"/tmp/lab-test-cluster-{env['RAY_PORT']}"
    started = subprocess.run([str(SCRIPT), "start", str(workers), str(cpus)], capture_output=True, text=True,
                             env=env, timeout=240)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield started.stdout.strip().splitlines()[-1], f"http://127.0.0.1:{env['DASHBOARD_PORT']}", env
    finally:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, env=env, timeout=120)
        leftover = subprocess.run([str(SCRIPT), "pids"], capture_output=True, text=True, env=env).stdout.split()
        assert not leftover, f"local_cluster.sh stop left processes behind: {leftover}"


@pytest.fixture(scope="module")
def local_cluster():
    with local_cluster_of(1, 1) as (address, _dashboard, _env):
        yield address


@pytest.mark.slow
def test_run_on_a_two_node_cluster(local_cluster, tmp_path):
    status = subprocess.run([str(Path(sys.executable).parent / "ray"), "status", "--address", local_cluster],
                            capture_output=True, text=True, env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert status.stdout.count("node_") >= 2, status.stdout + status.stderr
    result = lab("run", "svc-digits", "--address", local_cluster, "--set", "search.svc__C.grid=[1.0,10.0]")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = Registry().trials(1)
    assert len(trials) == 6 and all(t["status"] == "TERMINATED" for t in trials)

"""`lab run --address` on a local multi-node Ray cluster (cluster/local_cluster.sh: a head and a worker node)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.registry import Registry
from tests.conftest import ROOT, lab

SCRIPT = ROOT / "cluster" / "local_cluster.sh"


@pytest.fixture(scope="module")
def local_cluster():
    env = {**os.environ, "RAY": str(Path(sys.executable).parent / "ray"), "RAY_PORT": "6391"}
    started = subprocess.run([str(SCRIPT), "start", "1", "1"], capture_output=True, text=True, env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, env=env, timeout=120)


@pytest.mark.slow
def test_run_on_a_two_node_cluster(local_cluster, tmp_path):
    status = subprocess.run([str(Path(sys.executable).parent / "ray"), "status", "--address", local_cluster],
                            capture_output=True, text=True, env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert status.stdout.count("node_") >= 2, status.stdout + status.stderr
    result = lab("run", "svc-digits", "--address", local_cluster, "--set", "search.svc__C.grid=[1.0,10.0]")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = Registry().trials(1)
    assert len(trials) == 6 and all(t["status"] == "TERMINATED" for t in trials)

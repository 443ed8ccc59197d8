"""`lab run --address` on a local multi-node Ray cluster (cluster/local_cluster.sh: a head and a worker node)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.registry import Registry
from tests.conftest import lab


@pytest.fixture
def local_cluster(shared_cluster):
    return shared_cluster.address


@pytest.mark.slow
def test_run_on_a_two_node_cluster(local_cluster, tmp_path):
    status = subprocess.run([str(Path(sys.executable).parent / "ray"), "status", "--address", local_cluster],
                            capture_output=True, text=True, env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert status.stdout.count("node_") >= 2, status.stdout + status.stderr
    result = lab("run", "svc-digits", "--address", local_cluster, "--set", "search.svc__C.grid=[1.0,10.0]")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = Registry().trials(1)
    assert len(trials) == 6 and all(t["status"] == "TERMINATED" for t in trials)

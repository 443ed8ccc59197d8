"""`lab submit`: an experiment as a Ray job through the dashboard's job API of the local multi-node cluster."""
from __future__ import annotations

import pytest

from lab.registry import Registry
from tests.conftest import lab, lab_in_process


def test_unreachable_dashboard_is_one_line_and_exit_2(lab_home):
    result = lab_in_process("submit", "svc-digits", "--address", "http://127.0.0.1:9")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("lab: error: cannot reach the Ray dashboard at http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1
    bad = lab_in_process("submit", "svc-digits", "--address", "ftp://somewhere")
    assert bad.returncode == 2 and "must look like http://HOST:8265" in bad.stderr


def test_a_bad_spec_fails_before_anything_is_sent(lab_home):
    result = lab_in_process("submit", "svc-digits", "--set", "num_samples=0", "--address", "http://127.0.0.1:9")
    assert result.returncode == 2 and "num_samples" in result.stderr and "dashboard" not in result.stderr


@pytest.fixture
def dashboard(shared_cluster):
    return shared_cluster.dashboard


@pytest.mark.slow
def test_submit_runs_the_sweep_on_the_cluster_and_returns_its_status(dashboard, lab_home):
    secret = "postgresql://lab:s3cret@127.0.0.1:1/nothing"
    ok = lab("submit", "svc-digits", "--address", dashboard, "--set", "search.svc__C.grid=[1.0]", "--wait")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "submitted Ray job raysubmit_" in ok.stdout and "SUCCEEDED (exit status 0)" in ok.stdout
    (experiment,) = Registry().experiments()  # the job wrote to this LAB_HOME's registry (passed as env)
    assert experiment["status"] == "completed" and experiment["num_trials"] == 3 and not experiment["num_errors"]

    # a job that fails: the registry passed to it (its URL holds a password) cannot be reached
    failed = lab("submit", "svc-digits", "--address", dashboard, "--wait", env={"LAB_REGISTRY_URL": secret})
    assert failed.returncode == 2, failed.stdout[-3000:]  # the exit status of the job's `lab run`
    assert "cannot reach the registry at postgresql+psycopg://lab@127.0.0.1:1/nothing" in failed.stdout  # no password sent
    assert "FAILED (exit status 2)" in failed.stdout
    assert "s3cret" not in failed.stdout + failed.stderr
    import json
    import re

    from lab.infra.jobs import _client

    job_id = re.search(r"submitted Ray job (\S+) ", failed.stdout).group(1)
    info = _client(dashboard).get_job_info(job_id)  # what the dashboard shows to whoever reaches it
    assert "s3cret" not in json.dumps(info.runtime_env) + json.dumps(info.metadata or {})

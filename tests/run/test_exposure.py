"""Nothing answers beyond loopback without credentials: the listeners of a real local run, TensorBoard."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.registry import Registry
from tests import proc_utils
from tests.conftest import lab

LONG_SWEEP = """
name: exposure
workload: sklearn_cv
params: {dataset: iris, model: logistic, cv_folds: 3, log_figures: false}
search:
  logisticregression__C: {loguniform: [0.01, 100.0]}
metric: cv/accuracy
num_samples: 40
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


def _exposed(pid: int, address: str) -> tuple[list, list]:
    """The listeners of process `pid` and its descendants, and those answering on `address` without a token."""
    found = proc_utils.listeners(proc_utils.tree(pid))
    answered = [(name, ip, port, answer) for _pid, name, ip, port in found
                if (answer := proc_utils.answer_without_token(address, port))]
    return found, answered


@pytest.mark.slow
def test_a_local_run_answers_nothing_beyond_loopback_and_keeps_the_token_secret(tmp_path, lab_home):
    address = proc_utils.own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect through")
    home = tmp_path / "home"  # Ray would write its default token under ~/.ray: a fresh HOME for this run
    home.mkdir()
    spec = tmp_path / "exposure.yaml"
    spec.write_text(LONG_SWEEP)
    env = {**os.environ, "HOME": str(home)}
    env.pop("RAY_AUTH_MODE", None)
    driver = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        registry, deadline = Registry(), time.time() + 180
        while time.time() < deadline:  # every Ray process is up once a trial has finished
            try:
                if any(t["status"] == "TERMINATED" for e in registry.experiments() for t in registry.trials(e["id"])):
                    break
            except Exception:  # noqa: BLE001 - the run creates the registry
                pass
            time.sleep(0.3)
        found, answered = _exposed(driver.pid, address)
        assert driver.poll() is None, "the sweep ended before its listeners were probed"
    finally:
        driver.terminate()
        output, _ = driver.communicate(timeout=120)
    assert len(found) >= 5, found  # GCS, raylet, agents, workers: the probe saw the run
    assert answered == [], f"answered without the token on {address}: {answered}"
    assert not (home / ".ray" / "auth_token").exists()  # the lab's own token, not Ray's shared default
    token = (lab_home / "run" / "auth_token").read_text().strip()
    assert len(token) >= 16  # token authentication was on
    logs = "".join(p.read_text(errors="replace") for p in lab_home.rglob("*") if p.is_file() and p.suffix in
                   (".log", ".txt", ".json", ".csv"))
    assert token not in output and token not in logs


def test_tensorboard_refuses_a_public_address(lab_home):
    Registry().check()
    result = lab("tensorboard", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: error: TensorBoard has no authentication: it binds to loopback only "
        "(got --host 0.0.0.0; reach it from elsewhere through an SSH tunnel: ssh -L 6006:127.0.0.1:6006 HOST)"]

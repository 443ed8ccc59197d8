"""The registry survives its database: a PostgreSQL stopped mid-sweep, an SQLite write lock held by
another process. The sweep goes on, the records wait and catch up: registry == Tune's results."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab.registry import Registry
from tests import plugins
from tests.conftest import _free_port, _pg_bin

OUTAGE_S = float(os.environ.get("LAB_TEST_OUTAGE_S") or 8)  # the 30 s: the same code path, shorter
SWEEP = """
name: outage
workload: sleepy
params: {seconds: 1.0}
search:
  x: {uniform: [0.0, 1.0]}
metric: score
num_samples: 14
stop: {training_iteration: 1}
resources: {cpu: 1}
"""  # trials of a set length (tests/plugins): the sweep outlasts the start of the outage on any machine


class Postgres:
    """A PostgreSQL server of this test's own, to stop and start (the session's one serves other tests)."""

    def __init__(self):
        self.bindir = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="lab-pg-outage-"))
        self.run_as = []
        if os.geteuid() == 0:
            self.run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.port = _free_port()
        subprocess.run([*self.run_as, str(self.bindir / "initdb"), "-D", str(self.root / "data"), "-U", "lab",
                        "--auth=trust"], check=True, capture_output=True)
        self.start()
        self.url = f"postgresql://lab@127.0.0.1:{self.port}/postgres"

    def start(self):
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                        str(self.root / "log"), "-w", "start", "-o",
                        f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                        "-w", "stop"], check=True, capture_output=True)


@pytest.fixture
def database(request, tmp_path):
    """(registry URL, outage context manager) for 'sqlite' or 'postgres'."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"

        def outage():  # another process takes the write lock and holds it
            return subprocess.Popen([sys.executable, "-c", (
                "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(float(sys.argv[2])); "
                "c.execute('COMMIT')"), str(tmp_path / "registry.db"), str(OUTAGE_S)], stdout=subprocess.PIPE, text=True)
        yield url, outage
        return
    if _pg_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    server = Postgres()

    class Stopper:
        def __init__(self):
            server.stop()
            self.started = time.time()

        def wait(self, timeout=None):
            time.sleep(max(0.0, OUTAGE_S - (time.time() - self.started)))
            server.start()

    try:
        yield server.url, Stopper
    finally:
        subprocess.run([*server.run_as, str(server.bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(server.root, ignore_errors=True)


def _tune_results(storage: str) -> dict[str, dict]:
    """Tune's own record: each trial's last result (result.json), by trial id."""
    out = {}
    for path in Path(storage).glob("*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if lines:
            out[lines[-1]["trial_id"]] = lines[-1] | {"_lines": len(lines)}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_sweep_goes_on_through_a_database_outage_and_catches_up(database, tmp_path, lab_home):
    url, outage = database
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP)
    registry = Registry(url)
    driver = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "LAB_REGISTRY_URL": url,
                                   "PYTHONPATH": plugins.pythonpath()})
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            (experiment,) = registry.experiments(limit=1)
            if any(t["status"] == "TERMINATED" for t in registry.trials(experiment["id"])):
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.2)
    storage = experiment["storage_path"]
    before = len(_tune_results(storage))
    held = outage()
    if hasattr(held, "stdout") and held.stdout:
        held.stdout.readline()  # the lock is taken
    time.sleep(OUTAGE_S * 0.8)
    during = len(_tune_results(storage))
    held.wait(timeout=OUTAGE_S * 3)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output[-3000:]
    assert during > before, "the sweep stopped while the database was away"
    assert "registry unreachable" in output and "caught up" in output, output[-3000:]
    tune = _tune_results(storage)
    trials = {t["trial_id"]: t for t in registry.trials(experiment["id"])}
    assert len(tune) == 14 and set(trials) == set(tune)  # none lost, none twice (trial id is unique per row)
    for trial_id, result in tune.items():
        row = trials[trial_id]
        assert row["status"] == "TERMINATED" and row["iterations"] == result["training_iteration"] == 1
        assert row["last_result"]["score"] == pytest.approx(result["score"])
        assert result["_lines"] == 1
    assert registry.experiment(experiment["id"])["status"] == "completed"

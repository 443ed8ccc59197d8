"""Shared fixtures: an isolated LAB_HOME, a real PostgreSQL server, the TF-Agents multiprocessing set-up."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    # TF-Agents' ParallelPyEnvironment needs its multiprocessing context (docs/stack.md)
    try:
        from tf_agents.system.default import multiprocessing_core
    except ImportError:
        return
    if not multiprocessing_core.initialized():
        multiprocessing_core.enable_interactive_mode()


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch):
    """Every test gets its own LAB_HOME (registry, experiments) unless it asks otherwise."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.delenv("LAB_REGISTRY_URL", raising=False)
    monkeypatch.delenv("LAB_STORAGE", raising=False)
    monkeypatch.delenv("LAB_RAY_ADDRESS", raising=False)
    return home


def lab(*args: str, env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `lab` console script in a subprocess."""
    command = [str(Path(sys.executable).parent / "lab"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)


# ------------------------------------------------------------------ PostgreSQL
def _pg_bin() -> Path | None:
    """The folder with initdb, pg_ctl and pg_isready: Debian's versioned folder first, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, started with the system's initdb/pg_ctl.

    Skipped when PostgreSQL is not installed, unless LAB_REQUIRE_POSTGRES=1 (set by .ci/run): then it fails.
    """
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("LAB_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    run_as: list[str] = []
    data_root = Path(tempfile.mkdtemp(prefix="lab-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root: use the postgres system user
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data_root, "postgres")
    data, port = data_root / "data", _free_port()
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "lab", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data_root / "log"), "-w", "start",
         "-o", f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"],
        check=True, capture_output=True,
    )
    try:
        base = f"postgresql://lab@127.0.0.1:{port}"
        for _ in range(50):
            if subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        psql = str(bindir / "psql") if (bindir / "psql").exists() else "psql"
        subprocess.run([psql, f"{base}/postgres", "-c", "CREATE DATABASE lab_test"], check=True, capture_output=True)
        yield f"{base}/lab_test"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data_root, ignore_errors=True)


def trained_workload(name: str, params: dict, steps: int = 2):
    """A module-scoped fixture: workload `name` made from `params` (seed 1) after `steps` steps, and each
    step's metrics: `trained = trained_workload("dqn", TINY)` in a test module."""

    @pytest.fixture(scope="module")
    def trained(tmp_path_factory):
        from lab.workload.testing import make

        workload = make(name, {**params, "seed": 1}, trial_dir=str(tmp_path_factory.mktemp(name)))
        results = [workload.step() for _ in range(steps)]
        yield workload, results
        workload.close()

    return trained

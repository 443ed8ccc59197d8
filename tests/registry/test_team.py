"""A team with real parts (issue 23, deliver 8): one PostgreSQL with a writer and a read-only role, two users
(two LAB_HOMEs; as root two OS users with their own HOMEs, through setpriv) sharing it and one storage root
(a sticky local folder, and moto's S3), sweeping at the same time, then rm, resume, export; and the rows a
"teammate" with write access to the registry plants, each refused in one line with nothing run, sent or
deleted."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from lab.registry import Registry
from tests.conftest import BUCKET, Listener, Planted
from tests.conftest import _free_port as free_port

ROOT = Path(__file__).resolve().parents[1]
LAB = str(Path(sys.executable).parent / "lab")
SWEEP = """name: sweep
workload: sklearn_cv
params: {dataset: iris, cv_folds: 2, log_figures: false}
search:
  svc__C: {grid: [0.5, 1.0]}
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


def roles(postgres_url: str) -> tuple[str, str]:
    """(writer URL, reader URL) of a fresh database set up as README's Security section says."""
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in ("DROP DATABASE IF EXISTS team", "DROP ROLE IF EXISTS lab_writer", "DROP ROLE IF EXISTS lab_reader",
                          "CREATE ROLE lab_writer LOGIN", "CREATE ROLE lab_reader LOGIN",
                          "CREATE DATABASE team OWNER lab_writer"):
            conn.exec_driver_sql(statement)
    admin.dispose()
    server = postgres_url.split("@", 1)[1].rsplit("/", 1)[0]
    writer, reader = f"postgresql://lab_writer@{server}/team", f"postgresql://lab_reader@{server}/team"
    Registry(writer).check()  # the first writer creates the schema
    owner = sa.create_engine(writer.replace("postgresql://", "postgresql+psycopg://"))
    with owner.begin() as conn:
        for statement in ("GRANT CONNECT ON DATABASE team TO lab_reader", "GRANT USAGE ON SCHEMA public TO lab_reader",
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO lab_reader",
                          "ALTER DEFAULT PRIVILEGES FOR ROLE lab_writer IN SCHEMA public GRANT SELECT ON TABLES TO lab_reader"):
            conn.exec_driver_sql(statement)
    owner.dispose()
    return writer, reader


class User:
    """One member of the team: an OS user of their own when the tests run as root, else a LAB_HOME of their own."""

    def __init__(self, base: Path, name: str, uid: int | None, env: dict[str, str]):
        self.name, self.home = name, base / name
        self.home.mkdir()
        self.prefix: list[str] = []
        if uid is not None:
            os.chown(self.home, uid, uid)
            # a user of their own; CAP_DAC_READ_SEARCH only because this machine's Python lives under root's 0700
            # home: it lets them read (never write) any file, so every write still meets the permissions
            self.prefix = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--"]
        self.uid = uid if uid is not None else os.getuid()
        self.env = {**env, "HOME": str(self.home), "USER": name, "LOGNAME": name,
                    "LAB_HOME": str(self.home / "lab"), "RAY_TMPDIR": str(self.home / "t")}

    def lab(self, *args: str, registry: str | None = None, **env: str) -> subprocess.CompletedProcess:
        extra = {"LAB_REGISTRY_URL": registry} if registry else {}
        return subprocess.run([*self.prefix, LAB, *args], check=False, env={**self.env, **extra, **env}, capture_output=True,
                              text=True, timeout=600)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*self.prefix, LAB, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def python(self, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, sys.executable, "-c", code], check=False, env=self.env, capture_output=True,
                              text=True, timeout=300)


def refused(result, text: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lab: error:"), result.stderr
    assert text in result.stderr, result.stderr


def tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.postgres
def test_two_users_share_a_registry_and_a_storage_root(postgres_url, s3_server):
    env, client = s3_server
    writer, reader = roles(postgres_url)
    base = Path(tempfile.mkdtemp(prefix="labteam-", dir="/tmp"))
    os.chmod(base, 0o755)
    users = ()
    try:
        shared = base / "shared"
        shared.mkdir()
        os.chmod(shared, 0o1777)  # sticky: nobody renames or deletes another user's folder
        spec = base / "sweep.yaml"
        spec.write_text(SWEEP)
        os.chmod(spec, 0o644)
        common = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "AWS_"))}
        # LAB_WARM_WORKERS=0: their servers' warm Rays keep no idle TensorFlow workers (the pool, tested in
        # tests/run/test_warm.py, would be started again after each of their runs, all of them scikit-learn sweeps)
        common.update(env, PYTHONPATH=str(ROOT), LAB_REGISTRY_URL=writer, LAB_STORAGE=str(shared),
                      AWS_MAX_ATTEMPTS="1", LAB_WARM_WORKERS="0")
        as_root = os.geteuid() == 0 and shutil.which("setpriv") is not None
        alice, bob = (User(base, name, uid if as_root else None, common) for name, uid in (("alice", 61001), ("bob", 61002)))
        users = (alice, bob)  # each runs through a lab server of their own (stopped at the end)
        registry = Registry(writer)

        # ---- sweeps at the same time: one local storage root, then one S3 prefix
        for storage in ([], ["--storage", f"s3://{BUCKET}/team"]):
            runs = [user.start("run", str(spec), *storage) for user in (alice, bob)]
            for run in runs:
                out, err = run.communicate(timeout=600)
                assert run.returncode == 0, out + err
        experiments = {e["id"]: e for e in registry.experiments()}
        assert len(experiments) == 4 and len({e["storage_path"] for e in experiments.values()}) == 4
        mine = {user.name: sorted(i for i, e in experiments.items() if e["user"] == user.name) for user in (alice, bob)}
        (a_local, a_s3), (b_local, b_s3) = mine["alice"], mine["bob"]
        for user, local in ((alice, a_local), (bob, b_local)):
            folder = Path(experiments[local]["storage_path"])
            assert folder.parent == shared and folder.stat().st_uid == user.uid
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="team/")["Contents"]]
        for s3 in (a_s3, b_s3):
            prefix = experiments[s3]["storage_path"][len(f"s3://{BUCKET}/"):]
            assert any(k.startswith(f"{prefix}/") and k.endswith("tuner.pkl") for k in keys), prefix
        before = {i: tree(experiments[i]["storage_path"]) for i in (a_local, b_local)}

        # ---- the read-only role reads everything and changes nothing
        board = alice.lab("leaderboard", "--workload", "sklearn_cv", "--dataset", "iris", "--json", registry=reader)
        assert board.returncode == 0, board.stderr
        assert {r["user"] for r in json.loads(board.stdout)["rows"]} == {"alice", "bob"}
        refused(alice.lab("rm", str(a_local), "--yes", registry=reader), "permission denied")
        assert tree(experiments[a_local]["storage_path"]) == before[a_local]

        # ---- rm, resume, export across users: nothing of one is lost to the other
        refused(bob.lab("rm", str(a_local), "--yes"), "only its owner deletes it")
        refused(bob.lab("resume", str(a_local)), "is not owned by you alone")
        refused(bob.lab("resume", str(a_s3)), "pass --trust")
        resumed = alice.lab("resume", str(a_local))
        assert resumed.returncode == 0, resumed.stderr
        exported = alice.lab("export", str(a_local), "--out", str(alice.home / "model"))
        assert exported.returncode == 0, exported.stderr
        deleted = bob.lab("rm", str(b_local), "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert not Path(experiments[b_local]["storage_path"]).exists()
        assert tree(experiments[a_local]["storage_path"]).keys() >= before[a_local].keys()
        deleted = bob.lab("rm", str(b_s3), "--yes", LAB_STORAGE=f"s3://{BUCKET}/team")
        assert deleted.returncode == 0, deleted.stderr
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="team/")["Contents"]]
        a_prefix = experiments[a_s3]["storage_path"][len(f"s3://{BUCKET}/"):]
        b_prefix = experiments[b_s3]["storage_path"][len(f"s3://{BUCKET}/"):]
        assert any(k.startswith(a_prefix + "/") for k in keys) and not any(k.startswith(b_prefix + "/") for k in keys)

        # ---- hostile rows from a teammate with write access to the registry
        marker = base / "pwned"
        planted = bob.home / "planted"
        planted.mkdir()
        (planted / "tuner.pkl").write_bytes(pickle.dumps(Planted(marker)))
        os.chmod(planted / "tuner.pkl", 0o666)
        alice_record = registry.experiment(a_local)

        def forged(**fields) -> int:
            experiment = registry.create_experiment({"name": "forged", "workload": "sklearn_cv",
                                                     "metric": "cv/accuracy", "mode": "max"}, user="bob")
            registry.update_experiment(experiment, status="interrupted", **fields)
            return experiment

        listener = Listener()
        try:
            for path in (f"file://{planted}", f" {planted}", str(planted)):
                refused(alice.lab("resume", str(forged(storage_path=path))), "refused")
            twin = forged(storage_path=alice_record["storage_path"], uuid=None)
            refused(alice.lab("rm", str(twin), "--yes"), "cannot be proven to be its own")
            refused(alice.lab("resume", str(twin)), "refused")
            refused(alice.lab("rm", str(forged(storage_path=str(alice.home))), "--yes"), "is not under the storage root")
            refused(alice.lab("rm", str(forged(storage_path=experiments[a_s3]["storage_path"])), "--yes",
                              LAB_STORAGE=f"s3://{BUCKET}/team"), "does not carry the marker")
            leaky = forged(storage_path=f"s3://{BUCKET}/team/x")
            registry.upsert_trial(leaky, "t1", status="TERMINATED", logdir=(
                f"s3://{BUCKET}/team/x?endpoint_override=127.0.0.1:{listener.port}&scheme=http"))
            history = alice.python(f"import lab; lab.history({leaky})")
            assert history.returncode != 0 and "is not under the storage root" in history.stderr, history.stderr
            board = forged(storage_path=str(alice.home), name="x,alice:/")
            refused(alice.lab("tensorboard", str(board), "--port", str(free_port())), "is not under the storage root")
            forged(name="forged\x1b]0;owned\x07\r\x1b[2K")
            shown = alice.lab("ls")
            assert shown.returncode == 0 and "forged\\x1b]0;owned\\x07" in shown.stdout, shown.stdout
            assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        finally:
            listener.close()
        assert not marker.exists()
        assert b"lab-test-secret" not in listener.received and b"lab-test-key" not in listener.received
        assert tree(experiments[a_local]["storage_path"]).keys() >= before[a_local].keys()
        assert Path(alice.home / "lab").exists() and os.path.isdir(experiments[a_local]["storage_path"])
    finally:
        for user in users:
            user.lab("down")
        shutil.rmtree(base, ignore_errors=True)

"""A registry and a storage root shared by a team (issue 23): every row and folder is a stranger's.

Each test reproduces one finding on the code before the fix: registry rows that point anywhere, folders
that two registries share, files Tune or Ray would unpickle, a query string that sends credentials away.
"""
from __future__ import annotations

import json
import os
import pickle

import pytest

from lab.errors import LabError
from lab.registry import Registry
from tests.conftest import BUCKET, Listener, Planted, lab, lab_in_process

SPEC = {"name": "svc", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max",
        "params": {"dataset": "iris"}}


def row(storage_path: str | None = None, **fields) -> int:
    """An experiment row as a teammate with write access to the registry could write it."""
    registry = Registry()
    experiment = registry.create_experiment(SPEC)
    registry.update_experiment(experiment, status="interrupted", storage_path=storage_path, **fields)
    return experiment


def marked_folder(root, experiment: int, name: str = "svc"):
    """An experiment folder as `lab run` creates it: `<name>-<id>-<uuid>` with the marker of the registry row
    (written by hand, so that the test sets up the same on a lab without markers)."""
    record = Registry().experiment(experiment)
    identity = record.get("uuid") or "0" * 32
    folder = root / f"{name}-{experiment}-{identity.replace('-', '')[:12]}"
    folder.mkdir(parents=True)
    (folder / ".lab-experiment.json").write_text(json.dumps({"uuid": record.get("uuid"), "id": experiment,
                                                             "name": name}))
    Registry().update_experiment(experiment, storage_path=str(folder))
    return folder


def one_line_error(result, text: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lab: error:"), result.stderr
    assert text in result.stderr, result.stderr


# ------------------------------------------------------------------ storage identity (deliver 1)
def test_two_registries_over_one_storage_root_never_share_a_folder(tmp_path, monkeypatch, ray_shared):
    """Finding: two registries named folders `<name>-<id>` from their own counters; the second's experiment 1
    wrote into the first's, `lab rm 1` in the second deleted it, and `lab export 1` in the first failed."""
    shared = tmp_path / "shared-runs"
    spec = tmp_path / "svc.yaml"
    spec.write_text("name: svc\nworkload: sklearn_cv\nparams: {dataset: iris, cv_folds: 2, log_figures: false}\n"
                    "metric: cv/accuracy\nstop: {training_iteration: 1}\nresources: {cpu: 1}\n")
    homes = [tmp_path / "alice", tmp_path / "bob"]
    envs = [{"LAB_HOME": str(home), "LAB_STORAGE": str(shared)} for home in homes]
    for env in envs:
        result = lab_in_process("run", str(spec), env=env)  # on the session's Ray
        assert result.returncode == 0, result.stderr
    folders = []
    for home in homes:
        monkeypatch.setenv("LAB_HOME", str(home))
        folders.append(Registry().experiment(1)["storage_path"])
    assert folders[0] != folders[1] and all(f.startswith(str(shared) + os.sep) for f in folders)
    deleted = lab("rm", "1", "--yes", env=envs[1])
    assert deleted.returncode == 0, deleted.stderr
    assert not os.path.exists(folders[1]) and os.path.isdir(folders[0])
    exported = lab("export", "1", "--out", str(tmp_path / "model"), env=envs[0])
    assert exported.returncode == 0, exported.stderr


def test_a_run_never_writes_into_an_existing_folder(tmp_path):
    from lab.infra import storage

    folder = tmp_path / "runs" / "svc-1-abc"
    folder.mkdir(parents=True)
    (folder / "someone-elses.txt").write_text("keep")
    with pytest.raises(LabError, match="exists already"):
        storage.claim(storage.Storage(uri=str(folder), path=str(folder)), storage.marker_of(1, "u", "svc"))
    assert sorted(os.listdir(folder)) == ["someone-elses.txt"]


# ------------------------------------------------------------------ lab rm (deliver 1, 2)
@pytest.mark.parametrize("where", ["outside", "file-uri", "leading-space", "unmarked", "other-marker", "root",
                                   "control"])
def test_rm_deletes_only_its_own_marked_folder_under_the_root(tmp_path, lab_home, where):
    """Finding: `lab rm` removed `storage_path` wherever it pointed."""
    root = lab_home / "experiments"
    root.mkdir(parents=True)
    precious = {"outside": tmp_path / "precious", "file-uri": tmp_path / "precious",
                "leading-space": tmp_path / "precious", "unmarked": root / "svc-7-other",
                "other-marker": None, "root": root, "control": root / "svc-8\r\x1b[2Kharmless"}[where]
    experiment = row()
    if where == "other-marker":
        precious = marked_folder(root, row())  # another experiment's folder, with its own marker
    else:
        precious.mkdir(exist_ok=True)
    (precious / "data.txt").write_text("keep")
    path = {"file-uri": f"file://{precious}", "leading-space": f" {precious}"}.get(where, str(precious))
    Registry().update_experiment(experiment, storage_path=path)
    result = lab("rm", str(experiment), "--yes")
    one_line_error(result, "refused")
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert (precious / "data.txt").read_text() == "keep"
    assert Registry().experiment(experiment)["id"] == experiment  # nothing deleted, rows included


def test_rm_of_a_remote_prefix_outside_the_root_is_refused(lab_home, s3_server):
    """Finding: `lab rm` deleted an S3 prefix the row named."""
    env, client = s3_server
    client.put_object(Bucket=BUCKET, Key="precious/data.txt", Body=b"keep")
    experiment = row(f"s3://{BUCKET}/precious")
    result = lab("rm", str(experiment), "--yes", env={**env, "LAB_STORAGE": f"s3://{BUCKET}/runs"})
    one_line_error(result, "is not under the storage root")
    assert client.get_object(Bucket=BUCKET, Key="precious/data.txt")["Body"].read() == b"keep"


def test_rm_deletes_its_marked_folder(lab_home):
    experiment = row()
    folder = marked_folder(lab_home / "experiments", experiment)
    (folder / "trial").mkdir()
    result = lab("rm", str(experiment), "--yes")
    assert result.returncode == 0 and f"deleted experiment {experiment} and {folder}" in result.stdout, result.stderr
    assert not folder.exists()


def test_rm_prompt_shows_control_characters_as_escapes(tmp_path, lab_home):
    """Finding: the prompt printed database text raw: `\\r\\x1b[2K` hid the real target behind a harmless one."""
    import pty
    import select
    import subprocess
    import sys
    import time

    experiment = row()
    target = marked_folder(lab_home / "experiments", experiment)
    with Registry().engine.begin() as conn:
        conn.exec_driver_sql("UPDATE experiments SET name = 'svc\x1b]0;owned\x07' WHERE id = ?", (experiment,))
    leader, follower = pty.openpty()
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "lab"), "rm", str(experiment)],
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while b"[y/N]" not in output:  # the prompt on the terminal: a prompt sent elsewhere fails, never hangs
            assert time.monotonic() < deadline, f"no prompt on the terminal: {output!r}"
            if select.select([leader], [], [], 1)[0]:
                output += os.read(leader, 4096)
        os.write(leader, b"n\n")
        process.wait(timeout=60)
        while chunk := os.read(leader, 4096):
            output += chunk
    except OSError:  # the terminal closed with the process
        pass
    finally:
        os.close(leader)
        process.wait(timeout=60)
    text = output.decode(errors="replace")
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text.replace("\r\n", ""), repr(text)
    assert f"delete experiment {experiment} (svc\\x1b]0;owned\\x07, interrupted) and {target}? [y/N]" in text, text
    assert "nothing deleted" in text and process.returncode == 1 and target.is_dir()


# ------------------------------------------------------------------ lab resume (deliver 3)
def planted_experiment(root, marker, experiment: int | None = None):
    """An experiment folder under `root` whose tuner.pkl runs `touch MARKER` when Tune unpickles it."""
    experiment = experiment or row()
    folder = marked_folder(root, experiment)
    (folder / "tuner.pkl").write_bytes(pickle.dumps(Planted(marker)))
    return experiment, folder


@pytest.mark.parametrize("form", ["file-uri", "leading-space"])
def test_resume_resolves_the_location_before_the_owner_check(tmp_path, lab_home, form):
    """Finding: the owner check ran on the raw string: `file:///...` or a leading space skipped it."""
    marker = tmp_path / "pwned"
    experiment, folder = planted_experiment(lab_home / "experiments", marker)
    os.chmod(folder / "tuner.pkl", 0o666)
    Registry().update_experiment(experiment, storage_path=f"file://{folder}" if form == "file-uri" else f" {folder}")
    result = lab("resume", str(experiment))
    assert not marker.exists()  # the planted pickle did not run
    one_line_error(result, "refused")


def test_resume_checks_the_whole_tree(tmp_path, lab_home):
    """Finding: only top-level *.pkl files were checked (Tune also decodes experiment_state-*.json and the
    trials' files)."""
    marker = tmp_path / "pwned"
    experiment, folder = planted_experiment(lab_home / "experiments", marker)
    trial = folder / "sklearn_cv_00000"
    trial.mkdir()
    (trial / "params.pkl").write_bytes(pickle.dumps(Planted(marker)))
    os.chmod(trial / "params.pkl", 0o666)
    result = lab("resume", str(experiment))
    assert not marker.exists()  # the planted pickle did not run
    one_line_error(result, "params.pkl is not owned by you alone")
    os.chmod(trial / "params.pkl", 0o644)
    state = folder / "experiment_state-2026-01-01_00-00-00.json"  # Tune decodes its trials with cloudpickle
    state.write_text("{}")
    os.chmod(state, 0o620)
    one_line_error(lab("resume", str(experiment)), "experiment_state-2026-01-01_00-00-00.json is not owned by you alone")
    os.chmod(state, 0o600)
    (trial / "outside").symlink_to(tmp_path)
    one_line_error(lab("resume", str(experiment)), "is a symbolic link out of the experiment folder")
    assert not marker.exists()


def test_resume_refuses_another_experiments_folder(tmp_path, lab_home):
    marker = tmp_path / "pwned"
    _, folder = planted_experiment(lab_home / "experiments", marker)
    forged = row(str(folder))  # a second row pointing at the first one's folder
    result = lab("resume", str(forged))
    assert not marker.exists()  # the planted pickle did not run
    one_line_error(result, "does not carry the marker of experiment")


def test_resume_from_remote_storage_needs_trust(tmp_path, lab_home, s3_server):
    """Finding: remote URIs skipped the owner check entirely."""
    env, client = s3_server
    experiment = row()
    record = Registry().experiment(experiment)
    key = f"runs/svc-{experiment}-{(record.get('uuid') or '0')[:8]}"
    client.put_object(Bucket=BUCKET, Key=f"{key}/.lab-experiment.json",
                      Body=json.dumps({"uuid": record.get("uuid"), "id": experiment, "name": "svc"}).encode())
    client.put_object(Bucket=BUCKET, Key=f"{key}/tuner.pkl", Body=pickle.dumps(Planted(tmp_path / "pwned")))
    Registry().update_experiment(experiment, storage_path=f"s3://{BUCKET}/{key}")
    result = lab("resume", str(experiment), env={**env, "LAB_STORAGE": f"s3://{BUCKET}/runs"})
    assert not (tmp_path / "pwned").exists()  # the planted pickle did not run
    one_line_error(result, "pass --trust")


def test_a_checkpoint_is_verified_before_ray_unpickles_it(tmp_path):
    """Finding: Ray's Trainable.restore unpickled `_dict_checkpoint.pkl` before the lab's manifest check, which
    ignored files its manifest did not list."""
    from lab.execution.trainable import WorkloadTrainable
    from lab.workload import checkpoints

    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "checkpoint_000000"
    checkpoint.mkdir()
    (checkpoint / "model.json").write_text("{}")
    checkpoints.seal(str(checkpoint))
    (checkpoint / "_dict_checkpoint.pkl").write_bytes(pickle.dumps(Planted(marker)))
    trainable = WorkloadTrainable.__new__(WorkloadTrainable)  # no actor: restore() is what Tune calls on one
    try:
        trainable.restore(str(checkpoint))
        error = None
    except Exception as exc:  # noqa: BLE001 - first whether the pickle ran, then what was raised
        error = exc
    assert not marker.exists()
    assert isinstance(error, checkpoints.CheckpointError), error
    assert "_dict_checkpoint.pkl, which its lab_checkpoint.json does not list" in str(error)


def test_a_checkpoint_with_an_unlisted_file_or_a_link_is_refused(tmp_path):
    from lab.workload import checkpoints

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "model.json").write_text("{}")
    checkpoints.seal(str(checkpoint))
    checkpoints.verify(str(checkpoint))
    (checkpoint / "sub").mkdir()
    (checkpoint / "sub" / "extra.bin").write_bytes(b"x")
    with pytest.raises(checkpoints.CheckpointError, match="extra.bin, which its"):
        checkpoints.verify(str(checkpoint))
    (checkpoint / "sub" / "extra.bin").unlink()
    (checkpoint / "sub" / "link").symlink_to("/etc/passwd")
    with pytest.raises(checkpoints.CheckpointError, match="not a regular file"):
        checkpoints.verify(str(checkpoint))


# ------------------------------------------------------------------ no credential goes where a row says (deliver 2)
@pytest.mark.parametrize("root", ["local", "s3"])
def test_history_never_opens_a_query_string_from_the_registry(lab_home, monkeypatch, root):
    """Finding: `trials.logdir` with `?endpoint_override=` made pyarrow send the user's S3 credentials there."""
    from lab.results.history import history

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALABLEAKTEST00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "lab-leak-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "lab-leak-session-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    if root == "s3":
        monkeypatch.setenv("LAB_STORAGE", f"s3://{BUCKET}/runs")
    listener = Listener()
    try:
        experiment = row()
        logdir = f"s3://{BUCKET}/runs/x?endpoint_override=127.0.0.1:{listener.port}&scheme=http"
        Registry().upsert_trial(experiment, "t1", status="TERMINATED", logdir=logdir)
        try:
            history(experiment)
            error = None
        except Exception as exc:  # noqa: BLE001 - first whether anything was sent, then what was raised
            error = exc
    finally:
        listener.close()
    assert b"AKIALABLEAKTEST" not in listener.received and b"lab-leak" not in listener.received, listener.received
    assert isinstance(error, LabError) and "is not under the storage root" in str(error), error


# ------------------------------------------------------------------ lab tensorboard (deliver 2)
def test_tensorboard_labels_and_folders_cannot_add_log_folders(tmp_path, lab_home):
    """Finding: names and paths were joined with `,` and `:` into --logdir_spec, so a row could add folders."""
    from lab.results.board_mirror import locations as tensorboard_folders

    root = lab_home / "experiments"
    root.mkdir(parents=True)
    good = root / "svc-1"
    good.mkdir()
    rows = [{"id": 1, "name": "x,secret:/root", "storage_path": str(good)}]
    assert {label: where.uri for label, where in tensorboard_folders(rows).items()} == {"1": str(good)}
    comma = root / "a,secret:"
    comma.mkdir()
    with pytest.raises(LabError, match="has a ','"):
        tensorboard_folders([{"id": 2, "name": "svc", "storage_path": str(comma)}])
    with pytest.raises(LabError, match="is not under the storage root"):
        tensorboard_folders([{"id": 3, "name": "svc", "storage_path": "/root"}])


def test_tensorboard_refuses_a_folder_outside_the_root(tmp_path, lab_home):
    import signal
    import subprocess
    import sys

    from tests.conftest import _free_port as free_port

    experiment = row(str(tmp_path))
    command = [os.path.join(os.path.dirname(sys.executable), "lab"), "tensorboard", str(experiment),
               "--port", str(free_port())]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    finally:  # a TensorBoard that did start (the old code) must not outlive the test
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    one_line_error(subprocess.CompletedProcess(command, process.returncode, out, err), "is not under the storage root")


# ------------------------------------------------------------------ queries see every row (deliver 7)
def test_the_dataset_of_a_workload_default_is_recorded(lab_home):
    """Finding: svc-digits and dqn-cartpole rely on their workload's default data set: `dataset` stayed empty."""
    registry = Registry()
    svc = registry.create_experiment({**SPEC, "params": {}})
    dqn = registry.create_experiment({**SPEC, "workload": "dqn", "params": {"learning_rate": 0.001}})
    assert registry.experiment(svc)["dataset"] == "digits"
    assert registry.experiment(dqn)["dataset"] == "CartPole-v1"
    assert [r["id"] for r in registry.experiments(where="dataset = digits")] == [svc]


def test_migration_4_fills_the_dataset_of_existing_rows(lab_home):
    import sqlalchemy as sa

    registry = Registry()
    old = registry.create_experiment({**SPEC, "params": {}})
    named = registry.create_experiment(SPEC)
    registry.update_experiment(old, dataset="")
    with registry.engine.begin() as conn:  # the schema as a version-3 lab left it
        conn.exec_driver_sql("DROP INDEX ix_experiments_uuid")
        conn.exec_driver_sql("ALTER TABLE experiments DROP COLUMN uuid")
        conn.execute(sa.text("UPDATE lab_meta SET value = '3' WHERE key = 'schema_version'"))
    registry.engine.dispose()
    reopened = Registry()
    assert reopened.experiment(old)["dataset"] == "digits" and reopened.experiment(named)["dataset"] == "iris"
    assert reopened.experiment(old)["uuid"] is None
    _, _, rows = reopened.leaderboard(workload="sklearn_cv", dataset="digits")
    assert rows == []  # no trials: but the experiment is found
    assert [r["id"] for r in reopened.experiments(where="dataset = digits")] == [old]


def test_readme_and_notebook_queries_find_the_presets_rows(lab_home):
    """The leaderboard and --where examples of README.md and notebooks/quickstart.ipynb, over svc-digits and
    dqn-cartpole as recorded (both rely on their workload's default data set)."""
    import lab as api
    from lab import spec as specs

    registry = Registry()
    ids = {}
    for preset, metric in (("svc-digits", 0.98), ("dqn-cartpole", 450.0)):
        (spec,) = specs.load(preset)
        ids[preset] = registry.create_experiment(spec.to_dict())
        registry.upsert_trial(ids[preset], "t1", status="TERMINATED", best_metric=metric,
                              last_result={spec.metric: metric})
        registry.update_experiment(ids[preset], status="completed")
    registry.set_tags(ids["svc-digits"], {"team": "vision"})
    assert len(api.leaderboard(workload="sklearn_cv", dataset="digits")) == 1
    board = lab("leaderboard", "--workload", "dqn", "--dataset", "CartPole-v1", "--json")
    assert [r["experiment_id"] for r in json.loads(board.stdout)["rows"]] == [ids["dqn-cartpole"]], board.stderr
    listed = lab("ls", "--where", "status = completed and tag.team = vision and metric.cv/accuracy >= 0.97", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [ids["svc-digits"]], listed.stderr
    assert list(api.experiments(where="dataset = digits")["id"]) == [ids["svc-digits"]]

"""`lab tensorboard` of an experiment whose folder is in S3 (moto's server): its event files mirrored locally.

TensorFlow's file system has no s3:// here (no tensorflow-io), so before this `lab tensorboard` of an S3
experiment started a TensorBoard that showed nothing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lab.registry import Registry
from tests.conftest import BUCKET, _free_port

SPEC = {"name": "tb", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max", "params": {"dataset": "iris"}}


def event_file(step_values: list[tuple[int, float]], tag: str = "cv/accuracy") -> bytes:
    """An event file's bytes with one scalar per step, written with TensorBoard's own writer (no TensorFlow)."""
    import tempfile

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = EventFileWriter(folder)
        for step, value in step_values:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()
        (path,) = Path(folder).iterdir()
        return path.read_bytes()


def get_json(url: str, until, timeout: float = 60):
    """GET `url` until `until(body)` holds; the last body."""
    deadline, body = time.time() + timeout, None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the test's own local server
                body = json.loads(response.read())
            if until(body):
                return body
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered as expected; last answer {body!r}")


def test_sync_copies_event_files_only_and_never_outside_the_mirror(tmp_path, lab_home, s3_env):
    from lab.infra import storage
    from lab.results.board_mirror import sync

    env, client = s3_env
    prefix = "runs/tb-1-abc"
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_0/events.out.tfevents.1.host", Body=event_file([(1, 0.5)]))
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_0/result.json", Body=b"{}")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/../../escaped/events.out.tfevents.2.host", Body=b"x")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_1/./events.out.tfevents.3.host", Body=b"x")
    where = storage.resolve(f"s3://{BUCKET}/{prefix}")
    local = tmp_path / "mirror"
    assert sync(where, local) == 1
    copied = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert copied == ["mirror/trial_0/events.out.tfevents.1.host"], copied
    assert sync(where, local) == 0  # unchanged: nothing copied again
    grown = event_file([(1, 0.5), (2, 0.7)])
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_0/events.out.tfevents.1.host", Body=grown)
    assert sync(where, local) == 1 and (local / "trial_0" / "events.out.tfevents.1.host").read_bytes() == grown


def test_tensorboard_serves_an_s3_experiment_and_follows_new_event_files(tmp_path, lab_home, s3_env, monkeypatch):
    env, client = s3_env
    monkeypatch.setenv("LAB_STORAGE", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("LAB_TENSORBOARD_REFRESH_S", "1")
    prefix = "runs/tb-1-0123456789ab"
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_0/events.out.tfevents.1.host",
                      Body=event_file([(1, 0.5), (2, 0.75)]))
    registry = Registry()
    experiment = registry.create_experiment(SPEC)
    registry.update_experiment(experiment, status="completed", storage_path=f"s3://{BUCKET}/{prefix}")
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "tensorboard", str(experiment),
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        first = server.stdout.readline()
        assert first.startswith("copied 1 event file(s) of 1 experiment(s) from s3 storage"), first
        assert f"http://127.0.0.1:{port}/" in server.stdout.readline()
        base = f"http://127.0.0.1:{port}/data/plugin/scalars"
        tags = get_json(f"{base}/tags", lambda body: "1-tb/trial_0" in body)
        assert "cv/accuracy" in tags["1-tb/trial_0"]
        series = get_json(f"{base}/scalars?run=1-tb/trial_0&tag=cv/accuracy", lambda body: len(body) == 2)
        assert [row[2] for row in series] == [0.5, 0.75]
        # a trial that reports later shows up without restarting TensorBoard
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/trial_1/events.out.tfevents.2.host", Body=event_file([(1, 0.9)]))
        get_json(f"{base}/tags", lambda body: "1-tb/trial_1" in body)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err[-2000:]
    assert "lab-test-secret" not in out + err  # the credentials stay in the environment


def test_lab_ui_boards_refuse_a_row_outside_the_storage_root(lab_home):
    """Finding: `lab ui` gave TensorBoard whatever folder a registry row named (`/root`, another user's)."""
    import pytest

    from lab.errors import LabError
    from lab.ui.boards import checked_locations

    registry = Registry()
    outside, empty = registry.create_experiment(SPEC), registry.create_experiment(SPEC)
    registry.update_experiment(outside, storage_path="/root")
    with pytest.raises(LabError, match="is not under the storage root"):
        checked_locations((outside,), registry)
    with pytest.raises(LabError, match="has no folder yet"):
        checked_locations((empty,), registry)


def test_a_refresh_period_that_is_not_a_number_is_one_line(monkeypatch, lab_home):
    import pytest

    from lab.errors import LabError
    from lab.results.board_mirror import refresh_seconds

    for raw, says in (("soon", "must be a number of seconds"), ("0", "between 0.1 and 86400")):
        monkeypatch.setenv("LAB_TENSORBOARD_REFRESH_S", raw)
        with pytest.raises(LabError, match=says):
            refresh_seconds()

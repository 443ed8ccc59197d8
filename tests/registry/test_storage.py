"""Experiment storage (local folders, S3 through a real S3 server: moto's) and the MLflow bridge."""
from __future__ import annotations

import os
import sys

import pytest

from lab import spec as specs
from lab.errors import LabError
from lab.infra import storage
from lab.registry import Registry
from tests.conftest import BUCKET, lab
from tests.conftest import _free_port as free_port

SWEEP = """
name: svc
workload: sklearn_cv
params: {dataset: iris, model: svc, cv_folds: 3, log_figures: false}
search:
  svc__C: {grid: [0.1, 1.0]}
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def assert_clean_failure(result, message: str, lab_home) -> None:
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lab: error:") and message in last, result.stderr
    assert not (lab_home / "registry.db").exists() or not Registry().experiments()


# ------------------------------------------------------------------ fast: bad locations fail first
def test_resolve_paths_and_uris(tmp_path, s3_env):
    local = storage.resolve(f"file://{tmp_path}/runs")
    assert local.is_local and local.uri == f"{tmp_path}/runs" and local.join("x-1").path == f"{tmp_path}/runs/x-1"
    remote = storage.resolve(f"s3://{BUCKET}/runs/")
    assert not remote.is_local and remote.uri == f"s3://{BUCKET}/runs" and remote.path == f"{BUCKET}/runs"
    assert remote.join("x-1").uri == f"s3://{BUCKET}/runs/x-1"
    remote.check_writable()  # the bucket exists: the probe is written and deleted
    listed = s3_env[1].list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])
    assert not [o["Key"] for o in listed if storage.PROBE in o["Key"]]  # (pyarrow may leave a 'runs/' marker)
    with pytest.raises(LabError, match="names no bucket"):
        storage.resolve("s3://")


def test_unwritable_local_storage_fails_before_the_registry(tmp_path, lab_home, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    result = lab("run", "svc-digits", "--storage", str(a_file / "runs"))
    assert_clean_failure(result, f"storage path {a_file / 'runs'} is not writable: Not a directory", lab_home)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    # root ignores permissions: then use a read-only file system (sysfs is mounted read-only in containers)
    target = readonly / "runs" if os.geteuid() != 0 else "/sys/lab-storage-test"
    monkeypatch.setenv("LAB_STORAGE", str(target))
    from lab.execution import runner

    (spec,) = specs.load("svc-digits")
    with pytest.raises(LabError, match=f"storage path {target} is not writable: "
                                       "(Permission denied|Operation not permitted|Read-only file system)"):
        runner.run(spec)
    assert not Registry().experiments()


def test_missing_s3_bucket_fails_before_the_registry(s3_env, lab_home):
    result = lab("run", "svc-digits", "--storage", "s3://no-such-bucket/runs")
    assert_clean_failure(result, "storage s3://no-such-bucket/runs is not writable:", lab_home)
    assert "bucket does not exist" in result.stderr
    assert s3_env[0]["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout


def test_wrong_s3_credentials_fail_with_one_line(tmp_path, monkeypatch):
    """A second moto server that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0): an unknown key is refused."""
    import subprocess
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-4711")
        with pytest.raises(LabError, match="storage s3://lab-bucket/runs is not writable: .*(AccessDenied|"
                                           "ACCESS_DENIED|InvalidAccessKeyId|INVALID_ACCESS_KEY|403)") as info:
            storage.resolve("s3://lab-bucket/runs").check_writable()
        assert "\n" not in str(info.value) and "not-the-secret-4711" not in str(info.value)
    finally:
        server.terminate()
        server.wait(30)


def test_unreachable_s3_endpoint_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(LabError, match="storage s3://lab-bucket/runs is not writable") as info:
        storage.resolve("s3://lab-bucket/runs").check_writable()
    assert "\n" not in str(info.value)


def test_mlflow_missing_names_the_extra(tmp_path, monkeypatch, lab_home):
    from lab.execution import runner

    monkeypatch.setenv("LAB_MLFLOW_URI", f"file://{tmp_path}/mlruns")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # an install without the extra
    (spec,) = specs.load(write(tmp_path, SWEEP))
    with pytest.raises(LabError, match=r"needs mlflow: pip install 'agent-lab\[mlflow\]'"):
        runner.run(spec)
    assert not Registry().experiments()


# ------------------------------------------------------------------ real runs
@pytest.mark.slow
def test_sweep_on_s3_storage(tmp_path, s3_env, ray_shared):
    from lab.execution import runner

    client = s3_env[1]
    (spec,) = specs.load(write(tmp_path, SWEEP), [f"storage=s3://{BUCKET}/runs"])
    outcome = runner.run(spec)
    assert outcome.status == "completed" and outcome.num_trials == 2 and outcome.num_errors == 0
    registry = Registry()
    identity = registry.experiment(outcome.experiment_id)["uuid"].replace("-", "")[:12]
    folder = f"s3://{BUCKET}/runs/svc-{outcome.experiment_id}-{identity}"
    assert registry.experiment(outcome.experiment_id)["storage_path"] == folder == outcome.storage_path
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]]
    for trial in registry.trials(outcome.experiment_id):
        assert trial["status"] == "TERMINATED" and trial["best_metric"] > 0.8
        assert trial["logdir"].startswith(folder + "/") and trial["checkpoint_path"].startswith(trial["logdir"] + "/")
        trial_key = trial["logdir"][len(f"s3://{BUCKET}/"):]
        checkpoint_key = trial["checkpoint_path"][len(f"s3://{BUCKET}/"):]
        assert f"{trial_key}/result.json" in keys and f"{trial_key}/progress.csv" in keys
        assert any(k.startswith(checkpoint_key + "/") for k in keys), checkpoint_key  # the saved model
        assert any(k.startswith(trial_key + "/events.out.tfevents") for k in keys)  # TensorBoard, synced
    assert any(k.startswith(f"runs/svc-{outcome.experiment_id}-{identity}/experiment_state") for k in keys)
    assert f"runs/svc-{outcome.experiment_id}-{identity}/{storage.MARKER}" in keys
    exported = lab("export", str(outcome.experiment_id), "--out", str(tmp_path / "best"))  # its checkpoint from S3
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert any((tmp_path / "best").iterdir())


@pytest.mark.slow
def test_mlflow_logs_every_trial(tmp_path, ray_shared):
    """`--mlflow URI`: one MLflow run per trial (params, metrics), in an MLflow experiment named after the spec."""
    from mlflow.tracking import MlflowClient

    from lab.execution import runner

    uri = f"file://{tmp_path}/mlruns"
    (spec,) = specs.load(write(tmp_path, SWEEP), [f"mlflow={uri}"])
    outcome = runner.run(spec)
    assert outcome.status == "completed" and outcome.num_trials == 2
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("svc")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    trials = {t["trial_id"]: t for t in Registry().trials(outcome.experiment_id)}
    for run in runs:
        assert run.data.tags["lab.experiment_id"] == str(outcome.experiment_id)
        assert float(run.data.params["svc__C"]) in (0.1, 1.0) and run.data.params["model"] == "svc"
        (trial,) = [t for t in trials.values() if t["trial_id"] in run.data.tags["trial_name"]]
        assert run.data.metrics["cv/accuracy"] == pytest.approx(trial["best_metric"])

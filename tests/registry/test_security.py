"""Files and specs from others: they never run code, write outside their folder, or take a secret."""
from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest

from lab.errors import LabError
from tests.conftest import BUCKET, stop_ray


# ------------------------------------------------------------------ crafted .skops files (finding 1)
def _node(value) -> dict:
    """The skops tree of a plain value (as skops itself writes it)."""
    import skops.io

    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(value))) as archive:
        tree = json.loads(archive.read("schema.json"))
    for key in ("protocol", "_skops_version"):
        tree.pop(key, None)
    return tree


def crafted_skops(path, module: str, name: str, args: tuple) -> None:
    """A .skops file whose root node calls `module.name(*args)` when built (skops' LossNode calls its
    named constructor with the file's arguments: harmless only while that name is not trusted)."""
    import skops

    root = {"__class__": name, "__module__": module, "__loader__": "LossNode",
            "__reduce__": {"args": _node(args)}, "content": _node({}), "__id__": 1,
            "protocol": 2, "_skops_version": skops.__version__}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(root))


def payloads(marker):
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return [("numpy.testing", "runstring", (code, {})),
            ("builtins", "eval", (code,)),
            ("os", "system", (f"touch {marker}",))]


@pytest.mark.parametrize("which", range(3))
def test_a_crafted_skops_file_is_refused_before_anything_runs(tmp_path, which):
    from classical.cross_validation import load_pipeline

    marker = tmp_path / "pwned"
    module, name, args = payloads(marker)[which]
    path = tmp_path / "pipeline.skops"
    crafted_skops(path, module, name, args)
    try:
        load_pipeline(str(path))
        error = None
    except Exception as exc:  # noqa: BLE001 - checked below, after the marker
        error = exc
    assert not marker.exists(), f"loading {module}.{name} ran code"
    assert isinstance(error, LabError) and "\n" not in str(error)
    assert f"names types the lab does not trust (a skops file may run code): {module}.{name}" in str(error)
    with pytest.raises(LabError, match="does not trust"):  # the export folder is accepted as well
        load_pipeline(str(tmp_path))
    assert not marker.exists()


def catalogue_types() -> set[str]:
    """Every type beyond skops' defaults that the lab's fitted pipelines name (a few seconds)."""
    import warnings

    import numpy as np
    import pandas as pd
    import skops.io
    from sklearn.base import is_regressor
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline

    from classical import clustering, datasets, models
    from classical._transformers import preprocessor
    from classical.cross_validation import build_pipeline

    found: set[str] = set()

    def add(pipeline) -> None:
        found.update(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))

    rng = np.random.RandomState(0)
    X, labels, values = rng.rand(60, 4), np.arange(60) % 3, rng.rand(60)
    frame = pd.DataFrame({"a": rng.rand(60), "b": rng.rand(60) + 1, "c": rng.rand(60), "d": rng.rand(60),
                          "kind": np.array(["x", "y", "z"])[labels]})
    frame.loc[3, "a"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in models.names():
            pipeline = models.make(name)
            add(pipeline.fit(X, values if is_regressor(pipeline) else labels))
        knn = models.make("knn").set_params(kneighborsclassifier__algorithm="ball_tree")
        add(knn.fit(X, labels))
        for reduce in ("pca", "incremental_pca", "kernel_pca", "lle"):
            add(build_pipeline("logistic", reduce, 2).fit(X, labels))
        chapter2 = preprocessor(frame, ratios=["a/b"], log_columns=["c"], cluster_columns=["d"], n_clusters=3)
        add(make_pipeline(chapter2, LogisticRegression()).fit(frame, labels))
        add(make_pipeline(datasets.preprocessor(), Ridge()).fit(frame, values))
        for estimator in (KMeans(3, n_init=1), DBSCAN(), GaussianMixture(2), IsolationForest(n_estimators=5)):
            for data, scale, pca in ((X, False, 0), (X, True, 2), (frame, False, 2)):
                add(clustering.make_pipeline(data, scale, pca, estimator).fit(data))
    return found


@pytest.mark.slow
def test_the_trust_list_is_exactly_what_the_catalogue_needs():
    """Derived from the catalogue (every model, reducer, preprocessing, clustering and anomaly pipeline)."""
    from classical._skops_trust import TRUSTED_TYPES

    assert catalogue_types() == set(TRUSTED_TYPES)
    assert not any(t.endswith(".") or t in ("numpy", "sklearn", "scipy") for t in TRUSTED_TYPES)


# ------------------------------------------------------------------ a spec is data (finding 3)
SPEC = """
name: svc
workload: sklearn_cv
params: {dataset: iris, model: svc, cv_folds: 3, log_figures: false}
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""


def write_spec(tmp_path, text: str = SPEC, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_line_error(result, *fragments: str) -> str:
    from lab.registry import Registry

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lab: error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert not Registry().experiments()
    return result.stderr


def test_a_spec_file_does_not_choose_where_credentials_go(tmp_path, lab_home):
    from tests.conftest import lab, lab_in_process

    path = write_spec(tmp_path, SPEC + "mlflow: http://127.0.0.1:9/\nstorage: s3://their-bucket/runs\n")
    error = one_line_error(lab("run", path, "--dry-run", stdin=subprocess.DEVNULL),
                           "chooses where your runs and credentials go", "--trust-spec")
    assert "MLflow tracking server http://127.0.0.1:9/" in error and "storage s3://their-bucket/runs" in error
    assert lab_in_process("run", path, "--dry-run", "--trust-spec").returncode == 0
    # the command line's own choice replaces the spec's: nothing left to confirm
    ok = lab_in_process("run", path, "--dry-run", "--storage", str(tmp_path / "runs"), "--set", "mlflow=")
    assert ok.returncode == 0, ok.stderr
    assert lab_in_process("run", "svc-digits", "--dry-run").returncode == 0  # presets ship with the lab


@pytest.mark.parametrize("field, value", [
    ("mlflow", "http://alice:mlflow-pw-4711@127.0.0.1:9/"),
    ("storage", "s3://AKIAEXAMPLE:aws-secret-4711@bucket/runs"),
    ("storage", "s3://bucket/runs?secret_key=aws-secret-4711"),
    ("mlflow", "https://mlflow.example/?token=mlflow-pw-4711"),
])
def test_uris_with_credentials_are_refused_from_the_spec_set_and_environment(tmp_path, lab_home, field, value):
    from tests.conftest import lab, lab_in_process

    secret = "4711"
    results = [lab_in_process("run", write_spec(tmp_path, SPEC + f"{field}: '{value}'\n"), "--dry-run", "--trust-spec"),
               lab_in_process("run", "svc-digits", "--dry-run", "--set", f"{field}={value}")]
    env = {"storage": "LAB_STORAGE", "mlflow": "LAB_MLFLOW_URI"}[field]
    results.append(lab("run", write_spec(tmp_path), env={env: value, "LAB_MLFLOW_URI": "" if field == "storage" else value}))
    for result in results:
        assert secret not in one_line_error(result, "credential") + result.stdout


def test_only_step_params_of_the_catalogue_pipelines(tmp_path, lab_home):
    from tests.conftest import lab_in_process

    cache = tmp_path / "cache"
    for params in ("memory: " + str(cache), "steps: []", "svc__memory: x", "estimator_params: {memory: x}"):
        text = SPEC.replace("log_figures: false}", "log_figures: false, " + params + "}")
        one_line_error(lab_in_process("run", write_spec(tmp_path, text), "--dry-run"), "lab: error:")
    one_line_error(lab_in_process("run", "svc-digits", "--dry-run", "--set", f"memory={cache}"), "step__param")
    one_line_error(lab_in_process("run", "svc-digits", "--dry-run", "--set", "svc__C={a: 1}"), "svc__C")
    assert lab_in_process("run", "svc-digits", "--dry-run", "--set", "svc__C=3.0").returncode == 0
    assert not cache.exists()


@pytest.mark.parametrize("name", ["a,b", "a:b", "evil\x1b[2J", "../up", ".hidden", "x" * 101, "a b"])
def test_experiment_names_are_plain_words(tmp_path, lab_home, name):
    from lab import spec as specs
    from lab.errors import SpecError

    with pytest.raises(SpecError, match="name must be 1-100 letters") as info:
        specs.load(write_spec(tmp_path, SPEC.replace("name: svc", f"name: {json.dumps(name)}")))
    assert "\x1b" not in str(info.value)
    (spec,) = specs.load(write_spec(tmp_path), ["name=my_run-2.b"])
    assert spec.name == "my_run-2.b"


# ------------------------------------------------------------------ no secret in any artifact (finding 2)
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIALABFAKEKEY4711XYZ",
    "AWS_SECRET_ACCESS_KEY": "lab-fake-aws-secret-4711",
    "AWS_SESSION_TOKEN": "lab-fake-session-token-4711",
    "MLFLOW_TRACKING_USERNAME": "lab-mlflow-user",
    "MLFLOW_TRACKING_PASSWORD": "lab-fake-mlflow-password-4711",
    "RAY_AUTH_TOKEN": "labfakeraytoken4711labfakeraytoken4711",  # the token the local Ray instance uses
}
REGISTRY_PASSWORD = "lab-fake-registry-password-4711"


def files_holding(folder, needles: list[str]) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits += [f"{path}: {needle}" for needle in needles if needle.encode() in data]
    return hits


@pytest.fixture(scope="module")
def ray_with_secrets(tmp_path_factory):
    """Ray started with the fake secrets in its environment (its workers inherit them, as on a real node)."""
    import os

    stop_ray()  # the session's shared Ray: its workers would not have the secrets
    saved = {k: os.environ.get(k) for k in [*SECRETS, "LAB_HOME"]}
    os.environ.update(SECRETS)
    os.environ["LAB_HOME"] = str(tmp_path_factory.mktemp("ray-home"))
    from lab.infra.connect import connect

    connect(None, num_cpus=2)
    yield
    stop_ray()
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.mark.slow
@pytest.mark.postgres
def test_no_secret_in_anything_a_run_writes(tmp_path, lab_home, monkeypatch, s3_server, postgres_url,
                                            ray_with_secrets):
    """Local and s3:// runs with every credential in the environment: none of it in LAB_HOME, the storage,
    the bucket, the MLflow store or the registry's records."""
    from lab import spec as specs
    from lab.registry import Registry
    from lab.execution import runner

    env, client = s3_server
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    monkeypatch.setenv("LAB_REGISTRY_URL", f"postgresql://{user}:{REGISTRY_PASSWORD}@{rest}")  # trust auth: accepted
    monkeypatch.setenv("LAB_MLFLOW_URI", f"file://{tmp_path}/mlruns")
    local = tmp_path / "runs"
    for storage in (str(local), f"s3://{BUCKET}/secret-check"):
        (spec,) = specs.load(write_spec(tmp_path), [f"storage={storage}"])
        outcome = runner.run(spec)
        assert outcome.status == "completed", outcome
    needles = [*SECRETS.values(), REGISTRY_PASSWORD]
    hits = files_holding(lab_home, needles) + files_holding(local, needles) + files_holding(tmp_path / "mlruns", needles)
    for item in client.list_objects_v2(Bucket=BUCKET, Prefix="secret-check/")["Contents"]:
        data = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        hits += [f"s3://{BUCKET}/{item['Key']}: {n}" for n in needles if n.encode() in data]
    records = json.dumps([[e, Registry().trials(e["id"])] for e in Registry().experiments()], default=str)
    hits += [f"registry: {n}" for n in needles if n in records]
    assert any(p.name == "tuner.pkl" for p in local.rglob("*"))
    assert not hits, hits


def test_lab_submit_sends_no_password(monkeypatch):
    """`lab submit` passes LAB_* settings as the job's env vars (shown by the dashboard): no password."""
    from lab.infra import jobs

    monkeypatch.setenv("LAB_REGISTRY_URL", f"postgresql://lab:{REGISTRY_PASSWORD}@db.example/lab")
    env = jobs.job_env()
    assert env["LAB_REGISTRY_URL"] == "postgresql+psycopg://lab@db.example/lab"
    assert REGISTRY_PASSWORD not in json.dumps(env)


# ------------------------------------------------------------------ loading what others made (finding 4)
def fake_policy(folder):
    """A folder that looks like a `lab export` policy to the checks before loading."""
    folder.mkdir(parents=True)
    for name in ("saved_model.pb", "policy_specs.pbtxt"):
        (folder / name).write_bytes(b"")
    (folder / "lab_policy.json").write_text(json.dumps({"env_id": "CartPole-v1", "agent": "DQN"}))
    return folder


def test_eval_refuses_a_policy_this_lab_did_not_export(tmp_path, lab_home):
    from agents.saved_policy import load_policy
    from lab.results import provenance
    from tests.conftest import lab

    policy = fake_policy(tmp_path / "their" / "policy")
    result = lab("eval", str(policy.parent), "--episodes", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is a policy this lab did not export (loading it runs the code it holds): pass --trust" in result.stderr
    with pytest.raises(LabError, match="did not export"):
        load_policy(str(policy))
    provenance.record_export(str(policy))  # as `lab export` does
    assert provenance.written_here(str(policy))
    (policy / "saved_model.pb").write_bytes(b"changed")  # not what the lab wrote any more
    with pytest.raises(LabError, match="did not export"):
        load_policy(str(policy))
    (policy / "variables").symlink_to("/etc")
    with pytest.raises(LabError, match="symbolic link"):
        load_policy(str(policy), trust=False)


def test_keras_loader_refuses_a_model_this_lab_did_not_export(tmp_path, lab_home):
    from deep.loading import load_keras_model

    (tmp_path / "model.keras").write_bytes(b"PK")
    for path in (tmp_path, tmp_path / "model.keras"):
        with pytest.raises(LabError, match="is a Keras model this lab did not export"):
            load_keras_model(str(path))


def test_resume_refuses_a_folder_others_can_write(tmp_path, lab_home):
    """Tune unpickles <experiment>/tuner.pkl: a planted one must not run."""
    import os
    import pickle

    from lab.registry import Registry
    from tests.conftest import lab

    marker = tmp_path / "pwned"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "shared" / "svc-1"
    folder.mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(pickle.dumps(Planted()))
    os.chmod(folder / "tuner.pkl", 0o666)
    registry = Registry()
    experiment = registry.create_experiment({"name": "svc", "workload": "sklearn_cv", "metric": "cv/accuracy",
                                             "mode": "max"})
    registry.update_experiment(experiment, storage_path=str(folder), status="interrupted")
    result = lab("resume", str(experiment), env={"LAB_STORAGE": str(tmp_path / "shared")})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is not owned by you alone" in result.stderr and "mode 0o666" in result.stderr
    assert not marker.exists()


# ------------------------------------------------------------------ writes stay inside their folder (finding 5)
def test_export_refuses_a_non_empty_folder_and_a_symlink(tmp_path, lab_home):
    from tests.conftest import lab

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = lab("export", "1", "--out", str(out))
    assert result.returncode == 2 and f"--out {out} is not empty: pass --force" in result.stderr
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    result = lab("export", "1", "--out", str(link), "--force")
    assert result.returncode == 2 and "is a symbolic link" in result.stderr
    assert (out / "keep.txt").read_text() == "mine" and not (tmp_path / "elsewhere").exists()


# ------------------------------------------------------------------ one line, always (finding 6)
def test_a_closed_pipe_and_a_full_disk_end_with_one_line_at_most(lab_home):
    import shutil

    lab_bin = shutil.which("lab", path=str(__import__("pathlib").Path(__import__("sys").executable).parent))
    for command in ("presets", "ls"):
        piped = subprocess.run(f"'{lab_bin}' {command} | head -c1", shell=True, capture_output=True, text=True)
        assert piped.stderr == "", piped.stderr
    full = subprocess.run(f"'{lab_bin}' presets > /dev/full", shell=True, capture_output=True, text=True)
    assert full.returncode == 2 and full.stderr == "lab: error: no space left on the device\n", full.stderr


def test_a_closed_terminal_ends_a_command_quietly(lab_home):
    """SIGHUP while `lab submit` waits on a dashboard that never answers: exit 129, no traceback."""
    import signal
    import socket
    import sys
    import time
    from pathlib import Path

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        process = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "submit", "svc-digits",
                                    "--address", f"http://127.0.0.1:{port}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(6)  # the spec is checked, then the client waits for the dashboard's answer
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGHUP)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 129 and "Traceback" not in err and out == "", err

"""The Python API and the commands across experiments, over a registry filled the way Tune fills it."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import lab
from lab.cli import main as cli_main
from lab.infra import storage
from lab.registry import Registry
from tests.conftest import lab as lab_cli
from tests.conftest import lab_in_process

SPEC = {"name": "svc", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max",
        "params": {"dataset": "digits", "model": "svc"},
        "search": {"svc__C": {"loguniform": [0.1, 100.0]}, "svc__kernel": {"choice": ["rbf", "linear"]}}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, monkeypatch):
    """The registry the API and the `lab` subprocesses use: LAB_HOME's SQLite, or an emptied PostgreSQL."""
    if request.param == "postgres":
        from tests.conftest import clean_postgres

        monkeypatch.setenv("LAB_REGISTRY_URL", clean_postgres(request.getfixturevalue("postgres_url")))
    return request.param


def fake_sweep(home: Path, trials: int = 12, spec: dict | None = None, user: str = "ann", seed: int = 0) -> int:
    """An experiment as a finished sweep leaves it: trials in the registry, progress.csv in each trial folder.

    The kernel decides the score (rbf +0.1), C barely matters: importance must see that.
    """
    registry = Registry()
    exp_id = registry.create_experiment(spec or SPEC, user=user,
                                        environment={"python": "3.11.9", "packages": {"numpy": "2.3.5"}})
    identity = registry.experiment(exp_id)["uuid"]
    folder = home / "experiments" / f"svc-{exp_id}-{identity.replace('-', '')[:12]}"
    storage.claim(storage.Storage(uri=str(folder), path=str(folder)), storage.marker_of(exp_id, identity, "svc"))
    registry.update_experiment(exp_id, storage_path=str(folder))
    rng = random.Random(seed)
    for i in range(trials):
        C, kernel = 10 ** rng.uniform(-1, 2), ["rbf", "linear"][i % 2]
        score = 0.8 + 0.1 * (kernel == "rbf") + 0.005 * rng.random()
        trial_dir = folder / f"sklearn_cv_{i:05d}"
        trial_dir.mkdir(parents=True)
        lines = ["cv/accuracy,training_iteration,time_total_s,config/svc__C,hostname"]
        lines += [f"{score - 0.05 * (3 - it)},{it},{it * 0.1},{C},node" for it in (1, 2, 3)]
        (trial_dir / "progress.csv").write_text("\n".join(lines) + "\n")
        registry.upsert_trial(exp_id, f"{i:05d}", status="TERMINATED", iterations=3, logdir=str(trial_dir),
                              config={"svc__C": C, "svc__kernel": kernel, "seed": 0, "dataset": "digits"},
                              last_result={"cv/accuracy": score, "test/accuracy": score - 0.01},
                              best_metric=score, best_result={"cv/accuracy": score})
    registry.update_experiment(exp_id, status="completed")
    return exp_id


def test_import_lab_is_light():
    code = ("import sys, lab; names = lab.__all__; callable(lab.experiments); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'ray', 'tf_keras', 'pandas', 'optuna')]; "
            "print(heavy); assert not heavy, heavy; assert {'run', 'experiments', 'trials', 'history', 'load'} <= set(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_dataframes_of_experiments_trials_and_history(lab_home, backend):
    a = fake_sweep(lab_home)
    b = fake_sweep(lab_home, trials=2, spec={**SPEC, "workload": "dqn", "params": {"env_id": "CartPole-v1"}})
    lab.tag(a, team="vision")
    frame = lab.experiments()
    assert list(frame["id"]) == [b, a] and list(frame["num_trials"]) == [2, 12]
    assert frame.set_index("id").loc[a, "best"] == pytest.approx(lab.trials(a)["best_metric"].max())
    assert list(lab.experiments(where="workload = dqn")["id"]) == [b]
    assert list(lab.experiments(tags={"team": "vision"})["id"]) == [a]
    trials = lab.trials(a)
    assert len(trials) == 12 and {"config.svc__C", "config.svc__kernel", "cv/accuracy", "test/accuracy"} <= set(trials)
    assert list(trials.columns[:5]) == ["experiment_id", "trial_id", "status", "iterations", "best_metric"]
    history = lab.history(a)
    assert len(history) == 36 and {"trial_id", "training_iteration", "cv/accuracy"} <= set(history)
    assert not [c for c in history.columns if c.startswith("config/") or c == "hostname"]
    one = lab.history(a, trial="00003")
    assert list(one["training_iteration"]) == [1, 2, 3] and set(one["trial_id"]) == {"00003"}


def test_compare_and_leaderboard(lab_home, backend):
    a = fake_sweep(lab_home, user="ann")
    b = fake_sweep(lab_home, trials=4, spec={**SPEC, "params": {"dataset": "digits", "model": "rbf_svc"}}, user="bob",
                   seed=1)
    table = lab.compare(a, b)
    assert list(table.columns) == [a, b]
    assert table.loc["spec.params.model"].tolist() == ["svc", "rbf_svc"]
    assert "spec.workload" not in table.index  # equal everywhere: not a difference
    assert "metric.cv/accuracy" in table.index and "best.trial_id" in table.index
    board = lab.leaderboard(workload="sklearn_cv", dataset="digits", limit=5)
    assert len(board) == 5 and board.attrs["metric"] == "cv/accuracy"
    assert board["value"].is_monotonic_decreasing and set(board["user"]) <= {"ann", "bob"}
    with pytest.raises(lab.LabError, match="at least two"):
        lab.compare(a)
    with pytest.raises(lab.RegistryError, match="no experiment with id 77"):
        lab.compare(a, 77)


def test_importance_finds_the_parameter_that_matters(lab_home):
    exp_id = fake_sweep(lab_home, trials=16)
    scores = lab.importance(exp_id)
    assert list(scores.index) == ["svc__kernel", "svc__C"] and scores["svc__kernel"] > 0.8
    assert scores.sum() == pytest.approx(1.0)
    few = fake_sweep(lab_home, trials=1)
    with pytest.raises(lab.LabError, match="needs at least 2"):
        lab.importance(few)


def test_load_of_a_trial_without_checkpoint_is_one_line_and_changes_nothing(lab_home):
    exp_id = fake_sweep(lab_home, trials=2)
    before = lab.trials(exp_id).to_dict()
    with pytest.raises(lab.LabError, match="has no checkpoint") as info:
        lab.load(exp_id)
    assert "\n" not in str(info.value) and lab.trials(exp_id).to_dict() == before
    with pytest.raises(lab.LabError, match="has no trial 'nope'"):
        lab.load(exp_id, trial="nope")


def test_environment_record_names_versions_and_a_dirty_tree(tmp_path, monkeypatch):
    from lab.results import environment

    repo = tmp_path / "src"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "f.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    monkeypatch.setattr(environment, "SOURCE", repo)
    info, diff = environment.record()
    assert info["git_dirty"] is False and diff == "" and len(info["git_commit"]) == 40
    assert info["python"].count(".") == 2 and {"numpy", "scikit-learn", "ray", "tensorflow"} <= set(info["packages"])
    (repo / "f.py").write_text("x = 2\n")
    monkeypatch.delenv("LAB_RECORD_DIFF", raising=False)
    info, diff = environment.record()  # the diff itself only when asked for
    assert info["git_dirty"] is True and diff == "" and "diff_file" not in info
    monkeypatch.setenv("LAB_RECORD_DIFF", "1")
    info, diff = environment.record()
    assert info["git_dirty"] is True and "+x = 2" in diff and info["diff_file"] == environment.DIFF_FILE
    monkeypatch.setattr(environment, "SOURCE", tmp_path)  # not a checkout
    info, diff = environment.record()
    assert info["git_commit"] is None and info["git_dirty"] is None


# ------------------------------------------------------------------ the CLI
def test_cli_ls_where_tag_note_show(lab_home, backend, capsys):
    a = fake_sweep(lab_home)
    b = fake_sweep(lab_home, trials=2, spec={**SPEC, "workload": "dqn", "params": {"env_id": "CartPole-v1"}})
    out = lab_in_process("tag", str(a), "team=vision", "stage=baseline")
    assert out.returncode == 0 and "team=vision" in out.stdout
    assert lab_in_process("note", str(a), "C barely matters").returncode == 0
    out = lab_in_process("ls", "--where", "tag.team = vision and metric.cv/accuracy > 0.5")
    assert out.returncode == 0 and [line.split()[0] for line in out.stdout.splitlines()[1:]] == [str(a)]
    out = lab_in_process("ls", "--tag", "team=vision", "--where", "workload = dqn")
    assert "no experiments match" in out.stdout
    out = lab_in_process("show", str(a))
    assert "team=vision" in out.stdout and "C barely matters" in out.stdout
    assert "python 3.11.9" in out.stdout and "numpy==2.3.5" in out.stdout and 'model="svc"' in out.stdout
    shown = json.loads(lab_in_process("show", str(a), "--json").stdout)
    assert shown["tags"] == {"stage": "baseline", "team": "vision"} and shown["notes"][0]["text"] == "C barely matters"
    assert shown["environment"]["packages"] == {"numpy": "2.3.5"}
    out = lab_in_process("ls", "--where", "status = completed or name = x")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "lab: error: --where: expected 'and' between conditions, got 'or'"]
    for args, message in ((["tag", "999", "a=b"], "no experiment with id 999"),
                          (["tag", str(a), "--rm", "nosuch"], "has no tag 'nosuch'"),
                          (["tag", str(a), "justakey"], "KEY=VALUE"),
                          (["note", "999", "x"], "no experiment with id 999"),
                          (["show", "999"], "no experiment with id 999"),
                          (["rerun", "999"], "no experiment with id 999"),
                          (["rm", "999", "--yes"], "no experiment with id 999"),
                          (["compare", str(a), "999"], "no experiment with id 999"),
                          (["importance", "999"], "no experiment with id 999"),
                          (["report", "999"], "no experiment with id 999"),
                          (["leaderboard", "--where", "best > x"], "compares with a number")):
        capsys.readouterr()
        code = cli_main(args)  # in-process: the same handlers and error path as the console script
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("lab: error: "), args
    assert Registry().tags(a) == {"stage": "baseline", "team": "vision"}  # the failed commands changed nothing
    assert lab_in_process("tag", str(a), "--rm", "stage").returncode == 0 and Registry().tags(a) == {"team": "vision"}
    out = lab_in_process("compare", str(a), str(b))
    assert out.returncode == 0 and "spec.workload" in out.stdout and f"EXP {b}" in out.stdout
    out = lab_in_process("leaderboard", "--workload", "sklearn_cv", "--dataset", "digits", "--limit", "3")
    assert out.returncode == 0 and "ranked by cv/accuracy (max)" in out.stdout and len(out.stdout.splitlines()) == 5
    out = lab_in_process("leaderboard", "--workload", "sklearn_cv", "--metric", "nosuch/metric")
    assert out.returncode == 2 and "ranked by metric 'nosuch/metric'" in out.stderr
    out = lab_in_process("importance", str(a))
    assert out.returncode == 0 and out.stdout.splitlines()[2].startswith("svc__kernel")


def test_cli_rm_refuses_a_running_experiment_and_deletes_otherwise(lab_home, backend):
    from lab.registry import now

    a = fake_sweep(lab_home, trials=2)
    folder = Path(Registry().experiment(a)["storage_path"])
    Registry().update_experiment(a, status="running", heartbeat_at=now())
    out = lab_in_process("rm", str(a), "--yes")
    assert out.returncode == 2 and "is running" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert folder.is_dir() and len(Registry().trials(a)) == 2
    Registry().update_experiment(a, status="completed")
    out = lab_cli("rm", str(a), stdin=subprocess.DEVNULL)  # no terminal to confirm in
    assert out.returncode == 2 and "--yes" in out.stderr and folder.is_dir()
    out = lab_in_process("rm", str(a), "--yes")
    assert out.returncode == 0 and not folder.exists()
    assert lab_in_process("show", str(a)).returncode == 2 and Registry().trials(a) == []
    assert lab_in_process("rm", str(a), "--yes").returncode == 2


# ------------------------------------------------------------------ the report, in a real browser
def chromium_dom(html_file: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") or os.environ.get("LAB_REQUIRE_CHROMIUM") == "1":  # set by `make test` as root
            pytest.fail("chromium is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", html_file.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_report_renders_its_plots_in_chromium(lab_home, tmp_path):
    exp_id = fake_sweep(lab_home, trials=6)
    lab.note(exp_id, "a <b>bold</b> claim")
    out = lab_cli("report", str(exp_id), "--out", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "report.html").read_text()
    assert '<script src="plotly.min.js"' in page and "plotly.js v" not in page  # plotly.js once, beside the pages
    assert "plotly.js v" in (tmp_path / "plotly.min.js").read_text()
    assert "a &lt;b&gt;bold&lt;/b&gt; claim" in page and "numpy==2.3.5" in page
    dom = chromium_dom(tmp_path / "report.html")
    assert dom.count('class="main-svg"') >= 2  # both figures drawn by plotly.js
    assert 'class="scatterlayer' in dom and 'class="trace scatter' in dom  # the learning curves
    assert 'class="parcoords"' in dom  # the parallel coordinates
    assert dom.count('class="trace scatter') == 6  # one curve per trial
    out = lab_cli("report", str(exp_id), "--out", str(tmp_path / "no" / "such" / "r.html"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_rerun_of_a_recorded_spec_naming_its_own_storage_needs_trust(lab_home, tmp_path):
    exp_id = Registry().create_experiment({**SPEC, "storage": str(tmp_path / "elsewhere")})
    with pytest.raises(lab.SpecError, match="--trust-spec"):
        lab.rerun(exp_id)
    out = lab_cli("rerun", str(exp_id), stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "--trust-spec" in out.stderr
    assert len(Registry().experiments()) == 1 and not (tmp_path / "elsewhere").exists()

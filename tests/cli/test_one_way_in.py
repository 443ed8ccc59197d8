"""One way in (lab/spec/runnable.py): every way a spec comes in (`lab run`, `lab.run` with a file or a dict,
`lab rerun`, `lab.rerun`, `lab resume`, `lab baselines`) gives the same errors and warnings, and each check runs
once. Nothing here starts Ray: the address given is a closed port, so a spec that passes every check ends at
the connection (`cannot reach the Ray cluster at 127.0.0.1:1`), after the checks and before anything is recorded."""
from __future__ import annotations

import hashlib

import pytest
import yaml

from lab import api  # lab.run and lab.rerun themselves (the `lab.run` package hides `lab.run` once imported)
from lab.cli import main
from lab.errors import ClusterError, SpecError
from lab.registry import Registry

CLOSED = "127.0.0.1:1"  # nothing listens: connect() refuses at once
PASSED = ("passed every check",)
# what ends a run or resume after every check of its spec: the closed port, or (resume) no Tune state recorded
AFTER_THE_CHECKS = ("cannot reach the Ray cluster at 127.0.0.1:1", "has no resumable Tune state (no storage folder")
BASE = {"name": "oneway", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max",
        "params": {"dataset": "iris", "model": "logistic", "log_figures": False},
        "stop": {"training_iteration": 1}}



@pytest.fixture(autouse=True)
def no_ray_in_this_process():
    """Every way in runs as from a fresh process: a Ray left connected by an earlier test (the session's
    shared one) would let `lab.run` skip the closed address these cases end on."""
    import ray

    if ray.is_initialized():
        ray.shutdown()

def _csv(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    return str(path)


def _cases(tmp_path):
    """name -> (raw spec, whether it needs trust): the edge cases and the hostile ones."""
    params = BASE["params"]
    csv = _csv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    stale = hashlib.sha256(b"what the file held when it was recorded").hexdigest()
    return {
        "whole randint bounds": ({**BASE, "search": {"cv_folds": {"randint": [2.0, 4.0]}}}, False),
        "non-whole randint bounds": ({**BASE, "search": {"cv_folds": {"randint": [2.5, 4]}}}, False),
        "per-trial seeds": ({**BASE, "seed": "per_trial", "num_samples": 2}, False),
        "identical trials": ({**BASE, "num_samples": 3}, False),
        "changed CSV": ({**BASE, "params": {**params, "dataset": csv, "target": "y", "data_sha256": stale}}, False),
        "unknown parameter": ({**BASE, "params": {**params, "learning_rat": 0.1}}, False),
        "wrong type": ({**BASE, "params": {**params, "cv_folds": "three"}}, False),
        "unknown metric": ({**BASE, "metric": "cv/acuracy"}, False),
        "malformed search": ({**BASE, "search": {"cv_folds": {"normal": [2, 4]}, "test_size": [0.2]}}, False),
        "empty range": ({**BASE, "search": {"cv_folds": {"randint": [4, 2]}}}, False),
        "credential in storage": ({**BASE, "storage": "s3://me:hunter2@bucket/runs"}, False),
        "credential in mlflow": ({**BASE, "mlflow": "http://mlflow.example/?token=hunter2"}, False),
        "storage needs trust": ({**BASE, "storage": str(elsewhere)}, True),
    }


def _record(raw) -> int:
    return Registry().create_experiment(raw)


def _file(raw, tmp_path) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _cli(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    errors = [line.removeprefix("lab: error: ") for line in err if line.startswith("lab: error: ")]
    told = tuple(line for line in err if line.startswith(("lab: warning", "lab: note")))
    if any(after in line for line in errors for after in AFTER_THE_CHECKS):
        return PASSED, told
    assert code == 2 and errors, err
    return tuple(errors), told


def _api(call, capsys):
    try:
        call()
    except ClusterError as exc:
        assert "cannot reach the Ray cluster at 127.0.0.1:1" in str(exc)
        outcome = PASSED
    except SpecError as exc:
        outcome = tuple(str(exc).splitlines())
    else:
        raise AssertionError("a run with a closed address cannot succeed")
    err = capsys.readouterr().err.splitlines()
    return outcome, tuple(line for line in err if line.startswith(("lab: warning", "lab: note")))


def _trust(flag: bool) -> list[str]:
    return ["--trust-spec"] if flag else []


def _recorded(experiment_id: int) -> str:
    return f"experiment {experiment_id}'s recorded spec"


def _run_file(raw, tmp, trust, cap):
    path = _file(raw, tmp)
    return _cli(["run", path, "--address", CLOSED, *_trust(trust)], cap), path


def _api_file(raw, tmp, trust, cap):
    path = _file(raw, tmp)
    return _api(lambda: api.run(path, address=CLOSED, trust_spec=trust), cap), path


def _api_dict(raw, tmp, trust, cap):
    return _api(lambda: api.run(raw, address=CLOSED), cap), "the spec dict"


def _rerun(raw, tmp, trust, cap):
    experiment_id = _record(raw)
    return _cli(["rerun", str(experiment_id), "--address", CLOSED, *_trust(trust)], cap), _recorded(experiment_id)


def _api_rerun(raw, tmp, trust, cap):
    experiment_id = _record(raw)
    return _api(lambda: api.rerun(experiment_id, address=CLOSED, trust_spec=trust), cap), _recorded(experiment_id)


def _resume(raw, tmp, trust, cap):
    experiment_id = _record(raw)
    return _cli(["resume", str(experiment_id), "--address", CLOSED], cap), _recorded(experiment_id)


# each way in: (raw, tmp_path, trust, capsys) -> ((errors or PASSED, warnings), the label its source has)
WAYS = {"lab run FILE": _run_file, "lab.run(FILE)": _api_file, "lab.run(dict)": _api_dict,
        "lab rerun ID": _rerun, "lab.rerun(ID)": _api_rerun, "lab resume ID": _resume}
TRUSTED_BY_SOURCE = {"lab.run(dict)", "lab resume ID"}  # a caller's own dict; resume uses its Tune state's services


def _normal(lines, label: str):
    """The lines with the source's own label (a file path, an experiment id) as <spec>."""
    return tuple(line.replace(label, "<spec>") for line in lines)


def _through_every_way(raw, tmp_path, capsys, trust=False):
    seen = {}
    for way, call in WAYS.items():
        (outcome, told), label = call(raw, tmp_path, trust, capsys)
        seen[way] = (_normal(outcome, label), _normal(told, label))
    return seen


CASES = ["whole randint bounds", "non-whole randint bounds", "per-trial seeds", "identical trials", "changed CSV",
         "unknown parameter", "wrong type", "unknown metric", "malformed search", "empty range",
         "credential in storage", "credential in mlflow", "storage needs trust"]


@pytest.mark.parametrize("case", CASES)
def test_the_same_spec_meets_the_same_checks_through_every_way_in(case, tmp_path, lab_home, capsys):
    cases = _cases(tmp_path)
    assert list(cases) == CASES
    raw, needs_trust = cases[case]
    seen = _through_every_way(raw, tmp_path, capsys)
    expected = {}
    for way, (outcome, told) in seen.items():
        group = "trusted" if needs_trust and way in TRUSTED_BY_SOURCE else "asked"
        expected.setdefault(group, (outcome, told))
        assert (outcome, told) == expected[group], f"{case}: {way} differs from the others:\n{seen}"
    outcome, told = expected["asked"]
    if case in ("whole randint bounds", "per-trial seeds"):
        assert outcome == PASSED and told == ()
    elif case == "identical trials":
        assert outcome == PASSED and len(told) == 1 and "would be identical" in told[0]
    else:
        assert outcome != PASSED and all(line for line in outcome), outcome
        assert not any("hunter2" in line for line in outcome)  # a credential is never shown
    if needs_trust:
        assert "pass --trust-spec" in outcome[0] and expected["trusted"][0] == PASSED


def test_the_trust_flag_lets_a_spec_choose_its_storage_through_every_way_in(tmp_path, lab_home, capsys):
    raw, _ = _cases(tmp_path)["storage needs trust"]
    seen = _through_every_way(raw, tmp_path, capsys, trust=True)
    assert {outcome for outcome, _ in seen.values()} == {PASSED}, seen


def test_the_errors_name_what_is_wrong(tmp_path, lab_home, capsys):
    """What the shared errors say, read through `lab run`."""
    cases = _cases(tmp_path)
    wants = {
        "non-whole randint bounds": "parameter 'cv_folds'",
        "changed CSV": "changed since the experiment was recorded",
        "unknown parameter": "unknown parameter 'learning_rat'",
        "wrong type": "parameter 'cv_folds'",
        "unknown metric": "metric 'cv/acuracy' is not reported",
        "malformed search": "unknown distribution 'normal'",
        "empty range": "low < high",
        "credential in storage": "storage must not carry credentials",
        "credential in mlflow": "mlflow must not carry credentials",
    }
    for case, want in wants.items():
        outcome, _ = _cli(["run", _file(cases[case][0], tmp_path), "--address", CLOSED], capsys)
        assert any(want in line for line in outcome), (case, outcome)


def test_baselines_meet_the_checks_of_any_spec(tmp_path, lab_home, capsys):
    """`lab baselines` builds its own spec; a model it does not know fails as the same spec would in a file."""
    ran, _ = _cli(["baselines", "iris", "--models", "logistic,nope", "--cv", "3", "--address", CLOSED], capsys)
    from classical.baselines import baseline_spec

    raw = baseline_spec("iris", models=["logistic", "nope"], cv_folds=3).to_dict()
    same, _ = _cli(["run", _file(raw, tmp_path), "--address", CLOSED], capsys)
    assert ran == _normal(same, str(tmp_path / "spec.yaml")) != PASSED
    assert any("nope" in line for line in ran), ran


def test_each_check_runs_once_for_one_load(tmp_path, lab_home, capsys, monkeypatch):
    """One `lab run` of a spec with a 3-value search: the workload's config made once for the fixed params
    and once per searched value, the metric check and the registry check once each."""
    import importlib

    from lab import workload as workloads
    from lab.spec import metrics

    runnable = importlib.import_module("lab.spec.runnable")  # the module (lab.spec.runnable is the function)

    calls = {"make_config": 0, "check_metrics": 0, "registry.check": 0}

    def counting(name, real):
        def count(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return count

    cls = workloads.get("sklearn_cv")
    monkeypatch.setattr(cls, "make_config", classmethod(counting("make_config", cls.make_config.__func__)))
    check = counting("check_metrics", metrics.check_metrics)
    monkeypatch.setattr(metrics, "check_metrics", check)
    monkeypatch.setattr(runnable, "check_metrics", check)
    monkeypatch.setattr(Registry, "check", counting("registry.check", Registry.check))
    raw = {**BASE, "search": {"test_size": {"grid": [0.2, 0.25, 0.3]}}}
    for way in (["run", _file(raw, tmp_path), "--address", CLOSED],
                ["rerun", str(_record({**raw, "name": "recorded"})), "--address", CLOSED]):
        calls.update(dict.fromkeys(calls, 0))
        outcome, _ = _cli(way, capsys)
        assert outcome == PASSED
        assert calls == {"make_config": 1 + 3, "check_metrics": 1, "registry.check": 1}, (way[0], calls)
    calls.update(dict.fromkeys(calls, 0))
    outcome, _ = _api(lambda: api.run(raw, address=CLOSED), capsys)
    assert outcome == PASSED and calls == {"make_config": 4, "check_metrics": 1, "registry.check": 1}, calls


def test_the_trust_decision_reads_the_flag_not_the_label(tmp_path):
    """A source labelled like a preset is still asked about its services when it is not trusted."""
    from lab import spec as specs
    from lab.spec import Source, runnable

    raw = {**BASE, "storage": str(tmp_path / "elsewhere")}
    with pytest.raises(SpecError, match="pass --trust-spec"):
        runnable(raw, Source("file", "preset 'svc-digits'", trusted=False))
    assert runnable(raw, Source("file", "spec.yaml", trusted=True)).storage == raw["storage"]
    (preset,) = specs.load("svc-digits", [f"storage={tmp_path / 'mine'}"])
    assert preset.source == Source.preset("svc-digits") and preset.source.trusted


def test_the_search_space_is_typed(tmp_path):
    from lab.spec import Distribution, Source, runnable

    spec = runnable({**BASE, "search": {"cv_folds": {"randint": [2.0, 4.0]}, "test_size": {"choice": [0.2, 0.3]}}},
                    Source.mapping())
    assert spec.distributions == {"cv_folds": Distribution("randint", (2, 4)),
                                  "test_size": Distribution("choice", (0.2, 0.3))}
    assert spec.search["cv_folds"] == {"randint": [2, 4]} and isinstance(spec.search["cv_folds"]["randint"][0], int)
    assert "source" not in spec.to_dict() and "distributions" not in spec.to_dict()

"""Property-based fuzzing (Hypothesis): the spec loader, `--set`, the search space and registry names.

Every input ends in a valid spec (or record) or the lab's own one-line error (a LabError), never another
exception. CASES inputs per property (LAB_FUZZ_CASES to change it); `pytest -s` prints the counts.
"""
from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import spec as specs
from lab.errors import LabError, SpecError
from lab.registry import Registry

CASES = int(os.environ.get("LAB_FUZZ_CASES") or 1000)
FUZZ = settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
COUNTS: dict[str, int] = {}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
FIELDS = ["name", "workload", "metric", "mode", "num_samples", "params", "search", "stop", "scheduler", "searcher",
          "resources", "seed", "max_failures", "checkpoint_every", "time_budget_s", "reference", "storage", "suite"]
BASE = {"name": "fuzz", "workload": "sklearn_cv", "metric": "cv/accuracy",
        "params": {"dataset": "iris", "model": "logistic"}}
distributions = st.dictionaries(
    st.sampled_from([*specs.DISTRIBUTIONS, "gird", "normal"]),
    st.one_of(values, st.lists(st.one_of(st.integers(-5, 5), st.floats(-10, 10)), min_size=0, max_size=3)),
    min_size=0, max_size=2)


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _ends_well(fn, *args):
    """Run `fn`: a result, or the lab's own error (one line; a spec's problems one per line); anything else
    fails the property."""
    try:
        return fn(*args)
    except LabError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.strip() for line in lines), repr(exc)
        assert isinstance(exc, SpecError) or len(lines) == 1, repr(exc)
        return None


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
def test_spec_fields(raw):
    _count("spec fields")
    _ends_well(lambda: specs.validated({**BASE, **raw}, "fuzz", say=lambda line: None))


yaml_texts = st.one_of(
    st.text(max_size=200),
    st.builds(lambda raw: yaml.safe_dump({**BASE, **raw}), st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)),
)


@FUZZ
@given(text=yaml_texts)
def test_spec_files(text, tmp_path_factory):
    _count("spec files")
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(text)
    _ends_well(lambda: specs.load(str(path), trust_spec=True, say=lambda line: None))


@FUZZ
@given(overrides=st.lists(st.one_of(st.text(max_size=30),
                          st.builds(lambda k, v: f"{k}={v}", st.sampled_from(FIELDS + ["params.model", "C", "a.b.c"]),
                                    st.text(max_size=20))), max_size=3))
def test_set_overrides(overrides):
    _count("--set overrides")
    _ends_well(lambda: specs.load("svc-digits", overrides, say=lambda line: None))


@FUZZ
@given(search=st.dictionaries(st.sampled_from(["svc__C", "svc__gamma", "svc__kernel", "unknown"]), distributions, max_size=3))
def test_search_spaces(search):
    _count("search spaces")
    spec = _ends_well(lambda: specs.validated({**BASE, "params": {"dataset": "digits", "model": "svc"},
                                               "search": search}, "fuzz", say=lambda line: None))
    if spec is not None:
        from lab.execution import search as searches

        space = searches.param_space(spec)
        assert set(search) <= set(space)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'registry.db'}")


@FUZZ
@given(name=st.text(min_size=0, max_size=300), trial_id=st.text(min_size=0, max_size=120))
def test_registry_names(registry, name, trial_id, tmp_path_factory):
    """A name the spec accepts is stored as is and makes a folder (`NAME-ID`) on any file system."""
    _count("registry names")
    spec = _ends_well(lambda: specs.validated({**BASE, "name": name}, "fuzz", say=lambda line: None))
    if spec is None:
        return
    experiment_id = registry.create_experiment(spec.to_dict())
    assert registry.experiment(experiment_id)["name"] == name
    (tmp_path_factory.getbasetemp() / f"{name}-{experiment_id}").mkdir()
    if _ends_well(lambda: registry.upsert_trial(experiment_id, trial_id, status="RUNNING")) is None and trial_id:
        assert [t["trial_id"] for t in registry.trials(experiment_id)] == [trial_id]


def teardown_module():
    print("\nfuzz cases run: " + ", ".join(f"{name} {count}" for name, count in COUNTS.items()))

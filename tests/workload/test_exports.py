"""Exports that load anywhere: model.json's input schema, README's recipes run where the lab cannot be imported,
`lab.load(...).predict`, and `lab.load` leaving no temporary folder behind."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BLOCKED = ("lab", "classical", "deep", "agents", "envs")
# Runs a recipe with the lab's packages unimportable (whatever sys.path or an editable install says).
WITHOUT_LAB = f"""
import importlib.abc, runpy, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"no module named {{name!r}} (the lab is not installed here)")
sys.meta_path.insert(0, Refuse())
try:
    import lab
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the lab can be imported")
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def readme_recipes() -> list[str]:
    """The ```python blocks of README's section "Using an exported model without the lab"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using an exported model without the lab", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def recipe_for(kind: str) -> str:
    marker = {"pipeline": "skops.io.load", "policy": "tf.saved_model.load", "keras": "tf_keras.models.load_model"}[kind]
    found = [r for r in readme_recipes() if marker in r]
    assert len(found) == 1, f"README has {len(found)} {kind} recipes"
    return found[0]


def run_without_lab(code: str, folder: Path) -> subprocess.CompletedProcess:
    script = folder.parent / f"recipe-{folder.name}.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", WITHOUT_LAB, str(script)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{kind: export folder} of a tiny trained scikit-learn pipeline, Keras classifier and DQN policy."""
    from lab.workload.testing import make

    root = tmp_path_factory.mktemp("exports")
    folders = {}
    for kind, name, params in (
            ("pipeline", "sklearn_cv", {"dataset": "iris", "model": "logistic", "cv_folds": 2}),
            ("keras", "keras_classifier", None),
            ("policy", "dqn", None)):
        workload = make(name, params, trial_dir=str(root / f"{kind}-run"))
        try:
            workload.step()
            folders[kind] = root / kind
            folders[kind].mkdir()
            workload.export(str(folders[kind]))
        finally:
            workload.close()
    return folders


def test_model_json_has_an_input_schema_and_no_lab_loader(exports):
    pipeline = json.loads((exports["pipeline"] / "model.json").read_text())
    assert pipeline["input_schema"] == {"kind": "array", "shape": [None, 4], "dtype": "float64"}
    assert "classical" not in pipeline["load"]["python"] and pipeline["load"]["needs_modules"] == []
    policy = json.loads((exports["policy"] / "model.json").read_text())
    assert policy["input_schema"]["observation"]["shape"] == [4]
    assert policy["input_schema"]["observation"]["dtype"] == "float32"
    assert policy["input_schema"]["action"] | {} == {"shape": [], "dtype": "int64", "minimum": 0, "maximum": 1}
    keras = json.loads((exports["keras"] / "model.json").read_text())
    (model,) = keras["models"]
    assert model["file"] == "model.keras" and model["custom_objects"] == []
    assert model["input_schema"][0]["shape"] == [None, 8, 8, 1]


@pytest.mark.parametrize("kind", ["pipeline", "policy", "keras"])
def test_readme_recipe_runs_where_the_lab_cannot_be_imported(exports, kind):
    result = run_without_lab(recipe_for(kind), exports[kind])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the recipe printed no prediction"


@pytest.mark.parametrize("kind", ["pipeline", "policy", "keras"])
def test_model_json_recipe_runs_where_the_lab_cannot_be_imported(exports, kind):
    recipe = json.loads((exports[kind] / "model.json").read_text())["load"]["python"]
    result = run_without_lab(recipe, exports[kind])
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_skops_recipe_refuses_a_file_naming_types_the_export_did_not_list(exports, tmp_path):
    import shutil

    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path / "swapped"
    shutil.copytree(exports["pipeline"], folder)
    assert json.loads((folder / "model.json").read_text())["load"]["trusted_types"] == []  # logistic: none
    skops.io.dump(DecisionTreeClassifier().fit(*load_iris(return_X_y=True)), folder / "pipeline.skops")
    result = run_without_lab(recipe_for("pipeline"), folder)
    assert result.returncode != 0 and "not loading pipeline.skops: it names ['sklearn.tree._tree.Tree']" in result.stderr

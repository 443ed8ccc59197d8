"""The package layering, read from the source with `ast` (every import, at module level or inside a function).

    lab/        the core: imports none of the packages below (they plug in through entry points)
    envs/       plain Gymnasium: imports neither `lab` nor TensorFlow, TF-Agents or Ray
    classical/, deep/, agents/   the leaves: import the core (agents also `envs`), never each other
"""
from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lab", "envs", "imagesets", "classical", "deep", "agents")
HEAVY = {"tensorflow", "tf_keras", "tf_agents", "tensorflow_probability", "ray"}
ALLOWED = {  # package -> the project's packages it may import
    "lab": {"lab"},
    "envs": {"envs"},
    "imagesets": {"lab", "imagesets"},
    "classical": {"lab", "imagesets", "classical"},
    "deep": {"lab", "imagesets", "deep"},
    "agents": {"lab", "envs", "agents"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every module `path` imports (relative imports count as its own package)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add(path.relative_to(ROOT).parts[0] if node.level else node.module.split(".")[0])
    return roots


def test_import_graph_parses_every_kind_of_import(tmp_path):
    sample = ROOT / "envs" / "_graph_sample.py"
    try:
        sample.write_text("import a.b\nfrom c import d\ndef f():\n    from e.f import g\n    from . import h\n")
        assert imported_roots(sample) == {"a", "c", "e", "envs"}
    finally:
        sample.unlink()


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_their_layer_allows(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        roots = imported_roots(path)
        for root in sorted(roots & set(PACKAGES) - ALLOWED[package]):
            wrong.append(f"{path.relative_to(ROOT)} imports {root}")
        if package == "envs":
            wrong += [f"{path.relative_to(ROOT)} imports {root}" for root in sorted(roots & HEAVY)]
    assert not wrong, "\n".join(wrong)


def test_every_registered_workload_is_an_entry_point_and_back():
    """A workload class in a leaf module is declared in pyproject.toml, and every declared one loads."""
    entries = {e.name: e.value for e in metadata.entry_points(group="agent_lab.workloads")}
    declared = set()
    for package in ("classical", "deep", "agents"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(s, ast.Assign) and [getattr(t, "id", "") for t in s.targets] == ["name"]
                        for s in node.body) and not node.name.startswith("_") and "Workload" not in node.name:
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    declared.add(f"{module}:{node.name}")
    assert declared == set(entries.values())
    from lab import workload as workloads

    found = workloads.discover()
    assert set(found) == set(entries) and all(found[name].name == name for name in entries)


def test_cli_start_up_imports_no_leaf_nor_heavy_package():
    code = ("import sys; from lab import cli; cli.make_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'ray', 'tf_agents', 'sklearn', "
            "'gymnasium', 'envs', 'deep'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"

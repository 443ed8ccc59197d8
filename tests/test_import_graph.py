"""The package layering, read from the source with `ast` (every import, at module level or inside a function).

    lab/        the core: imports none of the packages below (they plug in through entry points)
    envs/       plain Gymnasium: imports neither `lab` nor TensorFlow, TF-Agents or Ray
    imagesets/  image data sets for classical/ and deep/: imports only the core
    classical/, deep/, agents/   the leaves: import the core (agents also `envs`, classical and deep `imagesets`),
                never each other

Inside every package the modules form a tree, no circle (a module importing another that imports it back,
directly or through others), and so do lab's sub-packages (lab.cli, lab.spec, lab.execution, ...).
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


def imported_roots(path: Path, root: Path = ROOT) -> set[str]:
    """The top-level names of every module `path` imports (relative imports count as its own package)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add(path.relative_to(root).parts[0] if node.level else node.module.split(".")[0])
    return roots


# Circles inside the leaf packages, each a sorted tuple of the modules of one circle: none left (the `leaves`
# branch removed the five there were); an entry here would let one stay (the test fails on a stale entry).
KNOWN_LEAF_CIRCLES: set[tuple[str, ...]] = set()


def module_names(package: str, root: Path = ROOT) -> dict[str, Path]:
    """Every module of `package`: dotted name -> file (a package is its `__init__.py`)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_modules(name: str, path: Path, known) -> set[str]:
    """The modules of `known` that module `name` imports, anywhere in it: `from a.b import c` is `a.b.c`
    when that is a module, else `a.b`; importing a.b.c alone is no import of the package a.b."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[:len(package) - node.level + 1], *[node.module or ""]]).strip(".") \
                if node.level else node.module
            targets = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known] or [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def circles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The circles of a directed graph: its strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), set()

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_circles(package: str, root: Path = ROOT) -> set[tuple[str, ...]]:
    """The circles among the modules of `package`, and among its sub-packages (a sub-package stands for all
    of its modules; a top-level module for itself)."""
    known = module_names(package, root)
    graph = {name: imported_modules(name, path, known) for name, path in known.items()}
    depth = 2  # lab.cli.parser -> lab.cli
    group = {name: ".".join(name.split(".")[:depth]) for name in graph}
    groups: dict[str, set[str]] = {}
    for name, targets in graph.items():
        groups.setdefault(group[name], set()).update(group[t] for t in targets if group[t] != group[name])
    return circles(graph) | circles(groups)


def test_circles_are_found(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name, text in {"__init__": "", "a": "from pkg import b\n", "b": "def f():\n    from . import a\n",
                       "c": "import pkg.sub.d\n", "sub/__init__": "", "sub/d": "from pkg.c import x\n",
                       "e": "from pkg.sub import d\n"}.items():
        (tmp_path / "pkg" / f"{name}.py").write_text(text)
    assert package_circles("pkg", tmp_path) == {("pkg.a", "pkg.b"), ("pkg.c", "pkg.sub.d"), ("pkg.c", "pkg.sub")}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_inside_a_package(package):
    found = package_circles(package)
    known = {c for c in KNOWN_LEAF_CIRCLES if c[0].split(".")[0] == package}
    assert package != "lab" or not known, "the core has no known circle"
    assert sorted(found - known) == [], "new import circles"
    assert sorted(known - found) == [], "KNOWN_LEAF_CIRCLES lists circles that are gone: delete them"


def test_import_graph_parses_every_kind_of_import(tmp_path):
    sample = tmp_path / "envs" / "_graph_sample.py"
    sample.parent.mkdir()
    sample.write_text("import a.b\nfrom c import d\ndef f():\n    from e.f import g\n    from . import h\n")
    assert imported_roots(sample, root=tmp_path) == {"a", "c", "e", "envs"}


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

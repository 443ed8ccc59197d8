"""What a result came from: Python and package versions, the lab's version and commit, a dirty tree's diff.

Recorded with every experiment (`lab show` prints it). Versions come from `importlib.metadata`, so nothing
heavy is imported. The git calls run in the lab's own checkout only: where the folder above the `lab`
package is not the top level of a git repository (an installed lab, even one inside a user's project),
nothing of git is recorded. The uncommitted diff itself (it may hold anything, secrets included) is
written as `source.diff` beside the experiment only when the user opts in with LAB_RECORD_DIFF=1 (mode
0600 on local storage); otherwise only whether the tree was dirty is recorded.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# the distributions that shape a result; those not installed are left out
PACKAGES = ("tensorflow", "tf-keras", "tf-agents-nightly", "tf-agents", "tensorflow-probability", "gymnasium",
            "ale-py", "mujoco", "box2d-py", "ray", "scikit-learn", "numpy", "pandas", "optuna")
DIFF_FILE = "source.diff"  # beside the experiment's files when the lab's tree had uncommitted changes
MAX_DIFF_BYTES = 5_000_000

SOURCE = Path(__file__).resolve().parents[2]  # the folder above the `lab` package (a checkout, if it is one)
DIFF_SETTING = "LAB_RECORD_DIFF"  # "1": record the diff of the lab's own uncommitted changes


def diff_opted_in() -> bool:
    return os.environ.get(DIFF_SETTING, "").strip().lower() in ("1", "true", "yes")


def record() -> tuple[dict[str, Any], str]:
    """(the environment record, the diff of uncommitted changes, '' when clean or not a git checkout)."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    commit = _git("rev-parse", "HEAD") if _own_checkout() else None
    dirty = _dirty() if commit else None
    diff = _git("diff", "HEAD") if dirty and diff_opted_in() else None
    try:
        lab_version = importlib.metadata.version("agent-lab")
    except importlib.metadata.PackageNotFoundError:
        lab_version = None
    info = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "lab_version": lab_version,
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": packages,
    }
    if diff and len(diff.encode()) > MAX_DIFF_BYTES:
        diff = diff.encode()[:MAX_DIFF_BYTES].decode(errors="ignore") + "\n[diff truncated]\n"
    if diff:
        info["diff_file"] = DIFF_FILE
    return info, diff or ""


def save_diff(storage, diff: str) -> None:
    """Write the diff as DIFF_FILE into the experiment's folder (a lab.infra.storage.Storage, local or remote)."""
    if not diff:
        return
    target = storage.join(DIFF_FILE)
    if storage.is_local:
        Path(storage.path).mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(target.path, flags, 0o600), "w") as handle:  # only its owner reads it
            os.fchmod(handle.fileno(), 0o600)
            handle.write(diff)
        return
    with storage.filesystem.open_output_stream(target.path) as stream:
        stream.write(diff.encode())


def _own_checkout() -> bool:
    """Whether the folder above the `lab` package is the top level of a git checkout (the lab's own), not a
    folder inside some other repository (a user's project that holds an installed lab)."""
    top = _git("rev-parse", "--show-toplevel")
    return bool(top) and os.path.realpath(top) == os.path.realpath(SOURCE)


def _dirty() -> bool | None:
    try:
        out = subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True, timeout=10, cwd=SOURCE,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: False, 1: True}.get(out.returncode)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=SOURCE)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def format_lines(info: dict[str, Any]) -> list[str]:
    """The record as `lab show` prints it."""
    if not info:
        return ["(not recorded: the experiment predates schema version 3)"]
    dirty = {True: (" (dirty: uncommitted changes, see " + info["diff_file"] + ")") if info.get("diff_file")
             else f" (dirty: uncommitted changes, not recorded: {DIFF_SETTING}=1 records them)",
             False: "", None: ""}[info.get("git_dirty")]
    lines = [f"python {info.get('python')} on {info.get('platform')}",
             f"lab {info.get('lab_version') or '-'}, commit {info.get('git_commit') or '-'}{dirty}"]
    packages = info.get("packages") or {}
    lines.append(" ".join(f"{name}=={version}" for name, version in packages.items()))
    return lines

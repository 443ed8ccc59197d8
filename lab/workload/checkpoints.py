"""Sealed checkpoints: a checkpoint counts only once its manifest is written, and only as written.

`seal` writes `lab_checkpoint.json` last (atomically): every file of the checkpoint with its size and
SHA-256. `verify` checks a folder against it before anything is restored, so a checkpoint cut short by
a full disk, a failed copy to storage or a killed process is refused with one line instead of being
read back as a valid one.
"""
from __future__ import annotations

import hashlib
import json
import os

from lab.errors import LabError

MANIFEST = "lab_checkpoint.json"


class CheckpointError(LabError):
    """A checkpoint folder is incomplete or was changed after it was written."""


def _files(folder: str) -> dict[str, dict[str, int | str]]:
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if relative == MANIFEST or os.path.islink(path):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            found[relative] = {"size": os.path.getsize(path), "sha256": digest.hexdigest()}
    return found


def seal(folder: str) -> None:
    """Write the manifest of `folder` (call it after everything else is written)."""
    files = _files(folder)
    temporary = os.path.join(folder, f".{MANIFEST}.tmp")
    with open(temporary, "w") as handle:
        json.dump({"version": 1, "files": files}, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, os.path.join(folder, MANIFEST))


def verify(folder: str) -> None:
    """CheckpointError unless `folder` holds exactly the files its manifest lists, byte for byte."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path) as handle:
            expected = json.load(handle)["files"]
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {folder} is incomplete: it has no {MANIFEST} "
                              "(it was cut short, or written by another program)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {folder} has an unreadable {MANIFEST}: {exc}") from None
    actual = _files(folder)
    missing = sorted(set(expected) - set(actual))
    changed = sorted(name for name in expected if name in actual and actual[name] != expected[name])
    if missing or changed:
        what = f"missing {missing[0]}" if missing else f"{changed[0]} differs from what was written"
        raise CheckpointError(f"checkpoint {folder} is incomplete or changed: {what}")

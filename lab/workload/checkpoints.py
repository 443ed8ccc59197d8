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

from lab.errors import LabError, printable

MANIFEST = "lab_checkpoint.json"
ALLOWED_UNLISTED = frozenset({".metadata.json"})  # what Tune adds after the trainable saved: JSON, read as JSON


class CheckpointError(LabError):
    """A checkpoint folder is incomplete or was changed after it was written."""


def _files(folder: str, links: list[str] | None = None) -> dict[str, dict[str, int | str]]:
    """Every regular file under `folder` (the manifest aside) with its size and SHA-256; symbolic links and
    other non-regular entries are left out (and named in `links` when given)."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(root, d)))]:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if relative == MANIFEST:
                continue
            if os.path.islink(path) or not os.path.isfile(path):
                if links is not None:
                    links.append(relative)
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            found[relative] = {"size": os.path.getsize(path), "sha256": digest.hexdigest()}
    return found


PROGRESS_KEYS = ("training_iteration", "time_total_s")  # Tune's counters a restore starts from


def seal(folder: str, progress: dict | None = None) -> None:
    """Write the manifest of `folder` (call it after everything else is written), with the trial's `progress`
    (Tune's counters at this checkpoint) when given."""
    files = _files(folder)
    manifest: dict = {"version": 1, "files": files}
    if progress:
        manifest["progress"] = {key: progress[key] for key in PROGRESS_KEYS if key in progress}
    temporary = os.path.join(folder, f".{MANIFEST}.tmp")
    with open(temporary, "w") as handle:
        json.dump(manifest, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, os.path.join(folder, MANIFEST))


def verify(folder: str) -> None:
    """CheckpointError unless `folder` holds exactly the files its manifest lists, byte for byte: a file the
    manifest does not list (Ray would unpickle a `_dict_checkpoint.pkl`), a symbolic link, is refused."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path) as handle:
            expected = json.load(handle)["files"]
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {folder} is incomplete: it has no {MANIFEST} "
                              "(it was cut short, or written by another program)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {folder} has an unreadable {MANIFEST}: {exc}") from None
    if not isinstance(expected, dict):
        raise CheckpointError(f"checkpoint {printable(folder)} has an unreadable {MANIFEST}")
    links: list[str] = []
    actual = _files(folder, links)
    missing = sorted(set(expected) - set(actual))
    changed = sorted(name for name in expected if name in actual and actual[name] != expected[name])
    unlisted = sorted(set(actual) - set(expected) - ALLOWED_UNLISTED)
    if links:
        raise CheckpointError(f"checkpoint {printable(folder)} holds {printable(links[0])}, which is not a "
                              "regular file: refused")
    if unlisted:
        raise CheckpointError(f"checkpoint {printable(folder)} holds {printable(unlisted[0])}, which its "
                              f"{MANIFEST} does not list: refused (nothing of it is read)")
    if missing or changed:
        what = f"missing {missing[0]}" if missing else f"{changed[0]} differs from what was written"
        raise CheckpointError(f"checkpoint {printable(folder)} is incomplete or changed: {printable(what)}")


def progress(manifest_text: str) -> dict[str, float]:
    """The Tune counters a manifest recorded (`seal(progress=...)`), only those that are finite non-negative
    numbers (a manifest is read back from storage: anything else is left out)."""
    try:
        recorded = json.loads(manifest_text).get("progress", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    out: dict[str, float] = {}
    for key in PROGRESS_KEYS:
        value = recorded.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e15:
            out[key] = value
    return out

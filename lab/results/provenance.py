"""Which exported models this machine's lab wrote: a SavedModel or a `.keras` file is code, not data.

`lab export` records the content hash of every folder it writes in `$LAB_HOME/exports/` (one empty file
per hash). Loaders of Keras models and TF-Agents policies (`lab eval PATH`, `load_keras_model`) accept a
folder or file whose hash is recorded, and anything else only with `trust=True` (`--trust`): loading
runs the graph the file holds, and `.keras` files import the modules they name.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from lab import settings
from lab.errors import LabError, printable

CHUNK = 1 << 20


def content_hash(path: str) -> str:
    """SHA-256 over the relative names and bytes of every file under `path` (or of the one file);
    LabError for a symbolic link anywhere inside (it could point out of the folder)."""
    root = Path(path)
    digest = hashlib.sha256()
    if root.is_symlink():
        raise LabError(f"{path} is a symbolic link: give the folder or file itself")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    for file in files:
        if file.is_symlink():
            raise LabError(f"{file} is a symbolic link: the lab never writes one into an export")
        digest.update(str(file.relative_to(root) if file != root else file.name).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _records() -> Path:
    return settings.lab_home() / "exports"


def record_export(path: str) -> str:
    """Remember that this lab wrote `path` (a folder or a file); its hash."""
    value = content_hash(path)
    folder = _records()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / value).touch()
    return value


def written_here(path: str) -> bool:
    """Whether `path` holds exactly what this lab exported (unchanged since)."""
    return (_records() / content_hash(path)).exists()


def check_trusted(path: str, what: str, trust: bool = False) -> None:
    """LabError unless `path` was exported by this lab or the caller trusts it (`--trust`)."""
    if trust or written_here(path):
        return
    raise LabError(f"{path} is a {what} this lab did not export (loading it runs the code it holds): "
                   "pass --trust (trust=True) only if you trust whoever made it")


def check_owned(path: str) -> None:
    """LabError unless everything under `path` (a local folder: Tune unpickles tuner.pkl and decodes
    experiment_state-*.json with cloudpickle on `lab resume`) belongs to this user, is writable by nobody
    else, and no symbolic link points out of it; the folder must exist."""
    uid = os.getuid()
    top = os.path.realpath(path)
    if not os.path.isdir(top) or os.path.islink(path):
        raise LabError(f"{printable(path)} is not a folder: nothing to resume")

    def check(current: str) -> None:
        info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(current)
            if os.path.commonpath([target, top]) != top:
                raise LabError(f"{printable(current)} is a symbolic link out of the experiment folder: Tune would read "
                               "what it points to; refused")
            return
        if info.st_uid != uid or info.st_mode & 0o022:
            raise LabError(f"{printable(current)} is not owned by you alone (owner uid {info.st_uid}, mode "
                           f"{oct(info.st_mode & 0o777)}): Tune would unpickle it; copy the experiment "
                           "folder yourself if you trust it")

    check(top)
    for root, dirs, files in os.walk(top, onerror=_raise):
        for name in [*dirs, *files]:
            check(os.path.join(root, name))


def _raise(error: OSError) -> None:
    raise LabError(f"cannot check {printable(str(error.filename))}: {error.strerror}")

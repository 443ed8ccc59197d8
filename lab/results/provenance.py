"""Which exported models this machine's lab wrote: a SavedModel or a `.keras` file is code, not data.

`lab export` records the content hash of every folder it writes in `$LAB_HOME/exports/` (one empty file
per hash). Loaders of Keras models and TF-Agents policies (`lab eval PATH`, `load_keras_model`) accept a
folder or file whose hash is recorded, and anything else only with `trust=True` (`--trust`): loading
runs the graph the file holds, and `.keras` files import the modules they name.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lab import settings
from lab.errors import LabError, printable

CHUNK = 1 << 20
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO must not block


def content_hash(path: str) -> str:
    """SHA-256 over every regular file under `path` (or of the one file): each entry its name's length and
    name, its size and bytes, so that no two different folders give one stream. LabError for anything but
    folders and regular files (a symbolic link could point out of the folder; a FIFO or a device is no export)."""
    digest = hashlib.sha256()
    for name, file in _entries(Path(path)):
        with _open_regular(file) as handle:
            _frame(digest, name.encode("utf-8", "surrogateescape"))
            size = os.fstat(handle.fileno()).st_size
            digest.update(size.to_bytes(8, "big"))
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size -= len(chunk)
        if size:
            raise LabError(f"{file} changed while it was read: try again")
    return digest.hexdigest()


def _frame(digest, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "big") + data)


def _entries(root: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every regular file under `root` (or `root` itself), sorted; LabError on
    anything else."""
    info = _kind(root)
    if stat.S_ISREG(info.st_mode):
        return [(root.name, root)]
    found = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            entry = Path(folder) / name
            if stat.S_ISREG(_kind(entry).st_mode):
                found.append((str(entry.relative_to(root)), entry))
    return sorted(found)


def _kind(path: Path) -> os.stat_result:
    """lstat of a folder or regular file; LabError for a symbolic link, a FIFO, a socket or a device."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise LabError(f"{path} is a symbolic link: the lab never writes one into an export")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise LabError(f"{path} is not a regular file or folder: the lab never writes one into an export")
    return info


def _open_regular(path: Path):
    """`path` opened for reading without following a link or blocking on a FIFO; LabError unless it is,
    once open, a regular file (it may have been swapped since it was listed)."""
    descriptor = os.open(path, READ_FLAGS)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise LabError(f"{path} is not a regular file: the lab never writes one into an export")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


@contextlib.contextmanager
def private_copy(path: str, what: str, trust: bool = False) -> Iterator[str]:
    """A copy of `path` (a folder or a file) in a folder only this user can read, checked as
    `check_trusted` does: the loader reads the very bytes that were hashed, whatever happens to `path`
    meanwhile. Removed on exit."""
    source = Path(path)
    holder = tempfile.mkdtemp(prefix="lab-load-")  # mode 0700
    try:
        copy = Path(holder) / (source.name or "export")
        is_folder = stat.S_ISDIR(_kind(source).st_mode)
        entries = _entries(source)
        if is_folder:
            copy.mkdir()
        for name, file in entries:
            target = copy / name if is_folder else copy
            target.parent.mkdir(parents=True, exist_ok=True)
            with _open_regular(file) as reader, open(target, "xb") as writer:
                shutil.copyfileobj(reader, writer, CHUNK)
        check_trusted(str(copy), what, trust, shown=path)
        yield str(copy)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _records() -> Path:
    return settings.lab_home() / "exports"


def record_export(path: str) -> str:
    """Remember that this lab wrote `path` (a folder or a file); its hash."""
    value = content_hash(path)
    folder = _records()
    settings.private_dir(folder)
    settings.private_file(folder / value)
    return value


def written_here(path: str) -> bool:
    """Whether `path` holds exactly what this lab exported (unchanged since)."""
    return (_records() / content_hash(path)).exists()


def check_trusted(path: str, what: str, trust: bool = False, shown: str | None = None) -> None:
    """LabError unless `path` was exported by this lab or the caller trusts it (`--trust`). Loaders use
    `private_copy`: checking a path, then loading it, reads it twice."""
    if trust:
        _entries(Path(path))  # regular files only, even when trusted
        return
    if written_here(path):
        return
    raise LabError(f"{shown or path} is a {what} this lab did not export (loading it runs the code it holds): "
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

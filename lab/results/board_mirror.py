"""`lab tensorboard` of an experiment in remote storage (S3, GCS): a local mirror of its event files.

TensorFlow's file system, which TensorBoard reads through, has no `s3://` without tensorflow-io. So the
event files of each remote experiment are copied into `$LAB_HOME/tensorboard/<label>-<hash of the URI>`
before TensorBoard starts, and copied again every `LAB_TENSORBOARD_REFRESH_S` seconds (default 30) while
it serves, so a running sweep's curves keep growing. A file is copied again only when its size changed
(event files only grow), into a temporary name first, so TensorBoard never reads half a file.

Every key listed in the storage is a stranger's: only files named `events.out.tfevents.*` are copied,
each to the same relative folder, and a key whose relative path would leave the mirror is skipped.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import sys
import threading
from pathlib import Path

from lab import settings
from lab.errors import LabError, one_line
from lab.infra.storage import Storage

EVENTS_PREFIX = "events.out.tfevents."
DEFAULT_REFRESH_S = 30.0


def mirror_dir(label: str, where: Storage) -> Path:
    """The local folder that mirrors `where`'s event files (`label` is a plain `ID-NAME` or `ID`)."""
    digest = hashlib.sha256(where.uri.encode()).hexdigest()[:10]
    return settings.lab_home() / "tensorboard" / f"{label}-{digest}"


def relative_key(path: str, top: str) -> list[str] | None:
    """The parts of `path` below `top`, or None when it is not plainly below it (`..`, `.`, empty parts)."""
    top = top.rstrip("/") + "/"
    if not path.startswith(top):
        return None
    parts = path[len(top):].split("/")
    if any(part in ("", ".", "..") or "\\" in part or not part.isprintable() for part in parts):
        return None
    return parts


def sync(where: Storage, local: Path) -> int:
    """Copy `where`'s new or grown event files into `local`; the number copied. OSError when unreachable."""
    from pyarrow import fs

    selector = fs.FileSelector(where.path, recursive=True, allow_not_found=True)
    copied = 0
    for info in where.filesystem.get_file_info(selector):
        if info.type != fs.FileType.File or not posixpath.basename(info.path).startswith(EVENTS_PREFIX):
            continue
        parts = relative_key(info.path, where.path)
        if parts is None:
            continue
        target = local.joinpath(*parts)
        if target.is_file() and target.stat().st_size == info.size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f".partial-{os.getpid()}"  # no "tfevents" in the name: TensorBoard skips it
        with where.filesystem.open_input_stream(info.path) as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        os.replace(partial, target)
        copied += 1
    return copied


def locations(experiments: list[dict], label_names: bool = True) -> dict[str, Storage]:
    """{run label: Storage} for TensorBoard's --logdir_spec from registry rows (a stranger's text): labels are
    `ID-NAME` with a plain name (else, or without `label_names`, `ID`); folders lie under the storage root
    (`storage.recorded`) and hold no `,` (which would start another entry); LabError for one that does not."""
    from lab.infra import storage
    from lab.spec.safety import NAME, printable

    folders = {}
    for e in experiments:
        if not e["storage_path"]:
            continue
        plain = label_names and isinstance(e["name"], str) and NAME.fullmatch(e["name"])
        label = f"{int(e['id'])}-{e['name']}" if plain else str(int(e["id"]))
        where = storage.recorded(e["storage_path"], f"experiment {e['id']}'s storage folder")
        if "," in where.uri:
            raise LabError(f"experiment {e['id']}'s storage folder {printable(where.uri)} has a ',' "
                           "(TensorBoard would read it as a list): refused")
        folders[label] = where
    return folders


class Mirror:
    """`folders`: {label: local folder} for TensorBoard. Local experiments as they are; remote ones copied now
    (LabError when their storage cannot be read) and again every `refresh_seconds()` in a daemon thread,
    until `close()`."""

    def __init__(self, locations: dict[str, Storage], say=print):
        self._stop = threading.Event()
        remote = {label: where for label, where in locations.items() if not where.is_local}
        self.folders = {label: where.path for label, where in locations.items() if where.is_local}
        if not remote:
            return
        mirrors = {label: mirror_dir(label, where) for label, where in remote.items()}
        total = 0
        for label, where in remote.items():
            try:
                total += sync(where, mirrors[label])
            except OSError as exc:
                raise LabError(f"cannot read the event files of {where.uri}: {one_line(exc)}") from None
        every_s = refresh_seconds()
        first = next(iter(remote))
        say(f"copied {total} event file(s) of {len(remote)} experiment(s) from {remote[first].scheme} storage "
            f"into {mirrors[first].parent}; refreshed every {every_s:g} s")
        threading.Thread(target=self._refresh, args=(remote, mirrors, every_s), name="tensorboard-mirror",
                         daemon=True).start()
        self.folders.update({label: str(path) for label, path in mirrors.items()})

    def close(self) -> None:
        self._stop.set()

    def _refresh(self, remote: dict[str, Storage], mirrors: dict[str, Path], every_s: float) -> None:
        """Copy again every `every_s` seconds; the first failure of a row of failures is said once on stderr."""
        failing = False
        while not self._stop.wait(every_s):
            try:
                for label, where in remote.items():
                    sync(where, mirrors[label])
            except Exception as exc:  # noqa: BLE001 - storage unreachable for a while: serve what is there
                if not failing:
                    print(f"lab: cannot refresh TensorBoard's copies from storage ({one_line(exc)}); serving "
                          "those made so far", file=sys.stderr, flush=True)
                failing = True
            else:
                failing = False


def refresh_seconds() -> float:
    raw = os.environ.get("LAB_TENSORBOARD_REFRESH_S", "")
    try:
        value = float(raw) if raw else DEFAULT_REFRESH_S
    except ValueError:
        raise LabError(f"LAB_TENSORBOARD_REFRESH_S must be a number of seconds, got {raw[:40]!r}") from None
    if not 0.1 <= value <= 86_400:
        raise LabError(f"LAB_TENSORBOARD_REFRESH_S must be between 0.1 and 86400 seconds, got {value:g}")
    return value

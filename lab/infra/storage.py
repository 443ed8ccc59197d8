"""Where Tune writes experiments: a local (or NFS) folder, or a URI of a pyarrow filesystem.

    /mnt/nfs/lab, ~/runs, file:///data/lab     a folder every node can see (local runs need no more)
    s3://bucket/prefix                         S3; credentials from each process's environment (AWS_ACCESS_KEY_ID,
                                               ...), AWS_ENDPOINT_URL for an S3-compatible server (MinIO, moto)
    gs://bucket/prefix                         Google Cloud Storage (credentials from the environment)

The location is checked (a probe file written and deleted) before an experiment is recorded, so a
missing bucket, wrong credentials or a read-only folder fail with one line and leave nothing behind.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab import settings
from lab.errors import LabError, one_line
from lab.spec.safety import check_location, printable

PROBE = ".lab-write-test"
MARKER = ".lab-experiment.json"  # in every experiment folder: whose it is (uuid, registry id, name)


@dataclass(frozen=True)
class Storage:
    """A resolved storage location: what Tune gets (path + filesystem) and what the registry records (uri)."""

    uri: str  # as recorded and shown: a local path, or scheme://bucket/prefix
    path: str  # Tune's storage_path: the local path, or the path inside `filesystem`
    filesystem: Any = None  # a pyarrow.fs.FileSystem for a remote URI; None for a local folder

    @property
    def is_local(self) -> bool:
        return self.filesystem is None

    def join(self, *parts: str) -> Storage:
        """The location of a sub-folder (an experiment's folder)."""
        sep = os.sep if self.is_local else "/"
        return Storage(
            uri=sep.join([self.uri.rstrip(sep), *parts]),
            path=sep.join([self.path.rstrip(sep), *parts]),
            filesystem=self.filesystem,
        )

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0] if "://" in self.uri else "file"

    def check_writable(self) -> None:
        """Write and delete a probe file; LabError (one line) when the location cannot be written."""
        if self.is_local:
            try:
                os.makedirs(self.path, exist_ok=True)
                probe = Path(self.path) / f"{PROBE}-{uuid.uuid4().hex[:8]}"
                probe.write_text("")
                probe.unlink()
            except OSError as exc:
                raise LabError(f"storage path {self.uri} is not writable: {exc.strerror or exc}") from None
            return
        probe = f"{self.path.rstrip('/')}/{PROBE}-{uuid.uuid4().hex[:8]}"
        try:
            with self.filesystem.open_output_stream(probe) as stream:
                stream.write(b"")
            self.filesystem.delete_file(probe)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError, or ValueError for a bad bucket name
            raise LabError(f"storage {self.uri} is not writable: {one_line(exc)}") from None


def remove(where: Storage) -> None:
    """Delete an experiment's folder (checked by the caller: `recorded` and `check_marker`); a missing one is
    fine, a failure is a LabError. A symbolic link inside is removed, never followed."""
    location = where.uri
    try:
        if where.is_local:
            import shutil

            if os.path.isdir(where.path):
                shutil.rmtree(where.path)
        else:
            from pyarrow import fs

            if where.filesystem.get_file_info(where.path).type != fs.FileType.NotFound:
                where.filesystem.delete_dir(where.path)
    except Exception as exc:  # noqa: BLE001 - OSError, pyarrow's errors
        raise LabError(f"cannot delete {location}: {one_line(exc)}") from None


def resolve(location: str, source: str = "the spec, --storage or LAB_STORAGE") -> Storage:
    """A path or a URI as a Storage; LabError for a scheme pyarrow does not know, or for a URI with a
    credential in it (refused, never shown: credentials come from the environment)."""
    location = location.strip()
    if not location:
        raise LabError("the storage location is empty")
    location = location.removeprefix("file://")
    check_location(location, "storage", source)
    if "://" not in location:
        path = str(Path(location).expanduser().absolute())
        return Storage(uri=path, path=path)
    import pyarrow.fs

    scheme, _, rest = location.partition("://")
    try:
        if scheme == "s3" and "?" not in rest:
            filesystem, path = s3_filesystem(), rest
        else:
            filesystem, path = pyarrow.fs.FileSystem.from_uri(location)
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid for unknown schemes, OSError for bad options
        raise LabError(f"storage {location} cannot be opened: {one_line(exc)}") from None
    path = path.split("?", 1)[0].strip("/")
    if not path:
        raise LabError(f"storage {location} names no bucket or folder")
    return Storage(uri=f"{scheme}://{path}", path=path, filesystem=filesystem)


def s3_filesystem():
    """pyarrow's S3FileSystem for the endpoint and region of the environment (AWS_ENDPOINT_URL(_S3) for an
    S3-compatible server, AWS_REGION / AWS_DEFAULT_REGION), given explicitly so that they travel with it to
    Ray workers. The credentials are NOT given: Tune pickles the filesystem into the experiment folder
    (tuner.pkl), so each process reads them itself from its environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), its profile or its IAM role (pyarrow's default chain)."""
    import pyarrow.fs

    env = os.environ
    options: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, host = endpoint.rpartition("://")
        options.update(endpoint_override=host.rstrip("/"), scheme=scheme or "https")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pyarrow.fs.S3FileSystem(**options)


# ------------------------------------------------------------------ what the registry names (a stranger's text)
def root() -> Storage:
    """The configured storage root (LAB_STORAGE, else $LAB_HOME/experiments): every location read from the
    registry must lie under it."""
    return resolve(settings.storage_path(), "LAB_STORAGE")


def _roots_file() -> Path:
    return settings.lab_home() / "storage-roots"


def remember_root(where: Storage) -> None:
    """Add a root this user ran with (`--storage`, a trusted spec's `storage`) to $LAB_HOME/storage-roots
    (0600), so that its experiments can be resumed and removed later."""
    if where.uri in _remembered():
        return
    path = _roots_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(where.uri + "\n")


def _remembered() -> list[str]:
    try:
        return [line for line in _roots_file().read_text().splitlines() if line.strip()]
    except OSError:
        return []


def roots() -> list[str]:
    """The configured storage roots: LAB_STORAGE (else $LAB_HOME/experiments), then those this user ran
    with (`remember_root`); every location read from the registry must lie under one of them."""
    return [settings.storage_path(), *_remembered()]


def recorded(location: object, what: str) -> Storage:
    """`location`, read from the registry, as a Storage strictly under a configured root (local: after
    realpath; remote: same scheme and bucket, under the prefix, no query, options, user or `..`), opened with
    the ROOT's filesystem, never with options of its own; LabError (one line) otherwise."""
    shown = printable(str(location))[:200]
    if not isinstance(location, str) or not location or location != location.strip() or not location.isprintable():
        raise LabError(f"{what} {shown!r} is not a plain path or URI: refused")
    candidates = roots()
    for candidate in candidates:
        where = _under(location, candidate)
        if where is not None:
            return where
    raise LabError(f"{what} {shown} is not under the storage root {printable(candidates[0])} (LAB_STORAGE) "
                   "nor a root you ran with: refused; set LAB_STORAGE to the root it was written under if you trust it")


def _under(location: str, configured: str) -> Storage | None:
    """`location` as a Storage when it lies strictly under the root `configured`, else None."""
    scheme = location.split("://", 1)[0] if "://" in location else "file"
    configured_scheme = configured.strip().split("://", 1)[0] if "://" in configured.strip() else "file"
    if scheme != configured_scheme or (scheme == "file" and (not os.path.isabs(location) or "://" in location)):
        return None
    base = resolve(configured, "LAB_STORAGE")
    if base.is_local:
        real, top = os.path.realpath(location), os.path.realpath(base.path)
        if real == top or os.path.commonpath([real, top]) != top:
            return None
        return Storage(uri=real, path=real)
    try:
        parts = urlsplit(location)
    except ValueError:
        return None
    key = parts.netloc + parts.path
    segments = key.split("/")
    if (parts.scheme != base.scheme or "?" in location or "#" in location or "@" in parts.netloc
            or ":" in parts.netloc or any(s in ("", ".", "..") for s in segments)
            or not key.startswith(base.path.rstrip("/") + "/")):
        return None
    return Storage(uri=f"{base.scheme}://{key}", path=key, filesystem=base.filesystem)


def exists(where: Storage) -> bool:
    """Whether anything (a folder, a file, a link) is at `where`."""
    if where.is_local:
        return os.path.lexists(where.path)
    from pyarrow import fs

    try:
        return where.filesystem.get_file_info(where.path).type != fs.FileType.NotFound
    except Exception as exc:  # noqa: BLE001 - OSError, pyarrow's errors
        raise LabError(f"cannot reach {where.uri}: {one_line(exc)}") from None


def check_removable(where: Storage) -> None:
    """LabError unless a local experiment folder is this user's own (on a shared root, only its owner
    deletes it; remote storage has no owners the lab can see: the marker check is what holds there)."""
    if not where.is_local:
        return
    info = os.lstat(where.path)
    if os.path.islink(where.path) or info.st_uid != os.getuid():
        raise LabError(f"{printable(where.uri)} belongs to uid {info.st_uid}, not to you: only its owner deletes it")


def marker_of(experiment_id: int, experiment_uuid: str, name: str) -> dict[str, Any]:
    return {"uuid": experiment_uuid, "id": experiment_id, "name": name}


def claim(where: Storage, marker: dict[str, Any]) -> None:
    """Create the experiment's folder with its marker; LabError when the folder exists already (it holds
    another experiment's files: a run never writes into it)."""
    text = json.dumps(marker, sort_keys=True)
    taken = LabError(f"experiment folder {where.uri} exists already (another registry's experiment?): "
                     "nothing is written into it")
    if where.is_local:
        os.makedirs(os.path.dirname(where.path), exist_ok=True)
        try:
            os.mkdir(where.path)
        except FileExistsError:
            raise taken from None
        with open(os.path.join(where.path, MARKER), "x") as handle:
            handle.write(text)
        return
    from pyarrow import fs

    if where.filesystem.get_file_info(where.path).type != fs.FileType.NotFound:
        raise taken
    with where.filesystem.open_output_stream(f"{where.path}/{MARKER}") as stream:
        stream.write(text.encode())


def read_marker(where: Storage) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none (or an unreadable one)."""
    try:
        if where.is_local:
            path = os.path.join(where.path, MARKER)
            if os.path.islink(path):
                return None
            with open(path) as handle:
                text = handle.read(4096)
        else:
            with where.filesystem.open_input_stream(f"{where.path}/{MARKER}") as stream:
                text = stream.read(4096).decode()
        value = json.loads(text)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_marker(where: Storage, record: dict[str, Any]) -> None:
    """LabError unless the folder carries the marker of this registry row (same uuid and id); a row of an
    older lab (no uuid) only names a folder without a marker."""
    found = read_marker(where)
    expected_uuid = record.get("uuid")
    if not expected_uuid:
        if found is None:
            return
        raise LabError(f"{printable(where.uri)} belongs to experiment {printable(str(found.get('uuid')))[:40]}, "
                       f"not to experiment {record['id']} (whose registry row has no uuid): refused")
    if found is None or found.get("uuid") != expected_uuid or found.get("id") != record["id"]:
        raise LabError(f"{printable(where.uri)} does not carry the marker of experiment {record['id']} "
                       f"({MARKER} with uuid {printable(str(expected_uuid))[:40]}): refused")

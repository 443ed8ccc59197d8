"""Where Tune writes experiments: a local (or NFS) folder, or a URI of a pyarrow filesystem.

    /mnt/nfs/lab, ~/runs, file:///data/lab     a folder every node can see (local runs need no more)
    s3://bucket/prefix                         S3; credentials from each process's environment (AWS_ACCESS_KEY_ID,
                                               ...), AWS_ENDPOINT_URL for an S3-compatible server (MinIO, moto)
    gs://bucket/prefix                         Google Cloud Storage (credentials from the environment)

The location is checked (a probe file written and deleted) before an experiment is recorded, so a
missing bucket, wrong credentials or a read-only folder fail with one line and leave nothing behind.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError, one_line
from lab.spec.safety import check_location

PROBE = ".lab-write-test"


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


def remove(location: str) -> None:
    """Delete an experiment's folder (local or remote); a missing one is fine, a failure is a LabError."""
    where = resolve(location)
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

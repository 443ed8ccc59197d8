"""Where the lab server lives and how its client and it talk (the server itself: lab/server/).

Everything is in `$LAB_HOME/server/` (0700): `sock` (the Unix socket, 0600), `cookie` (a random secret every
request carries, 0600), `server.json` (pid, its start time, the code's fingerprint) and `server.log`.

A message is a 4-byte big-endian length and a JSON object (at most MAX_MESSAGE bytes); the request also
carries the client's stdin, stdout and stderr as file descriptors (SCM_RIGHTS), so the run's own process
writes to the client's terminal directly.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path

from lab import settings
from lab.errors import LabError

SERVED = ("run", "resume", "rerun", "baselines")  # the commands a client hands to the server
NO_SERVER_ENV = "LAB_NO_SERVER"  # "1": every command runs in its own process, as `--no-server`
IDLE_ENV = "LAB_SERVER_IDLE_S"  # the server exits after this long without a request or a run (default 1800)
MAX_MESSAGE = 4 << 20
CODE_PACKAGES = ("lab", "agents", "classical", "deep", "envs", "imagesets")  # what a run's code is made of


class ServerError(LabError):
    """The lab server cannot be used (its files are someone else's, it answers nonsense)."""


def folder() -> Path:
    return settings.lab_home() / "server"


def socket_path() -> Path:
    return folder() / "sock"


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_ENV) or 1800))
    except ValueError:
        raise LabError(f"{IDLE_ENV} must be a number of seconds, got {os.environ[IDLE_ENV]!r}") from None


def disabled(environ=os.environ) -> bool:
    return environ.get(NO_SERVER_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------ the code's identity
def fingerprint() -> str:
    """A checksum of the code a run would execute: Python, PYTHONPATH, the lab's version, every plugin (entry
    point) and every source file of its packages. A server with another one is replaced."""
    from importlib import metadata
    from importlib.util import find_spec

    from lab import plugins

    # PYTHONPATH: the server's import path is fixed when it starts, a client's may name other plugins
    digest = hashlib.sha256(f"{sys.executable}\n{sys.version}\n{os.environ.get('PYTHONPATH', '')}\n".encode())
    try:
        digest.update(f"{metadata.version('agent-lab')}\n".encode())
    except metadata.PackageNotFoundError:
        pass
    points = metadata.entry_points()
    for group in (plugins.WORKLOADS, plugins.PRESETS, plugins.COMMANDS, plugins.LOADERS):
        digest.update("".join(sorted(f"{e.group} {e.name} {e.value}\n" for e in points.select(group=group))).encode())
    for package in CODE_PACKAGES:
        found = find_spec(package)
        if found is None or not found.submodule_search_locations:
            continue
        root = Path(next(iter(found.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{path.relative_to(root.parent)}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------ files only this user's
def check_ours(path: Path, kind: str) -> os.stat_result | None:
    """The file's status when it is this user's, of its kind ('socket' or 'file') and mode 0600 (else
    ServerError, one line); None when there is none."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    right_kind = stat.S_ISSOCK(info.st_mode) if kind == "socket" else stat.S_ISREG(info.st_mode)
    if info.st_uid != os.getuid() or not right_kind or info.st_mode & 0o077:
        raise ServerError(f"the lab server's {path} is not a {kind} of this user's with mode 0600: refused "
                          f"(remove it, or use --no-server)")
    return info


def read_cookie() -> str:
    path = folder() / "cookie"
    if check_ours(path, "file") is None:
        raise ServerError("the lab server has no cookie file")
    return path.read_text().strip()


def record() -> dict | None:
    """The running server's record (pid, start ticks, fingerprint), None when there is none or it is not
    this user's own plain file."""
    path = folder() / "server.json"
    try:
        if check_ours(path, "file") is None:
            return None
        data = json.loads(path.read_text())
    except (ServerError, ValueError, OSError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int) or not isinstance(data.get("ticks"), int):
        return None
    return data


def alive(server: dict | None) -> bool:
    from lab.infra.warm import _start_ticks

    return bool(server) and server["pid"] > 1 and _start_ticks(server["pid"]) == server["ticks"]


def stop(timeout: float = 10.0) -> dict | None:
    """Stop this LAB_HOME's server (runs it started go on to their end); its record, None when none ran."""
    server = record()
    if not alive(server):
        return None
    os.kill(server["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def describe() -> str:
    server = record()
    if not alive(server):
        return "lab server: not running (the next `lab run` starts it)"
    return f"lab server: running (pid {server['pid']}), exits after {idle_seconds():.0f} s idle"


# ------------------------------------------------------------------ messages
def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    frame = struct.pack(">I", len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], fds)
    else:
        sock.sendall(frame)


def receive(sock: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """The next message (None at end of stream) and the descriptors that came with it."""
    fds: list[int] = []
    if with_fds:
        head, fds, _flags, _addr = socket.recv_fds(sock, 4, with_fds)
    else:
        head = sock.recv(4)
    while head and len(head) < 4:
        more = sock.recv(4 - len(head))
        if not more:
            break
        head += more
    if len(head) < 4:
        return None, fds
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE:
        raise ServerError(f"a message of {size} bytes from the lab server's socket: refused")
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(1 << 16, size - len(data)))
        if not chunk:
            return None, fds
        data += chunk
    try:
        message = json.loads(data)
    except ValueError:
        raise ServerError("an unreadable message on the lab server's socket") from None
    if not isinstance(message, dict):
        raise ServerError("an unreadable message on the lab server's socket")
    return message, fds


class Address:
    """A path the socket calls accept: Unix socket paths are limited to ~107 bytes, so a long one is reached
    through its folder's descriptor (/proc/self/fd/N/sock) while the `with` block lasts."""

    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def __enter__(self) -> str:
        if len(os.fsencode(str(self.path))) < 100:
            return str(self.path)
        self.fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self.fd}/{self.path.name}"

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)

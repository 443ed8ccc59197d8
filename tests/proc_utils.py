"""Helpers of the fault tests: a process tree, its listening sockets, the machine's own address, Ctrl-C."""
from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request

import psutil

LOOPBACK = ("127.", "::1", "::ffff:127.")


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (those still alive)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def listeners(processes: list[psutil.Process]) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every listening TCP socket of `processes`."""
    found = []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(process.pid, name, c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def own_address() -> str | None:
    """The machine's first non-loopback IPv4 address (None when it has none)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


def answer_without_token(address: str, port: int) -> str | None:
    """What a client without credentials gets from address:port: None when the connection is refused
    or the server demands authentication (HTTP 401/403), else a description of the answer."""
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        return None
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=3) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return None if exc.code in (401, 403) else f"HTTP {exc.code}"
    except Exception as exc:  # noqa: BLE001 - a non-HTTP server (gRPC) accepted an unauthenticated connection
        return f"accepted ({type(exc).__name__})"


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    """Wait until none of `pids` is alive; return those still alive after `timeout`."""
    deadline = time.time() + timeout
    alive = list(pids)
    while alive and time.time() < deadline:
        alive = [pid for pid in alive if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def ctrl_c_as_at_a_terminal() -> None:
    """A preexec_fn: SIGINT back to its default in the child. A suite started in the background (`pytest &` in
    a script) ignores SIGINT, and a Python child then installs no Ctrl-C handler: a test's SIGINT did nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

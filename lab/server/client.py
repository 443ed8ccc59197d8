"""`lab` itself: hands the commands that run experiments to the lab server, every other command runs here.

    lab run quickstart            # the server (started now if none runs) runs it on this terminal
    lab run quickstart --no-server  # in this process, as before (also LAB_NO_SERVER=1)

The client starts the server when none answers (its first run waits for the server's imports and the warm
Ray instance it starts), replaces one that runs other code, forwards Ctrl-C, SIGTERM and SIGHUP to the run's
process and exits with its exit code. When the server cannot be started it says so in one line and runs
the command in this process.
"""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

from lab import settings
from lab.infra import server_files as files

START_TIMEOUT_S = 120.0


class Unavailable(Exception):
    """The server could not be reached or started: the command runs in this process."""


def main(argv: list[str] | None = None) -> int:
    """The `lab` entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if served(argv):
        code = run(argv)
        if code is not None:
            return code
    from lab.cli import main as in_this_process

    return in_this_process(argv)


def served(argv: list[str]) -> bool:
    """Whether the server runs this command line: a command that runs experiments, and nothing asking
    for this process (--no-server, LAB_NO_SERVER=1) or for no run at all (--help, --dry-run)."""
    command = next((a for a in argv if not a.startswith("-")), "")
    return (command in files.SERVED and not files.disabled() and sys.platform.startswith("linux")
            and not {"--no-server", "-h", "--help", "--dry-run"} & set(argv))


def run(argv: list[str]) -> int | None:
    """Run `argv` through the server; its exit code, or None when the server cannot be used (one note)."""
    try:
        return _run(argv)
    except files.ServerError as exc:
        print(f"lab: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Unavailable as exc:
        print(f"lab: note: {exc}; running in this process", file=sys.stderr, flush=True)
        return None


def _run(argv: list[str]) -> int:
    local = "--address" not in argv and not any(a.startswith("--address=") for a in argv) \
        and not os.environ.get("LAB_RAY_ADDRESS")
    code = files.fingerprint()
    for _attempt in range(3):
        conn = _connect_or_start(local)
        request = {"cookie": files.read_cookie(), "fingerprint": code, "argv": argv, "cwd": os.getcwd(),
                   "env": dict(os.environ), "local": local}
        try:
            files.send(conn, request, fds=[0, 1, 2])
            reply, _ = files.receive(conn)
        except OSError as exc:
            raise Unavailable(f"the lab server did not take the request ({exc.strerror or exc})") from None
        if reply is None:
            raise Unavailable("the lab server closed the connection")
        if "replace" in reply:  # it steps aside: the next attempt starts a server of this code
            conn.close()
            _wait_gone(files.record())
            continue
        if "error" in reply or not isinstance(reply.get("pid"), int):
            raise files.ServerError(f"the lab server refused the run: {str(reply.get('error', reply))[:300]}")
        return _follow(conn, reply["pid"])
    raise Unavailable("the lab server was replaced three times in a row")


def _follow(conn: socket.socket, pid: int) -> int:
    """Forward this terminal's signals to the run's process until its exit code arrives."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    try:
        message, _ = files.receive(conn)
    except (OSError, files.ServerError):
        message = None
    if not message or not isinstance(message.get("exit"), int):
        print(f"lab: error: the run's process (pid {pid}) ended without an exit code (killed?): `lab ls` shows "
              "its experiment, `lab resume ID` continues it", file=sys.stderr, flush=True)
        return 1
    return message["exit"]


def _connect() -> socket.socket | None:
    path = files.socket_path()
    if files.check_ours(path, "socket") is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with files.Address(path) as address:
            conn.connect(address)
    except (ConnectionRefusedError, FileNotFoundError):
        conn.close()
        return None
    return conn


def _connect_or_start(local: bool) -> socket.socket:
    conn = _connect()
    if conn is not None:
        return conn
    home = settings.private_dir(files.folder())
    with open(settings.private_file(home / "start.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts the server, the others wait for it
        conn = _connect()
        if conn is not None:
            return conn
        stale = files.socket_path()
        if files.check_ours(stale, "socket") is not None:
            stale.unlink()
        log = open(settings.private_file(home / "server.log"), "ab")  # noqa: SIM115 - handed to the server
        server = subprocess.Popen([sys.executable, "-P", "-m", "lab.server", *(["--warm-ray"] if local else [])],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True, env={**os.environ, files.NO_SERVER_ENV: "1"})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            conn = _connect()
            if conn is not None:
                return conn
            if server.poll() is not None and files.record() is None:
                raise Unavailable(f"the lab server did not start (see {home / 'server.log'})")
            time.sleep(0.02)
        raise Unavailable(f"the lab server did not answer within {START_TIMEOUT_S:.0f} s (see {home / 'server.log'})")


def _wait_gone(record: dict | None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while files.alive(record) and time.monotonic() < deadline:
        time.sleep(0.02)

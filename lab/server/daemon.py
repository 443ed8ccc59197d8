"""The lab server (`python -m lab.server`): imports Ray Tune, the registry and the workloads once, then runs
each request in a process forked from itself.

A request is a command line, the client's folder and environment, and its stdin/stdout/stderr (lab.infra.
server_files). The forked process takes the client's terminal, folder and environment as its own, tells the
client its pid (signals go to it directly), runs `lab.cli.main`, sends the exit code, and only then shuts
Ray down: the client is gone before the teardown. A client that disappears is a closed terminal (SIGHUP:
the experiment stops, resumable). Each run has a process of its own, never two Tune loops in one interpreter;
the server holds no thread, no Ray connection and no TensorFlow when it forks.

The server answers only its own user (SO_PEERCRED) carrying the cookie of $LAB_HOME/server/cookie; a request
from other code (another version, other files) makes it step aside for a new one; it exits after
LAB_SERVER_IDLE_S without a request or a run, on SIGTERM (`lab down`), and stops the warm Ray instance it
started when it exits idle.
"""
from __future__ import annotations

import fcntl
import hmac
import json
import os
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from lab import settings
from lab.infra import server_files as files

PRELOAD = ("ray", "ray.tune", "ray.tune.execution.tune_controller", "lab.execution.runner", "lab.execution.trainable",
           "lab.execution.callbacks", "lab.registry", "lab.spec", "lab.cli", "lab.cli.parser",
           "lab.results.environment", "lab.infra.connect", "lab.infra.local_ray", "lab.infra.storage")


def serve(warm_ray: bool = False) -> int:
    """Serve until idle, replaced or stopped; 0 at once when another server holds this LAB_HOME."""
    home = settings.private_dir(files.folder())
    lock = open(settings.private_file(home / "server.lock"), "a")  # noqa: SIM115 - held for the server's life
    deadline = time.monotonic() + 15  # a server stepping aside for this one lets go within a moment
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                return 0
            time.sleep(0.05)
    os.chdir("/")  # a run takes its client's folder; the server pins none
    state = _State()
    if warm_ray:
        state.instance = _start_warm_ray()  # beside the imports below: the first run waits less
    try:
        _preload()
    except BaseException:
        if isinstance(state.instance, _Started):  # nobody else knows of it yet
            state.instance.stop_if_unused()
        raise
    state.cookie, state.code = secrets.token_hex(32), files.fingerprint()
    settings.private_file(home / "cookie", state.cookie)
    listener, inode = _listen(home)
    stopping: list[str] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: stopping.append(signal.Signals(s).name))
    _write_record(home, state.code)
    active_at, idle, why = time.monotonic(), files.idle_seconds(), ""
    while not stopping:
        readable, _, _ = select.select([listener], [], [], 0.5)
        _reap(state.children)
        now = time.monotonic()
        if state.children or readable:
            active_at = now
        if readable:
            if _accept(listener, state, (listener, lock)) == "replace":
                why = "replaced"
                break
            _write_record(home, state.code)
        elif now - active_at > idle:
            why = "idle"
            break
    listener.close()
    _unlink_if_ours(files.socket_path(), inode)
    if why == "idle" and isinstance(state.instance, _Started):
        state.instance.stop_if_unused()
    record = files.record()
    if record and record.get("pid") == os.getpid():
        (home / "server.json").unlink(missing_ok=True)
    print(f"lab server: exits ({why or stopping[0]})", file=sys.stderr, flush=True)
    return 0


class _State:
    def __init__(self):
        self.instance = None  # the warm Ray instance in use (a _Started one this server started)
        self.children: set[int] = set()
        self.cookie = self.code = ""


# ------------------------------------------------------------------ start-up
class _Started:
    """The warm Ray instance this server started (stopped when the server exits idle)."""

    def __init__(self, pid: int):
        self.pid = pid

    def stop_if_unused(self) -> None:
        from lab.infra import warm

        recorded = warm.recorded()
        if recorded is not None and recorded.pid == self.pid and recorded.alive():
            warm.down()


def _start_warm_ray():
    """Start the warm local Ray instance when this LAB_HOME has none (or one still starting): its head and its
    workers' TensorFlow import overlap the server's imports and the first run's start."""
    from lab.errors import LabError
    from lab.infra import warm

    try:
        existing = warm.recorded()
        if existing is not None and existing.ours() and existing.alive():
            return existing
        instance, _keeper = warm.start()
    except (LabError, OSError) as exc:
        print(f"lab server: no warm Ray instance ({exc}); runs start Ray themselves", file=sys.stderr, flush=True)
        return None
    return _Started(instance.pid)


def _preload() -> None:
    import importlib

    settings.apply_worker_env()
    for name in PRELOAD:
        importlib.import_module(name)
    from lab.workload import registry

    registry.discover()  # the workloads' classes (light: their heavy imports happen in the trials)
    assert threading.active_count() == 1, "the server must fork with one thread"


def _listen(home: Path) -> tuple[socket.socket, int]:
    """Bind the socket under a name of its own, 0600, then move it into place (a client never sees one
    half made; a server being replaced keeps serving the clients already connected)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = home / f"sock.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    old = os.umask(0o177)
    try:
        with files.Address(temporary) as address:
            listener.bind(address)
    finally:
        os.umask(old)
    os.chmod(temporary, 0o600)
    listener.listen(16)
    inode = temporary.stat().st_ino
    os.replace(temporary, files.socket_path())
    return listener, inode


def _write_record(home: Path, code: str) -> None:
    from lab.infra.warm import _start_ticks

    record = {"pid": os.getpid(), "ticks": _start_ticks(os.getpid()), "fingerprint": code,
              "active_at": time.time()}
    temporary = home / f".server.json.{os.getpid()}"
    settings.private_file(temporary, json.dumps(record))
    os.replace(temporary, home / "server.json")


def _unlink_if_ours(path: Path, inode: int) -> None:
    try:
        if path.lstat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)
    try:  # the keeper of a warm instance this server started, once it ends
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


# ------------------------------------------------------------------ one request
def _accept(listener: socket.socket, state: _State, closing) -> str:
    try:
        conn, _ = listener.accept()
    except OSError:
        return ""
    fds: list[int] = []
    try:
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        if uid != os.getuid():
            return ""  # another user: not a word
        conn.settimeout(10)
        request, fds = files.receive(conn, with_fds=3)
        problem = _problem(request, fds, state.cookie)
        if problem:
            files.send(conn, {"error": problem})
            return ""
        if request["fingerprint"] != state.code:
            files.send(conn, {"replace": "the lab server runs other code than this lab"})
            return "replace"
        if request.get("local") and state.instance is None:
            state.instance = _start_warm_ray()
        pid = os.fork()
        if pid == 0:
            _run_request(conn, fds, request, closing)  # never returns
        state.children.add(pid)
        return ""
    except (OSError, files.ServerError, ValueError):
        return ""
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()


def _problem(request: dict | None, fds: list[int], cookie: str) -> str:
    """What is wrong with a request (a stranger's bytes), '' when nothing is."""
    if not isinstance(request, dict):
        return "an empty request"
    if not hmac.compare_digest(str(request.get("cookie", "")), cookie):
        return "a request without this server's cookie: refused"
    if len(fds) != 3:
        return "a request without the client's stdin, stdout and stderr"
    argv, env, cwd = request.get("argv"), request.get("env"), request.get("cwd")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) and argv[0] in files.SERVED):
        return "a request for no command the server runs"
    if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
        return "a request with an unreadable environment"
    if not isinstance(cwd, str) or not isinstance(request.get("fingerprint"), str):
        return "a request without its folder or fingerprint"
    return ""


def _run_request(conn: socket.socket, fds: list[int], request: dict, closing) -> None:
    """In the forked process: become the client's command, run it, report its exit code, then tear down."""
    code = 1
    try:
        os.setsid()  # out of the server's session: its signals are not ours
        for handle in closing:
            handle.close()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stdio
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[files.NO_SERVER_ENV] = "1"  # the lab commands it starts run in their own process
        argv = request["argv"]
        sys.argv = ["lab", *argv]
        conn.settimeout(None)
        try:
            os.chdir(request["cwd"])
        except OSError as exc:
            print(f"lab: error: cannot enter {request['cwd']}: {exc.strerror}", file=sys.stderr, flush=True)
            files.send(conn, {"pid": os.getpid()})
            files.send(conn, {"exit": 2})
            os._exit(2)
        files.send(conn, {"pid": os.getpid()})
        done = threading.Event()
        threading.Thread(target=_hang_up_when_client_leaves, args=(conn, done), daemon=True).start()
        from lab.cli import main

        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: its message is already on stderr
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        done.set()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _write_profile()
        try:
            files.send(conn, {"exit": int(code)})
        except OSError:
            pass
        conn.close()
        _detach_stdio()
        _teardown()
    except BaseException:  # noqa: BLE001 - a forked process never returns into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code if isinstance(code, int) else 1)


def _hang_up_when_client_leaves(conn: socket.socket, done: threading.Event) -> None:
    """The client sends nothing after its request: the end of the stream means it is gone (killed, its
    terminal closed). The run stops as it would on SIGHUP: interrupted, resumable."""
    try:
        while conn.recv(1024):
            pass
    except OSError:
        pass
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGHUP)


def _detach_stdio() -> None:
    """Whatever the teardown prints goes nowhere: the client's terminal is the user's again."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    os.close(devnull)


def _write_profile() -> None:
    """The benchmarks' phase profile ($LAB_PROFILE), written before the client exits."""
    profile = sys.modules.get("lab.execution.profile")
    if profile is not None:
        try:
            profile.dump()
        except OSError:
            pass


def _teardown() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()

"""`lab tensorboard`: TensorBoard as a child process on a free port, announced once it serves.

The default port (6006) taken by another program: the next free one is used, and said so. A port the
user asked for (`--port`) taken: one line and exit 2. Ctrl-C stops TensorBoard and exits 0.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from lab.errors import LabError

DEFAULT_PORT = 6006
START_TIMEOUT_S = 120.0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, port: int | None, say=print) -> int:
    """`port` when given and free (else a LabError); without one, 6006 or, if taken, a free port."""
    if port is not None:
        if not port_is_free(host, port):
            raise LabError(f"port {port} on {host} is taken (another TensorBoard?): choose another with --port, "
                           "or leave --port out to pick a free one")
        return port
    if port_is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        free = probe.getsockname()[1]
    say(f"port {DEFAULT_PORT} is taken: using {free}")
    return free


def serve(logdir_spec: str, host: str, port: int | None, names: list[str], say=print) -> int:
    """Run TensorBoard until it exits or Ctrl-C (then 0); print the URL once it answers."""
    port = choose_port(host, port, say)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", logdir_spec,
               "--host", host, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=die_with_parent(os.getpid()))
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    try:
        if not wait_until_serving(process, url):
            message = _last_line(process.stderr.read() if process.poll() is not None else "")
            stop(process)
            raise LabError(f"TensorBoard did not start on {url}: {message or 'no answer within '}"
                           f"{'' if message else f'{START_TIMEOUT_S:.0f} s'}")
        say(f"TensorBoard on {url} over {', '.join(names)} (Ctrl-C stops it)")
        sys.stdout.flush()
        _drain(process)
        return process.wait()
    except KeyboardInterrupt:
        stop(process)
        say("TensorBoard stopped")
        return 0


def die_with_parent(parent: int):
    """A preexec_fn: the child gets SIGTERM when `parent` dies, even by SIGKILL (Linux' PR_SET_PDEATHSIG),
    so TensorBoard never outlives `lab tensorboard` holding its port. None where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    def arrange() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal
            os._exit(1)

    return arrange


PR_SET_PDEATHSIG = 1


def wait_until_serving(process: subprocess.Popen, url: str, timeout_s: float = START_TIMEOUT_S) -> bool:
    """Poll `url` until it answers (True), or the process exits or the time runs out (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
                if response.status < 500:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def _drain(process: subprocess.Popen) -> None:
    """Pass TensorBoard's own messages (warnings, errors) through to stderr while it runs."""
    for line in process.stderr:
        sys.stderr.write(line)


def stop(process: subprocess.Popen) -> None:
    """Terminate a TensorBoard process (SIGKILL after 10 s) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""

"""The libraries' chatter goes to a log, not the terminal: a command prints only its own lines.

TensorFlow's C++ start-up lines (oneDNN, CUDA, absl), Gym's deprecation notice, Python warnings and the
`tensorflow`/`absl` log records are written to `$LAB_HOME/logs/lab.log` (`--verbose`: to the terminal,
as before). File descriptor 2 itself is redirected, since the C++ libraries write there directly.

    with quiet.libraries_to_log("lab export 3 --out out"):   # a command, or lab.load
        print("my own line")                                  # stdout: untouched
        print("lab: error: ...", file=quiet.terminal())       # the lab's own stderr line: on the terminal
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import IO

LIBRARY_LOGGERS = ("", "tensorflow", "absl")  # the root logger holds absl's handler
_terminal: IO[str] | None = None  # the terminal's stderr once `start` sent fd 2 to the log


def terminal() -> IO[str]:
    """Where the lab's own messages for stderr go (one-line errors, notes): the terminal, even when quiet."""
    return _terminal or sys.stderr


def log_path() -> Path:
    from lab import settings

    return settings.lab_home() / "logs" / "lab.log"


def _open_log(title: str) -> IO[str]:
    """The log, opened for appending, with a header line naming what writes to it (os.devnull if it cannot)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "a", buffering=1)
    except OSError:
        return open(os.devnull, "w")
    log.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} pid {os.getpid()}: {title}\n")
    return log


@contextlib.contextmanager
def libraries_to_log(title: str) -> Iterator[None]:
    """While inside: fd 2, sys.stderr and the library loggers write to the log, and `terminal()` is where
    stderr was (the lab's own messages go there); then everything is as it was."""
    global _terminal
    log = _open_log(title)
    saved_stderr = sys.stderr
    saved_stderr.flush()
    saved_fd = os.dup(2)
    try:
        own_fd = saved_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a notebook's stream, a test's StringIO
        own_fd = False
    saved_terminal = _terminal
    _terminal = os.fdopen(os.dup(saved_fd), "w", buffering=1) if own_fd else saved_stderr
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    previous = _point_loggers(log)
    try:
        yield
    finally:
        for handler, stream in previous:
            handler.setStream(stream)
        _point_loggers(saved_stderr, only_from=log)  # handlers created inside (TensorFlow's, on import)
        sys.stderr = saved_stderr
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        if _terminal is not saved_stderr:
            _terminal.close()
        _terminal = saved_terminal
        log.close()


def _point_loggers(stream: IO[str], only_from: IO | None = None) -> list[tuple[logging.StreamHandler, IO]]:
    """Point the stream handlers of the library loggers (those on `only_from`, if given) at `stream`;
    (handler, old stream) pairs.

    Their handlers keep the stream they were created with (a notebook's, or the terminal's), so
    redirecting fd 2 alone would not reach them."""
    previous = []
    for name in LIBRARY_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            inner = getattr(handler, "python_handler", handler)  # absl's ABSLHandler wraps a StreamHandler
            if (isinstance(inner, logging.StreamHandler) and not isinstance(inner, logging.FileHandler)
                    and (only_from is None or inner.stream is only_from)):
                previous.append((inner, inner.setStream(stream)))
    return previous

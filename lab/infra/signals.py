"""SIGTERM and SIGHUP (a service manager, a closed terminal) handled like Ctrl-C.

Each is turned into a SIGINT to this process, so whatever handles Ctrl-C at that moment handles them:
Tune's handler (it stops the trials and saves the experiment state: `lab resume` continues), or
Python's KeyboardInterrupt elsewhere. Where SIGINT is ignored (a job a script started in the background:
the shell ignores SIGINT there), they raise KeyboardInterrupt directly.
"""
from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _as_sigint(_signum, _frame) -> None:
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        # SIGINT ignored (a background job of a script) or not Python's: a SIGINT would do nothing, or kill
        # without cleaning up, so stop as Ctrl-C would have
        raise KeyboardInterrupt
    os.kill(os.getpid(), signal.SIGINT)


def terminate_like_ctrl_c() -> None:
    """Install the handlers (only the main thread can); call again after a library replaced them."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _as_sigint)

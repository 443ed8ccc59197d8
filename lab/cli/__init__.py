"""`lab`: run experiments, list and inspect them, open TensorBoard.

Start-up stays light: TensorFlow and Ray are imported only by the commands that run experiments.

    __init__     main: run one command, every failure one line on stderr
    parser       the argument parser: every subcommand and its handler
    running      run, resume, rerun          experiments  ls, show, best, export, leaderboard, compare, tag, ...
    infra        up, down, status, submit, tensorboard   catalog  presets, params
    output       tables, values, outcomes, exit codes (public helpers, the leaves' commands use them too)
"""
from __future__ import annotations

import errno
import sys

from lab.cli.parser import make_parser
from lab.errors import LabError, SpecError

MAX_ERROR_LINES = 30
MAX_ERROR_CHARS = 1000  # a line quoting a value from a file stays readable
# commands that already keep the libraries' output apart
OWN_OUTPUT = ("run", "resume", "rerun", "submit", "up", "baselines")


def main(argv: list[str] | None = None) -> int:
    """Run one command; any end other than success is one line on stderr (never a traceback)."""
    import signal

    from lab.errors import HangUp

    def hang_up(_signum, _frame):  # the terminal closed: end like Ctrl-C, without a word to a dead terminal
        raise HangUp()

    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, hang_up)
    parser = make_parser()
    args = parser.parse_args(argv)
    quiet = not args.verbose and args.command not in OWN_OUTPUT
    if not quiet:
        return run_command(args, quiet)
    from lab.quiet import libraries_to_log

    with libraries_to_log(" ".join(["lab", *(sys.argv[1:] if argv is None else argv)])):
        return run_command(args, quiet)


def run_command(args, quiet: bool) -> int:
    """The command's handler; any end other than success is one line on stderr (the terminal's, when quiet)."""
    from lab.errors import HangUp

    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's own flush at exit
        return code
    except SpecError as exc:  # every problem of a spec, one per line
        for line in str(exc).splitlines()[:MAX_ERROR_LINES] or [""]:
            _say(f"lab: error: {line}", 2)
        return 2
    except LabError as exc:
        return _say(f"lab: error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", 2)
    except HangUp:
        return _quiet_exit(129)
    except KeyboardInterrupt:
        return _say("lab: interrupted", 130)
    except BrokenPipeError:  # `lab best --json | head -c1`: the reader went away, nothing more to say
        return _quiet_exit(141)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _say(f"lab: error: no space left on the device{_where(exc)}", 2)
        if exc.errno == errno.EIO:  # a closed terminal
            return _quiet_exit(129)
        if not quiet:
            raise
        return _unexpected(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: its traceback is in the log the terminal does not see
        if not quiet:
            raise
        return _unexpected(exc)


def _unexpected(exc: BaseException) -> int:
    import traceback

    from lab.quiet import log_path

    traceback.print_exc()  # into the log
    return _say(f"lab: error: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]} (traceback: {log_path()})", 1)


def _say(line: str, code: int) -> int:
    """Print one line (at most MAX_ERROR_CHARS) to stderr (if anyone still reads it) and return `code`."""
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    try:
        from lab.quiet import terminal

        print(line, file=terminal(), flush=True)
    except OSError:
        pass
    return code


def _quiet_exit(code: int) -> int:
    """Stdout's reader is gone: point stdout at /dev/null so that flushing at exit raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return code


def _where(exc: OSError) -> str:
    return f" (writing {exc.filename})" if getattr(exc, "filename", None) else ""



__all__ = ["main", "make_parser"]

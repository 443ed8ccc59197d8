"""An experiment's driver-side log (full tracebacks, Tune's own log records) and the one-line errors shown."""
from __future__ import annotations

import contextlib
from pathlib import Path

from lab import settings


def experiment_log(experiment_id: int) -> Path:
    """The driver-side log of an experiment: full tracebacks of what the console shows as one line."""
    return settings.lab_home() / "logs" / f"experiment-{experiment_id}.log"


@contextlib.contextmanager
def tune_logs_to_file(experiment_id: int, enabled: bool = True):
    """Tune's own log records (a failed trial's traceback among them, and Train's storage errors, such as an
    old checkpoint it could not prune) go to the experiment's log file, not the console: the user sees the
    compact progress lines and `lab show` the trial's one-line error."""
    import logging

    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    path = experiment_log(experiment_id)
    try:
        settings.private_file(path)  # 0600 in a 0700 LAB_HOME
        handler: logging.Handler = logging.FileHandler(path)
    except OSError:  # no room for the log either: the records are dropped, the run goes on
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    propagates = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, propagates):
            logger.propagate = propagate
            logger.removeHandler(handler)
        handler.close()


def write_experiment_log(experiment_id: int, exc: BaseException) -> Path:
    """Append `exc` with its full traceback to the experiment's log; return the log's path."""
    import datetime as dt
    import traceback

    path = experiment_log(experiment_id)
    try:
        settings.private_file(path)
        with path.open("a") as handle:
            handle.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat()} experiment {experiment_id}\n")
            handle.write("".join(traceback.format_exception(exc)))
    except OSError:
        pass  # the log is a courtesy: the one-line error still reaches the user
    return path


def one_line_error(exc: BaseException, max_chars: int = 300) -> str:
    """'Type: message' for an exception whose text may be a whole traceback (Tune wraps errors that way):
    the innermost error's last line then."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not text and exc.__cause__ is not None:
        return one_line_error(exc.__cause__)
    line = text[-1] if text and text[0].startswith("Traceback") else (
        f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)
    return line if len(line) <= max_chars else line[: max_chars - 3] + "..."

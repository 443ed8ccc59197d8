"""Errors the CLI turns into a one-line message and a non-zero exit."""
import reprlib

MAX_QUOTED = 300  # characters of a value an error message quotes (a spec's value may be megabytes)
_SHORT = reprlib.Repr()  # Python 3.11's takes no arguments
for _name in ("maxtuple", "maxlist", "maxarray", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_SHORT, _name, 12)
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 4, 200, 60, 200


class LabError(Exception):
    """Base of every error the user should see as one line, without a traceback."""


class SpecError(LabError):
    """The experiment spec, a preset or a parameter is wrong."""


class RegistryError(LabError):
    """The experiment registry cannot be reached or read."""


class UnknownExperiment(RegistryError, LookupError):
    """No experiment has this id: raised alike by every command and API call that takes one."""


class ClusterError(LabError):
    """Ray cannot be started or reached, or cannot satisfy the requested resources."""


class DataError(LabError):
    """A data set is missing or malformed."""


class HangUp(KeyboardInterrupt):
    """SIGHUP: the terminal closed. Handled as Ctrl-C is (a running experiment stops and stays resumable)."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an error (of the driver's error under a SQLAlchemy one), without the
    request ids S3 appends; the error's type name when it has no text."""
    lines = [line for line in str(getattr(exc, "orig", None) or exc).strip().splitlines() if line.strip()]
    return lines[0].split(" (Request ID:")[0] if lines else type(exc).__name__


def printable(text: object) -> str:
    """`text` with every control or other non-printable character written as an escape (`\\x1b`, `\\r`,
    `\\u202e`): the one helper for every value from a file or the registry shown on a terminal, so it
    cannot drive the terminal nor hide what it is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def quoted(value: object) -> str:
    """`repr(value)` for an error message, at most MAX_QUOTED characters (a big value is elided, never
    rendered whole)."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED - 3] + "..."

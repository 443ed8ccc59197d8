"""Errors the CLI turns into a one-line message and a non-zero exit."""


class LabError(Exception):
    """Base of every error the user should see as one line, without a traceback."""


class SpecError(LabError):
    """The experiment spec, a preset or a parameter is wrong."""


class RegistryError(LabError):
    """The experiment registry cannot be reached or read."""


class ClusterError(LabError):
    """Ray cannot be started or reached, or cannot satisfy the requested resources."""


class DataError(LabError):
    """A data set is missing or malformed."""


class HangUp(KeyboardInterrupt):
    """SIGHUP: the terminal closed. Handled as Ctrl-C is (a running experiment stops and stays resumable)."""

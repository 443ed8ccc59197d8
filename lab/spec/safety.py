"""What the lab accepts from files and specs it did not write: names, service locations, credentials.

A spec is data: it may say what to run, not where the user's credentials go. The services that
receive credentials (storage, MLflow) come from the command line or the environment; a spec file
naming one is used only with `--trust-spec` or an interactive yes. No location may carry a
credential itself (it would be recorded in the registry and in Tune's files): credentials are read
from the environment by the process that needs them.
"""
from __future__ import annotations

import re
import sys
from urllib.parse import parse_qsl, urlsplit

from lab.errors import SpecError, printable, quoted  # noqa: F401 - printable: part of this module's API

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
SECRET_WORDS = ("secret", "password", "passwd", "token", "key", "credential", "signature", "sig")
SERVICE_FIELDS = {"storage": "storage", "mlflow": "MLflow tracking server"}


def check_name(name: object) -> None:
    """ValueError unless `name` is 1-100 of [A-Za-z0-9_.-], not starting with '.' or '-' (it becomes a folder
    name and a TensorBoard run label)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"name must be 1-100 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), "
                         f"got {printable(quoted(name))}")


def credential_problem(uri: str) -> str | None:
    """Why `uri` carries a credential (a user:password@, or a query parameter named like a secret); else None."""
    if "://" not in uri:
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "it cannot be parsed"
    if "@" in parts.netloc:
        return "it has a user:password@ part"
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if any(word in key.lower() for word in SECRET_WORDS):
            return f"its query has a '{printable(key)[:40]}' parameter"
    return None


def check_location(uri: str, what: str, source: str) -> None:
    """SpecError (one line, the URI not shown) when the `what` location from `source` carries a credential."""
    problem = credential_problem(uri)
    if problem:
        raise SpecError(f"the {what} location from {source} carries a credential ({problem}): "
                        "give it without, and the credentials in the environment (never in a URI)")


def untrusted_services(raw: dict, overridden: set[str]) -> list[str]:
    """'storage s3://...' for each credential-receiving service a spec file names that the command line
    does not replace."""
    return [f"{SERVICE_FIELDS[key]} {printable(str(raw[key]))[:120]}" for key in SERVICE_FIELDS
            if raw.get(key) and key not in overridden]


def confirm_services(services: list[str], label: str, trusted: bool) -> None:
    """Go on when trusted, or when the user says yes at a terminal; else SpecError naming `--trust-spec`."""
    if not services or trusted:
        return
    question = f"{label} chooses where your runs and credentials go ({' and '.join(services)}). Trust it? [y/N] "
    if sys.stdin.isatty() and sys.stderr.isatty():
        sys.stderr.write(question)
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer in ("y", "yes"):
            return
    raise SpecError(f"{label} chooses where your runs and credentials go ({' and '.join(services)}): "
                    "pass --trust-spec if you trust it, or give --storage / --mlflow yourself")

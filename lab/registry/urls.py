"""Registry database URLs: the driver named, the password masked for messages and kept out of what is stored."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lab import settings


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: sa.URL | str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never print an unparsed URL: it may hold a password
        return "<unparseable registry URL>"


def public_url(url: str) -> str:
    """The URL without its password (what may be stored or pickled: Tune writes its callbacks to disk)."""
    try:
        return sa.make_url(normalize_url(url))._replace(password=None).render_as_string(hide_password=False)
    except Exception:  # noqa: BLE001 - an invalid URL: let Registry() say so when it is used
        return "<unparseable registry URL>"


def credentialed_url(public: str) -> str:
    """`public` with the password of $LAB_REGISTRY_URL when that names the same database (else as is:
    the driver then finds its password in PGPASSWORD or ~/.pgpass, as psycopg does)."""
    env = settings.registry_url()
    return env if public_url(env) == public else public


def connect_timeout_args(url: sa.URL, timeout_s: float = 10.0) -> dict[str, Any]:
    return {"connect_timeout": max(1, min(10, int(timeout_s)))} if url.get_backend_name() == "postgresql" else {}

"""Which Ray token goes where: a local instance's own, and the user's only to the clusters it is for.

Ray sends the token it finds (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, else `~/.ray/auth_token`) to whatever
address it is given, once `RAY_AUTH_MODE=token`. The lab decides that mode itself:

- a local instance (`lab run` without an address) uses a token of its own, `$LAB_HOME/run/auth_token`
  (0600, in a 0700 folder), never Ray's default file (0644 in a 0755 `~/.ray`);
- a cluster gets the user's Ray token only when it is one of the user's own on this machine (the address is
  this machine's and the socket listening there belongs to this user, as `ray start` or a `kubectl
  port-forward` run by the user does), or its host is listed in LAB_RAY_TOKEN_HOSTS (comma-separated host
  names or addresses, as given in `--address`). To any other address the lab connects with authentication
  off (`RAY_AUTH_MODE=disabled`): a cluster that wants the token then refuses, and nothing secret was sent.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

from lab import settings
from lab.errors import ClusterError

HOSTS_SETTING = "LAB_RAY_TOKEN_HOSTS"
TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
LISTEN = "0A"
HINT = (f"the lab sends your Ray token only to your own cluster on this machine or to a host listed in "
        f"{HOSTS_SETTING}")


# ------------------------------------------------------------------ a local instance's own token
def local_token() -> Path:
    """`$LAB_HOME/run/auth_token`: made once (0600, random), then reused; ClusterError when what is there is
    not a regular file of this user's that only they can read."""
    path = settings.private_dir(settings.lab_home() / "run") / "auth_token"
    if not path.exists():
        staging = settings.private_file(path.with_name(f".auth_token.{os.getpid()}"), secrets.token_hex(32))
        try:
            os.link(staging, path)  # atomic: two runs starting at once agree on one token
        except FileExistsError:
            pass
        finally:
            staging.unlink(missing_ok=True)
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ClusterError(f"{path} must be a file of yours that only you can read (mode 0600): remove it and "
                           "run again")
    return path


def local_env() -> dict[str, str]:
    """Variables (set before Ray starts) under which a local instance and its driver use the lab's token."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(local_token())}


def use_local_token() -> None:
    """Set `local_env()` in this process; a `RAY_AUTH_TOKEN` (it would win over the file) is dropped."""
    os.environ.pop("RAY_AUTH_TOKEN", None)
    os.environ.update(local_env())


# ------------------------------------------------------------------ a cluster's
def token_allowed(address: str) -> bool:
    """Whether the user's Ray token may go to `address` (HOST:PORT, ray://HOST:PORT or http(s)://HOST:PORT)."""
    host, port = split_address(address)
    if host is None:
        return False
    listed = {h.strip().lower() for h in os.environ.get(HOSTS_SETTING, "").split(",") if h.strip()}
    if host.lower() in listed:
        return True
    return port is not None and _own_local_listener(host, port)


def apply_cluster_auth(address: str) -> None:
    """Before joining the cluster at `address`: token authentication on when the user's token may go there
    (and a token exists), off otherwise; whatever RAY_AUTH_MODE said."""
    if token_allowed(address):
        if _has_token():
            os.environ["RAY_AUTH_MODE"] = "token"
    else:
        os.environ["RAY_AUTH_MODE"] = "disabled"


def split_address(address: str) -> tuple[str | None, int | None]:
    """(host, port) of a Ray or dashboard address; (None, None) when it has no host."""
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def resolve_auto() -> str | None:
    """The address `--address auto` means here (RAY_ADDRESS, else the last `ray start` of this machine);
    None when there is none."""
    from ray._private import services

    try:
        return services.get_ray_address_from_environment("auto", None)
    except (ConnectionError, OSError, ValueError):
        return None


def _has_token() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").exists())


def _own_local_listener(host: str, port: int) -> bool:
    """Whether `host` is an address of this machine and every TCP socket listening on it at `port` is this
    user's (from the kernel's socket tables: owner uid of the listening socket)."""
    addresses = _local_addresses(host)
    if not addresses:
        return False
    owners = set()
    for table in TCP_TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[3] != LISTEN:
                continue
            ip_hex, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port:
                continue
            ip = _proc_ip(ip_hex)
            if ip in addresses or ip.is_unspecified:
                owners.add(int(fields[7]))
    return owners == {os.getuid()}


def _local_addresses(host: str) -> set:
    """The addresses `host` names that belong to this machine (those a socket can bind)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    found = set()
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((sockaddr[0], 0))
            found.add(ipaddress.ip_address(sockaddr[0].split("%")[0]))
        except (OSError, ValueError):
            continue
    return found


def _proc_ip(text: str):
    """An address as /proc/net/tcp{,6} writes it (32-bit words in host byte order, hex)."""
    raw = bytes.fromhex(text)
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]  # little-endian words on x86 and arm64
    address = ipaddress.ip_address(b"".join(words))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address

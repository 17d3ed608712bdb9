"""Reading one environment variable: a number within bounds, a directory, networks,
code=name pairs, a bind address, an account, a URL. Each refuses a bad value with a
ConfigError naming the variable (config.py builds the Settings from them; the jobs'
settings read their own variables the same way)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from ipaddress import ip_network
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError


def number(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float,
             kind: type = int):
    """A number (`kind` int or float) within bounds; the default when unset or empty.

    Every number has both bounds: `inf`, `nan` or a value past what its consumer can hold
    (PostgreSQL's statement_timeout is a 32-bit integer) is refused at start rather than
    starting a service that answers 503 forever."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(name, f"must be {noun}, got {raw!r}") from None
    if not minimum <= value <= maximum:  # NaN fails too
        raise ConfigError(name, f"must be between {minimum} and {maximum}, got {raw}")
    return value


def directory(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not (os.path.isdir(raw) and os.access(raw, os.W_OK)):
        raise ConfigError(name, f"must be an existing writable directory, got {raw!r}")
    return raw or None


def networks(env: Mapping[str, str], name: str) -> tuple:
    """Comma-separated addresses or CIDR networks."""
    found = []
    for part in env.get(name, "").split(","):
        if part.strip():
            try:
                found.append(ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(name, "must be comma-separated addresses or networks (CIDR), "
                                        f"got {part.strip()!r}") from None
    return tuple(found)


def status_names(env: Mapping[str, str], name: str) -> dict[int, str]:
    """`6=waiting on customer, 8=monthly`: what an account's own status codes are called."""
    names: dict[int, str] = {}
    for part in env.get(name, "").split(","):
        if not part.strip():
            continue
        code, equals, word = part.partition("=")
        if not equals or not code.strip().isdigit() or not word.strip():
            raise ConfigError(name, "must be comma-separated code=name pairs (6=waiting on customer), "
                                    f"got {part.strip()!r}")
        names[int(code)] = " ".join(word.lower().split())
    return names


def code_names(env: Mapping[str, str], name: str) -> dict[str, str]:
    """`1=new, 4=closed`: what an account calls a vendor's codes (HubSpot's pipeline stage
    ids are the portal's own), for any vendor that declares such a variable."""
    names: dict[str, str] = {}
    for part in env.get(name, "").split(","):
        if not part.strip():
            continue
        code, equals, word = part.partition("=")
        if not equals or not code.strip() or not word.strip():
            raise ConfigError(name, f"must be comma-separated code=name pairs (4=closed), got {part.strip()!r}")
        names[code.strip()] = " ".join(word.lower().split())
    return names


def bind(env: Mapping[str, str], name: str, default: str) -> str:
    """host:port, [ipv6]:port or unix:/path: what gunicorn can listen on."""
    raw = env.get(name, "").strip() or default
    if raw.startswith("unix:") and len(raw) > 5:
        return raw
    host, colon, port = raw.rpartition(":")
    if colon and port.isdigit() and 0 < int(port) < 65536 and host and " " not in host:
        return raw
    raise ConfigError(name, f"must be host:port or unix:/path, got {raw!r}")


#: A vendor account as URLs and sources write it (the webhook route's last segment).
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def account(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not ACCOUNT.fullmatch(raw):
        raise ConfigError(name, "must be an account as the webhook URL's last segment writes it: letters, digits, "
                                "'.', '_' and '-', at most 100")
    return raw or None


def url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], required: bool) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        if required:
            raise ConfigError(name, f"is required (for example {schemes[0]}://user:password@127.0.0.1/ingestion)")
        return None
    scheme = raw.partition("://")[0]
    if scheme not in schemes or "://" not in raw:
        raise ConfigError(name, f"must be a URL starting with one of {', '.join(s + '://' for s in schemes)}")
    _check_parts(name, raw)
    return raw


def _check_parts(name: str, raw: str) -> None:
    """The URL's host, port and (for Redis) database are readable, so a typo stops the
    process here in one line instead of a traceback at the first connection, or a service
    degraded for good. Each URL is read by the parser that will use it: libpq's for
    PostgreSQL (it takes a password holding `#`, `?` or `[`, and several hosts), the
    standard library's for the others (redis-py's and nats-py's). The URL itself is never
    repeated: it may hold a password, and the parsers' messages quote it."""
    if raw.partition("://")[0] in ("postgresql", "postgres"):
        try:
            ports = str(conninfo_to_dict(raw).get("port") or "")
        except psycopg.Error:
            raise ConfigError(name, "is not a URL PostgreSQL's client can read") from None
        if any(port and not (port.isdigit() and 0 < int(port) < 65536) for port in ports.split(",")):
            raise ConfigError(name, "names a port that is not a number from 1 to 65535")
        return
    problem = None
    try:
        parts = urlsplit(raw)
    except ValueError as error:  # a broken host: "[x:6379"
        raise ConfigError(name, f"is not a valid URL ({error})") from None
    try:
        port = parts.port
    except ValueError as error:  # out of range, not a number, or several nodes
        port, problem = -1, error
    if parts.scheme.endswith("+cluster"):
        # One node (the client learns the others) and database 0, the only one a cluster
        # has: `limits`' `h1:p1,h2:p2` form is not read by redis-py.
        if "," in parts.netloc or port == -1 or not parts.hostname:
            raise ConfigError(name, "a cluster URL names one node: redis+cluster://host:6379 "
                                    "(the client finds the others)")
        if parts.path.strip("/") not in ("", "0"):
            raise ConfigError(name, "a Redis Cluster has database 0 only: leave the path out")
        return
    if problem is not None:
        raise ConfigError(name, f"is not a valid URL ({problem})")
    if parts.scheme in ("redis", "rediss") and parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ConfigError(name, "names a database that is not a number: redis://host:6379/0")
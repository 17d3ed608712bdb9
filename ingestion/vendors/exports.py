"""What every vendor's ticket export shares: reading its API access from the environment
(a base URL setting that overrides the vendor's own host, credentials that come in
pairs) and reading tickets' update times. Vendors declare their variables and shapes;
this checks them the same way for all."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import CredentialError
from ..errors import InvalidField
from ..normalize.values import timestamp
from ..vendor import APIAccess

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def value(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def base_url(env: Mapping[str, str], url_variable: str, default: str | None, needs: str) -> str:
    """The API base URL: `url_variable` when set (tests, proxies, sandboxes), else the
    vendor's own host (`default`), else an error naming `needs`, the variable that builds it."""
    raw = value(env, url_variable)
    if not raw:
        if default is None:
            raise CredentialError(needs, f"is required to call the API (or set {url_variable})")
        return default
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (read for its ValueError: a port out of range)
    except ValueError as error:
        raise CredentialError(url_variable, f"must be an http(s) URL ({error}), got {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialError(url_variable, f"must be an http(s) URL, got {raw!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CredentialError(url_variable, "must be a plain base URL: no credentials, query or fragment")
    return raw.rstrip("/")


def host_label(env: Mapping[str, str], name: str, suffix: str) -> str | None:
    """A vendor subdomain (`acme`, or `acme` + suffix written whole) as its https URL."""
    raw = value(env, name).lower().removeprefix("https://").rstrip("/")
    if not raw:
        return None
    label = raw.removesuffix(suffix)
    if not _HOST_LABEL.match(label):
        raise CredentialError(name, f"must be your subdomain (acme for acme{suffix}), got {raw!r}")
    return f"https://{label}{suffix}"


def pair(env: Mapping[str, str], first: str, second: str) -> tuple[str, str] | None:
    """Two variables that are set together or not at all."""
    a, b = value(env, first), value(env, second)
    if a and not b:
        raise CredentialError(second, f"is required with {first}")
    if b and not a:
        raise CredentialError(first, f"is required with {second}")
    return (a, b) if a else None


def updated_at(ticket: Mapping[str, Any]) -> datetime | None:
    """A ticket's updated_at, None when missing or unreadable (the export goes on)."""
    try:
        return timestamp(ticket.get("updated_at"), "updated_at")
    except (ValueError, InvalidField):
        return None


def latest(tickets: tuple[Mapping[str, Any], ...]) -> datetime | None:
    times = [when for ticket in tickets if (when := updated_at(ticket)) is not None]
    return max(times) if times else None


def snapshot_time(ticket: Mapping[str, Any]) -> str | None:
    updated = ticket.get("updated_at")
    return updated if isinstance(updated, str) else None


def account(env: Mapping[str, str], name: str) -> str | None:
    """The account key reconciled tickets are stored under; None (unset): found from the
    stored tickets. Set it empty to force the empty account."""
    return env[name].strip() if name in env else None


def bearer_access(env: Mapping[str, str], token: str, url: str, default_url: str,
                  account_variable: str) -> APIAccess | None:
    """A vendor API reached with a bearer token (`token`, the variable naming it) at the URL
    `url` names, or `default_url`; None without a token (Intercom, HubSpot)."""
    secret = value(env, token)
    if not secret:
        return None
    return APIAccess(base_url=base_url(env, url, default_url, url), scheme="bearer", token=secret,
                     account=account(env, account_variable))

"""Quarantine: an authentic delivery the service could not read is kept, not dropped.

Why it works this way: docs/design.md, "Quarantine".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ApiError
from .metrics import QUARANTINE_REMOVED, QUARANTINED, child
from .storage import Storage

#: Headers that say which delivery this was: vendor event, delivery, webhook and account
#: ids (Jira's `X-Atlassian-Webhook-Identifier`, with its retry count and flow), the event
#: name, and the request's own id and content type.
_IDENTIFYING = re.compile(
    r"^(content-type|user-agent|x-request-id|[a-z0-9-]*-(id|identifier|event|event-type|topic|delivery|attempt|"
    r"retry|retry-count|flow|timestamp))$")
#: Never kept, whatever their name ends with: they authenticate or identify a person.
_SECRET = re.compile(r"authorization|signature|token|secret|cookie|key|password|auth|email")
_MAX_HEADER_VALUE = 256


def identifying_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping with a quarantined delivery (see _IDENTIFYING)."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if _IDENTIFYING.match(lowered) and not _SECRET.search(lowered):
            kept[lowered] = clean_text(value)[:_MAX_HEADER_VALUE]
    return kept


class StoredHeaders(dict):
    """A quarantined delivery's headers (kept lower-cased) read as a request's are, by any
    case of their names: what the normalizers get when an entry is replayed."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


def clean_text(text: str) -> str:
    """PostgreSQL text holds no NUL character; an error message may quote one."""
    return text.replace("\x00", "\\u0000")


def keep(storage: Storage, *, vendor: str, account: str, error: ApiError, body: bytes,
         headers: Mapping[str, str], auth_method: str, request_id: str | None, max_entries: int) -> int:
    """Store one refused delivery; return its quarantine id. Raises DatabaseUnavailable
    (a 503: the vendor retries) when it cannot be stored."""
    entry_id, evicted = storage.quarantine(
        vendor=vendor, account=account, status=error.status, reason=error.reason, error=clean_text(error.message),
        body=body, headers=identifying_headers(headers), auth_method=auth_method, request_id=request_id,
        max_entries=max_entries)
    child(QUARANTINED, vendor, error.reason).inc()
    if evicted:
        child(QUARANTINE_REMOVED, "bound").inc(evicted)
    return entry_id

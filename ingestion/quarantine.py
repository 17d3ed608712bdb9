"""Quarantine: an authentic delivery the service could not read is kept, not dropped.

Vendors do not retry a 4xx, so a delivery answered 400 or 422 and forgotten would be
lost for good. Once a request has passed authentication (a real credential: development
without one stores nothing, so no stranger can fill the table), a body that is not
UTF-8, not JSON, not an object, or lacks a usable ticket id is stored with its raw
bytes, its vendor and account, the headers that identify the delivery (never a
credential), the error and when it arrived. The answer stays the 4xx, so the vendor's
own log shows the failure, and carries `quarantine_id`. `python -m ingestion replay`
(ingestion/replay.py) ingests the entries once the normalizer reads them.

If the database cannot take the entry, the answer is the database's 503 with
Retry-After instead: the vendor retries, and the delivery is quarantined then.

The table is bounded: past QUARANTINE_MAX_ENTRIES the oldest entries are evicted as new
ones arrive, and the relay prunes entries older than QUARANTINE_RETENTION_DAYS; both
are counted in `ingestion_quarantine_removed_total`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import ApiError
from .metrics import QUARANTINE_REMOVED, QUARANTINED, child
from .storage import Storage

#: Headers that say which delivery this was: vendor event, delivery, webhook and account
#: ids, the event name, and the request's own id and content type.
_IDENTIFYING = re.compile(
    r"^(content-type|user-agent|x-request-id|[a-z0-9-]*-(id|event|event-type|topic|delivery|attempt|"
    r"retry-count|timestamp))$")
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

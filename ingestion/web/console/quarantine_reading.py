"""How the quarantine pages read their URLs and show an entry: the filter, ids and
cursors (a bad value is a message, never a 500; an id of no one's is a 404) and a body
as it can be shown (never raw control characters). Shared by quarantine.py (the list,
one entry, replay one) and quarantine_bulk.py (the bulk replay)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from flask import abort, g

from ...errors import BadFilter
from ...normalize.values import whole_number
from ...quarantine import identifying_headers
from ..current import services
from ...storage.console_quarantine import QuarantineFilter

PAGE_SIZE = 50
PREVIEW_BYTES = 16 * 1024
FILTERS = ("vendor", "account", "reason", "since", "until")
#: The reasons entries are kept for (README: ingestion_quarantined_total), offered as hints.
KNOWN_REASONS = ("empty", "not_utf8", "not_json", "not_object", "too_deep", "invalid_field", "unstorable")
_REASON = re.compile(r"[a-z0-9_]{1,64}")
#: Control characters but tab and line breaks: shown as \uXXXX, never raw in the page.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_ID = 2**63 - 1


def moment(name: str, text: str) -> datetime:
    """A time from the URL, read as UTC unless it names its zone."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise BadFilter(f"'{name}' must be a UTC time like 2026-12-05T10:00") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def read_filter(args: Any, vendors: list[str]) -> QuarantineFilter:
    """The filter the URL asks for; BadFilter names the first unusable value."""
    given = {name: (args.get(name) or "").strip() or None for name in FILTERS}
    if given["vendor"] is not None and given["vendor"] not in vendors:
        raise BadFilter(f"'vendor' must be one of: {', '.join(vendors)}")
    if given["account"] is not None and (len(given["account"]) > 200 or not given["account"].isprintable()):
        raise BadFilter("'account' must be at most 200 printable characters")
    if given["reason"] is not None and not _REASON.fullmatch(given["reason"]):
        raise BadFilter("'reason' is a label such as invalid_field or not_json")
    since = moment("since", given["since"]) if given["since"] else None
    until = moment("until", given["until"]) if given["until"] else None
    if since is not None and until is not None and since >= until:
        raise BadFilter("'since' must be before 'until'")
    return QuarantineFilter(given["vendor"], given["account"], given["reason"], since, until)


def an_id(text: str | None) -> int | None:
    """A row id (a positive bigint) written in a URL or a form, or None."""
    return whole_number(text or "", 1, MAX_ID)


def entry_id(text: str | None, what: str = "quarantine entry") -> int:
    """An id in a URL's path; anything else is a 404, like an id of no one's."""
    found = an_id(text)
    if found is None:
        abort(404, f"No such {what}")
    return found


def cursor(text: str | None) -> int:
    """The page's cursor, `before` (an id): the newest page without it."""
    if not text:
        return MAX_ID
    found = an_id(text)
    if found is None:
        raise BadFilter("'before' must be an entry id")
    return found


def scoped_entry(text: str, fresh: bool = False) -> dict[str, Any]:
    """The entry a URL names, of the operator's scope: else 404, whether it exists or not.
    `fresh`: from the primary, for an entry about to be replayed (storage/replica.py)."""
    row = services().storage.console_quarantine_entry(entry_id(text), g.operator.scope, fresh=fresh)
    if row is None:
        abort(404, "No such quarantine entry")
    return row


def shown_body(data: bytes, size: int) -> dict[str, Any]:
    """How a body reads on the page: UTF-8 as text (a preview cut inside a character
    loses that character), anything else escaped (`\\xff`); control characters escaped."""
    cut = len(data) < size
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        if cut and error.end == len(data) and error.start >= len(data) - 3:
            text, encoding = data[:error.start].decode("utf-8", "backslashreplace"), "utf-8"
        else:
            text, encoding = data.decode("utf-8", "backslashreplace"), "escaped"
    text = _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return {"text": text, "encoding": encoding, "cut": cut, "size": size}


def present(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as the templates show it."""
    headers = identifying_headers(row["headers"] or {})
    return {**row, "headers": dict(sorted(headers.items())), "body": shown_body(bytes(row["body"]), row["size"])}


def filter_args(args: Any) -> dict[str, str]:
    """The filter's URL parameters as given (for links that keep the view)."""
    return {name: args[name] for name in FILTERS if args.get(name)}

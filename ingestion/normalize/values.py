"""Values: ids, text, status words, tags and timestamps, as vendors and admins write them.

A value of the wrong kind (an object where text belongs) is refused with `InvalidField`
naming the field (422). A value that is merely unusual is normalized: an empty string is
"no value" (placeholders of an unset field render as ""), numbers are accepted where text
is expected (ids, codes), a human-formatted date becomes None while the raw payload keeps
it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidField

# Vendor ids are numbers; the pattern also admits the opaque ids test tools and relays
# use, and refuses unrendered placeholders ("{{ticket.id}}") and whitespace, which would
# otherwise merge unrelated deliveries into one bogus ticket.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CODE = re.compile(r"[0-9]{1,9}")
# Epoch numbers: beyond this they are milliseconds (year 5138 in seconds).
_EPOCH_MS = 100_000_000_000


def storable(value: str) -> bool:
    """True when PostgreSQL text can hold the string: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def whole_number(text: str, minimum: int, maximum: int) -> int | None:
    """`text` as a whole number between minimum and maximum, or None: ASCII digits only
    ('²'.isdigit() is true), and no longer than the maximum's, so Python's 4300-digit
    limit on int() is never reached (a 5000-digit cursor was a 500)."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text.lstrip("0")) > len(str(maximum)):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def ticket_id(value: Any, field: str) -> str:
    """`123` and `"123"` are the same id, so ids are kept as strings."""
    if value is None or value == "":
        raise InvalidField(field, "is missing: a ticket id is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidField(field, "must be a string or an integer")
    text_id = str(value).strip()
    if not _ID.fullmatch(text_id):
        raise InvalidField(field, "is not a usable ticket id (letters, digits and ._:- only, "
                                  "at most 128 characters; an unrendered placeholder?)")
    return text_id


def text(value: Any, field: str) -> str | None:
    """Text kept exactly as sent (HTML is never rendered); None for null or "".
    Integers become their decimal text (ids and codes arrive as numbers)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidField(field, "must be a string")
    if not isinstance(value, str):
        return str(value)
    # PostgreSQL text cannot hold NUL, and a lone surrogate (a "\\ud800" escape) cannot
    # be encoded to UTF-8: refuse both here with a clear 422 rather than failing deeper.
    if "\x00" in value:
        raise InvalidField(field, "must not contain NUL (\\u0000) characters")
    if not storable(value):
        raise InvalidField(field, "contains an unpaired UTF-16 surrogate")
    return value


def optional_id(value: Any, field: str) -> str | None:
    """A person's, group's or organization's id: text, or None for 0 / "0" (unset)."""
    result = text(value, field)
    return None if result in ("0",) else result


def code_word(value: Any, field: str, codes: Mapping[int, str], synonyms: Mapping[str, str] | None = None) -> str | None:
    """Status or priority as a lower-case word; numeric codes mapped, unknown ones kept;
    `synonyms` folds one vendor's spellings of a word into one ("on-hold" -> "hold")."""
    word = text(value, field)
    if word is None:
        return None
    word = word.strip()
    if _CODE.fullmatch(word):  # ASCII digits only: "²".isdigit() is true but int("²") fails
        return codes.get(int(word), word)
    word = " ".join(word.lower().split())
    return (synonyms or {}).get(word, word) or None


def tags(value: Any, field: str) -> tuple[str, ...]:
    """Tags from an array (of strings, or of objects with a `tag` or `name`), or from
    one string split on commas (if any) else on spaces.

    Zendesk placeholders render `{{ticket.tags}}` as "a b c"; Freshdesk's render
    "a, b"; the API shapes send arrays; Help Scout sends `{"id", "tag", "color"}` objects.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(",") if "," in value else value.split()
    elif isinstance(value, list):
        parts = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                item = item.get("tag", item.get("name"))
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise InvalidField(f"{field}[{index}]", "must be a string")
            parts.append(str(item))
    else:
        raise InvalidField(field, "must be an array of strings or a string")
    cleaned = (text(part, field) for part in parts)
    return tuple(dict.fromkeys(tag.strip() for tag in cleaned if tag and tag.strip()))


def timestamp(value: Any, field: str) -> datetime | None:
    """ISO-8601 (or epoch seconds/milliseconds) expressed in UTC (naive means UTC), so the
    same instant written with two offsets is one value. A human-formatted date ("February
    3, 2025", what Zendesk placeholders render) is None; the raw payload keeps it, and the
    ticket its stored time (normalize/ticket_fields.py)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1000 if abs(value) >= _EPOCH_MS else value
            return datetime.fromtimestamp(seconds, timezone.utc)
        if not isinstance(value, str):
            raise InvalidField(field, "must be a string (an ISO-8601 timestamp)")
        moment = datetime.fromisoformat(value.strip())
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        # OverflowError: year 1 or 9999 pushed past the calendar by its offset
        return None


def object_at(payload: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """payload[key], which must be present and a JSON object."""
    if key not in payload:
        raise InvalidField(where + key, "is missing: expected a JSON object")
    value = payload[key]
    if not isinstance(value, dict):
        raise InvalidField(where + key, "must be a JSON object")
    return value


def optional_object(payload: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any] | None:
    """payload[key] when present: a JSON object, or null."""
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(where + key, "must be a JSON object")
    return value

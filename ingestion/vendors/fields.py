"""Parsing shared by every vendor: ids, text, status words, tags, timestamps.

Vendor modules only decide *where* the ticket sits in their payload and which numeric
codes they use; turning a mapping of fields into a `Ticket` happens here, once, so both
vendors accept the same spellings and reject the same mistakes with the same 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidField
from ..tickets import Ticket

#: Field name -> keys it may arrive under. Vendors' own names come first, then the
#: `ticket_`-prefixed names that Freshdesk placeholders and hand-written Zendesk trigger
#: bodies use ("ticket_title" is Zendesk's placeholder name for the subject).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ticket_id"),
    "subject": ("subject", "ticket_subject", "title", "ticket_title"),
    "description": ("description", "ticket_description"),
    "status": ("status", "ticket_status"),
    "priority": ("priority", "ticket_priority"),
    "requester_name": ("requester_name", "ticket_requester_name"),
    "requester_email": ("requester_email", "ticket_requester_email"),
    "tags": ("tags", "ticket_tags"),
    "created_at": ("created_at", "ticket_created_at"),
    "updated_at": ("updated_at", "ticket_updated_at"),
}

# Vendor ids are numbers; the pattern also admits the opaque ids test tools and relays
# use, and refuses unrendered placeholders ("{{ticket.id}}") and whitespace, which would
# otherwise merge unrelated deliveries into one bogus ticket.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CODE = re.compile(r"[0-9]{1,9}")


def pick(fields: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """The first key under which `name` is present, and its value (None when absent)."""
    for key in FIELD_ALIASES[name]:
        if key in fields:
            return key, fields[key]
    return FIELD_ALIASES[name][0], None


def object_at(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """payload[key], which must be present and a JSON object."""
    if key not in payload:
        raise InvalidField(key, "is missing: expected a JSON object")
    value = payload[key]
    if not isinstance(value, dict):
        raise InvalidField(key, "must be a JSON object")
    return value


def ticket_id(value: Any, field: str) -> str:
    """`123` and `"123"` are the same id (SPEC 2.1), so ids are kept as strings."""
    if value is None or value == "":
        raise InvalidField(field, "is missing: a ticket id is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidField(field, "must be a string or an integer")
    text_id = str(value).strip()
    if not _ID.fullmatch(text_id):
        raise InvalidField(field, "is not a usable ticket id (letters, digits and ._:- only, "
                                  "at most 128 characters; an unrendered placeholder?)")
    return text_id


def storable(value: str) -> bool:
    """True when PostgreSQL text can hold the string: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: Any, field: str) -> str | None:
    """A text field kept exactly as sent; None for absent or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    # PostgreSQL text cannot hold NUL, and a lone surrogate (a "\\ud800" escape) cannot
    # be encoded to UTF-8: refuse both here with a clear 422 rather than failing deeper.
    if "\x00" in value:
        raise InvalidField(field, "must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField(field, "contains an unpaired UTF-16 surrogate") from None
    return value


def code_word(value: Any, field: str, codes: Mapping[int, str]) -> str | None:
    """Status or priority as a lower-case word; numeric codes mapped, unknown ones kept."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidField(field, "must be a string or an integer")
    word = text(str(value), field).strip()
    if _CODE.fullmatch(word):  # ASCII digits only: "²".isdigit() is true but int("²") fails
        return codes.get(int(word), word)
    return word.lower() or None


def tags(value: Any, field: str) -> tuple[str, ...]:
    """Tags from an array, or from one string split on commas (if any) else on spaces.

    Zendesk placeholders render `{{ticket.tags}}` as "a b c"; Freshdesk's render
    "a, b"; both API shapes send arrays.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(",") if "," in value else value.split()
    elif isinstance(value, list):
        parts = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise InvalidField(f"{field}[{index}]", "must be a string")
            parts.append(str(item))
    else:
        raise InvalidField(field, "must be an array of strings or a string")
    cleaned = (text(part, field).strip() for part in parts)
    return tuple(tag for tag in cleaned if tag)


def timestamp(value: Any, field: str) -> datetime | None:
    """ISO-8601 parsed and expressed in UTC (naive means UTC), so the same instant written
    with two offsets is the same content; a human-formatted date ("February 3, 2025", what
    Zendesk placeholders render) becomes None while the raw payload keeps it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string (an ISO-8601 timestamp)")
    try:
        moment = datetime.fromisoformat(value.strip())
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 pushed past the range by its offset
        return None


def _requester(fields: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    _, name = pick(fields, "requester_name")
    _, email = pick(fields, "requester_email")
    nested = fields.get("requester")
    if isinstance(nested, dict):  # API shapes: {"requester": {"name": ..., "email": ...}}
        name = name if name is not None else nested.get("name")
        email = email if email is not None else nested.get("email")
    return text(name, f"{where}requester_name"), text(email, f"{where}requester_email")


def ticket_from_fields(
    source: str,
    fields: Mapping[str, Any],
    *,
    where: str = "",
    status_codes: Mapping[int, str] | None = None,
    priority_codes: Mapping[int, str] | None = None,
    fallback_id: Any = None,
) -> Ticket:
    """Build a Ticket from one mapping of vendor fields.

    `where` prefixes field names in error messages ("ticket.", "detail.") so a 422 names
    the field as it appears in the payload.
    """
    values = {name: pick(fields, name) for name in FIELD_ALIASES}

    def at(name: str) -> tuple[Any, str]:
        key, value = values[name]
        return value, f"{where}{key}"

    raw_id, id_field = at("id")
    if raw_id is None and fallback_id is not None:
        raw_id = fallback_id
    requester_name, requester_email = _requester(fields, where)
    return Ticket(
        source=source,
        external_id=ticket_id(raw_id, id_field),
        subject=text(*at("subject")),
        description=text(*at("description")),
        status=code_word(*at("status"), status_codes or {}),
        priority=code_word(*at("priority"), priority_codes or {}),
        requester_name=requester_name,
        requester_email=requester_email,
        tags=tags(*at("tags")),
        vendor_created_at=timestamp(*at("created_at")),
        vendor_updated_at=timestamp(*at("updated_at")),
    )

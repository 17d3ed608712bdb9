"""Requesters and assignees, in every form they arrive.

- an object: `{"name"}`, `{"first_name", "last_name"}`, `{"first", "last"}` (Help Scout),
  `{"firstName", "lastName"}`, with `email` and `id`;
- a string "Jane Doe <jane@example.com>" (Zendesk's `{{ticket.requester}}`), a bare
  address, or a bare name; "  <>" is Zendesk's rendering of "nobody";
- separate keys beside the ticket (`requester_name`, `ticket_contact_email`, ...), which
  the caller finds and passes in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidField
from .keys import Keys
from .values import optional_id, text

_NAME_AND_ADDRESS = re.compile(r"^\s*(?P<name>.*?)\s*<\s*(?P<email>[^<>\s]*)\s*>\s*$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


@dataclass(frozen=True)
class Person:
    """What one payload says about a person; None = not said (the field is absent)."""

    name: Any = None
    email: Any = None
    id: Any = None
    said_name: bool = False
    said_email: bool = False
    said_id: bool = False


def from_string(value: str, field: str) -> Person:
    """'Jane Doe <jane@example.com>', 'jane@example.com', 'Jane Doe' or '  <>'."""
    value = text(value, field) or ""
    match = _NAME_AND_ADDRESS.match(value)
    if match:
        return Person(match.group("name") or None, match.group("email") or None, None, True, True)
    if _ADDRESS.match(value.strip()):
        return Person(None, value.strip(), None, False, True)
    return Person(value.strip() or None, None, None, True, False)


def from_object(value: Mapping[str, Any], field: str) -> Person:
    keys = Keys(value, field + ".")
    name = keys.find(("name", "fullname", "displayname"))
    first = keys.find(("firstname", "first"))
    last = keys.find(("lastname", "last"))
    email = keys.find(("email", "emailaddress"))
    ident = keys.find(("id",))
    full = text(name[1], name[0]) if name else None
    if full is None and (first or last):
        parts = [text(part[1], part[0]) for part in (first, last) if part]
        full = " ".join(p for p in parts if p) or None
    return Person(
        full, text(email[1], email[0]) if email else None, optional_id(ident[1], ident[0]) if ident else None,
        bool(name or first or last), bool(email), bool(ident),
    )


def from_value(value: Any, field: str) -> Person:
    """A person given as an object or a string; an id (a number) alone is an id."""
    if isinstance(value, dict):
        return from_object(value, field)
    if isinstance(value, str):
        return from_string(value, field)
    if isinstance(value, int) and not isinstance(value, bool):
        return Person(id=optional_id(value, field), said_id=True)
    if value is None:
        return Person()
    raise InvalidField(field, "must be an object or a string")


def merge(*people: Person) -> Person:
    """The first person who says each part wins (specific keys before nested objects)."""
    name = next((p for p in people if p.said_name), None)
    email = next((p for p in people if p.said_email), None)
    ident = next((p for p in people if p.said_id), None)
    return Person(name.name if name else None, email.email if email else None, ident.id if ident else None,
                  bool(name), bool(email), bool(ident))

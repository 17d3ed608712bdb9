"""Where the ticket sits in a body.

Vendors nest it under `ticket` (Freshdesk's API shape, admin bodies) or
`freshdesk_webhook`; relays and integration platforms wrap that again (`{"detail":
{"ticket_event": {"ticket": ...}}}` from EventBridge, `{"input": ...}` from Zendesk
Integration Services, `{"schema", "data": {...}}` from a tracker); and many admin bodies
are flat. The first object found under a ticket key, looking through the usual wrapper
keys breadth-first, is the ticket; the object holding it is the event's envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .keys import fold

TICKET_KEYS = ("ticket", "freshdesk_webhook")
WRAPPER_KEYS = ("data", "detail", "ticket_event", "input", "payload", "body", "event")
MAX_DEPTH = 3


@dataclass(frozen=True)
class Located:
    ticket: Mapping[str, Any]  # the ticket object (the body itself when flat)
    envelope: Mapping[str, Any]  # the object holding it (the body itself when flat)
    where: str  # the ticket's path, for error messages: "ticket.", "detail.ticket_event.ticket."
    nested: bool


def locate_ticket(body: Mapping[str, Any], ticket_keys: tuple[str, ...] = TICKET_KEYS) -> Located:
    """The ticket object of `body` (see the module docstring). A ticket key holding
    something other than an object is returned as found, so the caller can refuse it."""
    level: list[tuple[Mapping[str, Any], str]] = [(body, "")]
    for _ in range(MAX_DEPTH):
        following: list[tuple[Mapping[str, Any], str]] = []
        for container, path in level:
            for key in ticket_keys:
                if key in container:
                    return Located(container[key], container, f"{path}{key}.", True)
            following += [(container[key], f"{path}{key}.") for key in WRAPPER_KEYS
                          if isinstance(container.get(key), dict)]
        level = following
    if not _has_id(body):  # {"schema": ..., "data": {"ticketId": ...}}: a flat ticket, wrapped
        for key in WRAPPER_KEYS:
            inner = body.get(key)
            if isinstance(inner, dict) and _has_id(inner):
                return Located(inner, body, f"{key}.", True)
    return Located(body, body, "", False)


def _has_id(mapping: Mapping[str, Any]) -> bool:
    return any(isinstance(key, str) and fold(key) in ("id", "ticketid") for key in mapping)

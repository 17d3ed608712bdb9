"""Where the ticket sits in a body.

Vendors nest it under `ticket` (Freshdesk's API shape, admin bodies) or
`freshdesk_webhook`; relays and integration platforms wrap that again (`{"detail":
{"ticket_event": {"ticket": ...}}}` from EventBridge, `{"input": ...}` from Zendesk
Integration Services, `{"schema", "data": {...}}` from a tracker); and many admin bodies
are flat. The first object found under a ticket key, looking through the usual wrapper
keys breadth-first, is the ticket; the object holding it is the event's envelope.

Some relays flatten the nesting into the keys: n8n's Zendesk Trigger node posts a body
whose keys are the placeholders it asked for (`{"ticket.id": "35436", "ticket.requester.email":
...}`, packages/nodes-base/nodes/Zendesk/ZendeskTrigger.node.ts). `unflatten` reads such
a body as the nested one it spells out, so it is located like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .keys import fold, stored_order

TICKET_KEYS = ("ticket", "freshdesk_webhook")
WRAPPER_KEYS = ("data", "detail", "ticket_event", "input", "payload", "body", "event")
MAX_DEPTH = 3
#: The most segments a dotted key is read as a path (n8n's longest placeholder,
#: `current_user.organization.details`, has 3); a longer key stays a key as written, so
#: no body can nest deeper than the readers expect.
MAX_PATH = 4


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


def unflatten(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body with its top-level dotted keys read as paths: `{"ticket.id": "1",
    "ticket.requester.email": "a@b"}` is `{"ticket": {"id": "1", "requester": {"email":
    "a@b"}}}`. A body without dotted keys is returned as it is. A key the body already
    spells out nested wins; a dotted key that cannot be placed (its path runs into a value
    that is not an object, or it has an empty segment or too many) stays as written. The
    body itself is never changed."""
    if not any(_is_path(key) for key in body):
        return body
    result: dict[str, Any] = {key: value for key, value in body.items() if not _is_path(key)}
    # Placed in jsonb's order, not the body's: where one path runs into another
    # (`ticket.requester` and `ticket.requester.email`), which is placed first decides,
    # and a rebuild reads the body back from jsonb.
    for key in sorted((key for key in body if _is_path(key)), key=stored_order):
        value = body[key]
        *parents, leaf = key.split(".")
        node: dict[str, Any] | None = result
        for part in parents:
            child = node.get(part, {})
            if not isinstance(child, dict):
                node = None
                break
            node[part] = node = dict(child)  # a copy: the caller's objects stay as sent
        if node is None or leaf in node:
            result.setdefault(key, value)
        else:
            node[leaf] = value
    return result


def _is_path(key: Any) -> bool:
    if not isinstance(key, str) or "." not in key:
        return False
    parts = key.split(".")
    return len(parts) <= MAX_PATH and all(part.strip() for part in parts)

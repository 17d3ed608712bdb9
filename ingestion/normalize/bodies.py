"""An admin-written or relayed body, read the same way for every vendor.

Dotted keys are read as the paths they spell (shapes.unflatten: n8n's relayed Zendesk
bodies), the ticket is located (shapes.py), its fields recognised (ticket_fields.py), people
given beside a nested ticket added (`{"requester": {...}, "ticket": {...}}`), the comment
found in the ticket or beside it, the event named by the body if it names itself, and
changes taken where they are given. Vendor modules add what only they know (Freshdesk's
`triggered_event`, Zendesk's headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidField
from ..tickets import Comment
from . import comments, events
from .keys import Keys
from .shapes import TICKET_KEYS, locate_ticket, unflatten
from .ticket_fields import Vocabulary, find_id, recognise
from .values import ticket_id

#: Fields taken from beside a nested ticket when the ticket itself does not say them.
BESIDE = ("requester_name", "requester_email", "requester_id", "assignee_name", "assignee_email", "assignee_id",
          "group", "organization")


@dataclass(frozen=True)
class Reading:
    external_id: str
    fields: dict[str, Any]
    comment: Comment | None
    event_name: str | None  # as the body names itself, if it does
    changes: dict[str, Any] | None
    keys: Keys  # the ticket's keys, for vendor-specific lookups
    envelope: Keys = field(repr=False, default=None)  # type: ignore[assignment]


def read(body: Mapping[str, Any], vocabulary: Vocabulary, strip: tuple[str, ...] = (),
         ticket_keys: tuple[str, ...] = TICKET_KEYS) -> Reading:
    located = locate_ticket(unflatten(body), ticket_keys)
    if not isinstance(located.ticket, dict):
        raise InvalidField(located.where.rstrip("."), "must be a JSON object")
    keys = Keys(located.ticket, located.where, strip)
    parent = located.where.rstrip(".").rpartition(".")[0]
    envelope = Keys(located.envelope, parent + "." if parent else "", strip) if located.nested else keys
    found = find_id(keys)
    fields = recognise(keys, vocabulary)
    if located.nested and len(located.envelope) > 1:  # anything beside the ticket?
        beside = recognise(envelope, vocabulary.beside_a_ticket)
        fields.update({name: value for name, value in beside.items() if name in BESIDE and name not in fields})
    if keys.has(("ticketid",)) and keys.has(("body", "bodytext")) and not keys.has(("subject",)):
        # A conversation (a reply, a note): its creation time is not the ticket's.
        fields.pop("vendor_created_at", None)
    comment = comments.find(keys) or (comments.find(envelope) if located.nested else None)
    name = events.named(envelope, ("type",)) if located.nested else None
    return Reading(
        external_id=ticket_id(found[1] if found else None, found[0] if found else f"{located.where}id"),
        fields=fields, comment=comment, event_name=name or events.named(keys),
        changes=events.generic_changes(keys) or (events.generic_changes(envelope) if located.nested else None),
        keys=keys, envelope=envelope,
    )

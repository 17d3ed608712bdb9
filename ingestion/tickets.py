"""What a delivery says about a ticket, and what storing it did.

A vendor payload is normalized into a `TicketEvent`: which ticket (vendor, account,
external id), the ticket fields the payload carries (and only those: a field it does not
mention is absent, not None, so storage keeps the stored value), and the event itself
(its type, the vendor's id for it, a comment, field changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

#: The event type of what the reconciler stores (jobs/reconcile/): a ticket as the
#: vendor's API exported it.
RECONCILIATION = "reconciliation"

class Outcome(str, Enum):
    """What happened to a delivery; the `status` field of the 2xx response."""

    CREATED = "created"
    UPDATED = "updated"
    RECORDED = "recorded"  # a new event that changed no ticket field (a comment, a note)
    STALE = "stale"  # a new event older than the stored ticket: kept, ticket untouched
    ALREADY_EXISTS = "already_exists"  # a redelivery of a delivery already stored
    IGNORED = "ignored"  # authentic, but not about a ticket
    DELETED = "deleted"  # the ticket was deleted at the vendor (soft or permanently)

    @property
    def http_status(self) -> int:
        return 201 if self is Outcome.CREATED else 200

    @property
    def published(self) -> bool:
        """Whether the event stream carries events of this outcome."""
        return self in (Outcome.CREATED, Outcome.UPDATED, Outcome.RECORDED, Outcome.DELETED)


class Deletion(str, Enum):
    """What an event says about the ticket's deletion at the vendor."""

    SOFT = "soft"  # moved to the trash: marked deleted, content kept (restorable there)
    PERMANENT = "permanent"  # gone for good: its content is forgotten here too
    RESTORED = "restored"  # back from the trash: the mark is cleared


@dataclass(frozen=True, slots=True)
class Comment:
    body: str
    author: str | None = None
    public: bool | None = None
    #: The vendor's id of the comment and of its version, when two kinds of delivery
    #: can carry the same comment (Jira): the comment is then stored once per ticket.
    key: str | None = None


@dataclass(frozen=True)
class TicketEvent:
    """One authentic delivery about one ticket, normalized."""

    vendor: str
    external_id: str
    account: str = ""
    #: Normalized fields present in the payload: str | None, tags a tuple of str,
    #: custom_fields a dict, timestamps aware datetimes (or None). Absent = not a key.
    fields: Mapping[str, Any] = field(default_factory=dict)
    event_type: str = "ticket.snapshot"
    #: The vendor's own id for this event, in its signed body (a Zendesk event id): a
    #: redelivery carries the same one.
    vendor_event_id: str | None = None
    comment: Comment | None = None
    changes: Mapping[str, Any] | None = None
    deletion: Deletion | None = None

    def fields_json(self) -> dict[str, Any]:
        """The fields as JSON values (what the storage function takes)."""
        out: dict[str, Any] = {}
        for name, value in self.fields.items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        if self.deletion is not None:  # not a ticket field: ingest_event() reads it beside them
            out["deletion"] = self.deletion.value
        return out


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """The answer storage gives for one delivery."""

    outcome: Outcome
    ticket_id: str | None = None
    event_id: str | None = None
    revision: int | None = None

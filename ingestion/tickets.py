"""The ticket value every vendor payload is normalized into, and the outcomes of storing it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Outcome(str, Enum):
    """What happened to a delivery; the `status` field of the 2xx response (SPEC 2.1)."""

    CREATED = "created"
    ALREADY_EXISTS = "already_exists"
    UPDATED = "updated"
    STALE = "stale"
    IGNORED = "ignored"

    @property
    def http_status(self) -> int:
        return 201 if self is Outcome.CREATED else 200


@dataclass(frozen=True, slots=True)
class Ticket:
    """A vendor ticket in our words. Text is kept exactly as sent (HTML is never rendered)."""

    source: str
    external_id: str
    subject: str | None = None
    description: str | None = None
    status: str | None = None
    priority: str | None = None
    requester_name: str | None = None
    requester_email: str | None = None
    tags: tuple[str, ...] = ()
    vendor_created_at: datetime | None = None
    vendor_updated_at: datetime | None = None

    def content_hash(self) -> str:
        """Fingerprint of the normalized fields: "same content" in SPEC 2.1.

        Raw bytes are not compared on purpose: two Zendesk events about an unchanged
        ticket differ in event id and time but describe the same ticket.
        """
        canonical = json.dumps(
            [
                self.subject, self.description, self.status, self.priority,
                self.requester_name, self.requester_email, list(self.tags),
                _iso(self.vendor_created_at), _iso(self.vendor_updated_at),
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """The answer storage gives for one delivery."""

    outcome: Outcome
    ticket_id: str | None = None
    revision: int | None = None
    content_hash: str | None = None  # of the content PostgreSQL holds after this delivery


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

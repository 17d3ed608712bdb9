"""Storing one delivery: the duplicate fast path first, PostgreSQL as the source of truth."""

from __future__ import annotations

from .duplicates import DuplicateCache
from .storage import Storage
from .tickets import Outcome, StoredDelivery, Ticket

#: Outcomes after which the cache learns what PostgreSQL now holds for the ticket (for
#: `stale`, the newer content it kept, which the stale request's lookup had cleared).
#: Not `created`: nothing can be cached for a ticket that did not exist, so creates skip
#: the round trip and the first redelivery (answered by PostgreSQL) fills the cache.
_REMEMBERED = (Outcome.UPDATED, Outcome.ALREADY_EXISTS, Outcome.STALE)


class Ingestor:
    def __init__(self, storage: Storage, duplicates: DuplicateCache | None) -> None:
        self.storage = storage
        self.duplicates = duplicates

    def store(self, ticket: Ticket, raw_json: str, vendor_delivery_id: str | None,
              request_id: str | None) -> StoredDelivery:
        content_hash = ticket.content_hash()
        if self.duplicates is None:
            return self.storage.ingest(ticket, raw_json, vendor_delivery_id, request_id, content_hash)
        lookup = self.duplicates.lookup(ticket, content_hash)
        if lookup.hit is not None:
            return lookup.hit
        stored = self.storage.ingest(ticket, raw_json, vendor_delivery_id, request_id, content_hash)
        if stored.outcome in _REMEMBERED:
            self.duplicates.remember(ticket, stored, cleared=lookup.cleared)
        return stored

    def ignore(self, source: str, vendor_delivery_id: str | None, request_id: str | None) -> StoredDelivery:
        return self.storage.record_ignored(source, vendor_delivery_id, request_id)

"""Storing one delivery: its identity, the duplicate fast path, then PostgreSQL.

Idempotency is by delivery, not by content. A delivery's identity is the vendor's id for
it when the vendor signs one (a Zendesk event subscription's event id): the same id is
the same delivery, forever. Otherwise it is a fingerprint of the body (and the event type,
which Help Scout sends in a header): the same bytes again within REDELIVERY_WINDOW are a
redelivery (vendors retry for up to about 95 minutes); past it they are a new event,
since a rule may well send the same body twice in a day (README: "Redeliveries").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone

from .batches import BatchItem
from .duplicates import DuplicateCache, Prefetched
from .json_body import check_storable
from .storage import Storage
from .tickets import Outcome, StoredDelivery, TicketEvent


def identity(event: TicketEvent, raw_body: bytes) -> tuple[str, bool]:
    """(delivery identity, whether it only holds within the redelivery window)."""
    if event.vendor_event_id:
        return "id:" + event.vendor_event_id, False
    digest = hashlib.blake2b(raw_body, digest_size=16, person=b"ingestion-body")
    digest.update(b"\0" + event.event_type.encode("utf-8", "surrogatepass"))
    return "body:" + digest.hexdigest(), True


_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def _moment(item: BatchItem) -> datetime:
    """When a batch's event happened at the vendor (events without a time first: they
    apply whatever their place, as a single delivery without one does)."""
    moment = item.event.fields.get("vendor_updated_at") if item.event is not None else None
    return moment if isinstance(moment, datetime) else _EARLIEST


class Ingestor:
    def __init__(self, storage: Storage, duplicates: DuplicateCache | None, redelivery_window: int) -> None:
        self.storage = storage
        self.duplicates = duplicates
        self.window = redelivery_window

    def store(self, event: TicketEvent, raw_body: bytes, raw_text: str, request_id: str | None,
              entry_key: str, prefetched: Prefetched | None = None, credential: str | None = None) -> StoredDelivery:
        """`entry_key`: the request's duplicate-cache key (duplicates.request_key);
        `prefetched`: its entry, when the rate limit's Redis call fetched it already;
        `credential`: the label of the credential that verified it, kept on the event."""
        check_storable(raw_text)
        key, windowed = identity(event, raw_body)
        if self.duplicates is not None:
            entry = prefetched if prefetched is not None and prefetched.key == entry_key \
                else self.duplicates.fetch(entry_key)
            hit = self.duplicates.answer(entry, event, key)
            if hit is not None:
                return hit
        stored, expires_in = self.storage.ingest(event, key, self.window if windowed else None, raw_text, request_id,
                                                 credential)
        if stored.outcome is Outcome.ALREADY_EXISTS and self.duplicates is not None:
            self.duplicates.remember(entry_key, event, key, stored, expires_in)
        return stored

    def store_batch(self, vendor: str, account: str, items: Sequence[BatchItem], request_id: str | None,
                    credential: str | None = None) -> list[StoredDelivery]:
        """A batch's events, all or none, each with its own identity (ingestion/batches.py);
        PostgreSQL alone judges redeliveries (no duplicate fast path).

        Stored oldest first by the vendor's time, answered in the body's order: a batch
        lists its events in no promised order (HubSpot's), and one event older than the
        one stored just before it would be judged stale and change nothing, where each
        carries a different property of the ticket."""
        order = sorted(range(len(items)), key=lambda place: _moment(items[place]))
        deliveries = []
        for place in order:
            item = items[place]
            if item.event is None:
                deliveries.append((None, "", None, item.text))
                continue
            check_storable(item.text, f"[{place}]")
            key, windowed = identity(item.event, item.body)
            deliveries.append((item.event, key, self.window if windowed else None, item.text))
        stored = self.storage.ingest_batch(vendor, account, deliveries, request_id, credential)
        answers: list[StoredDelivery] = [None] * len(items)  # type: ignore[list-item]
        for place, answer in zip(order, stored):
            answers[place] = answer
        return answers

    def ignore(self, vendor: str, account: str, request_id: str | None) -> StoredDelivery:
        return self.storage.record_ignored(vendor, account, request_id)

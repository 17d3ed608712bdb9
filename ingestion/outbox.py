"""The relay: publishes committed ticket changes from the outbox to the Redis stream.

The webhook's own transaction writes the event row (the outbox entry); this separate process
(`python -m ingestion relay`) appends pending events to the stream `ingestion:tickets`
and marks them published. Guarantees:
- nothing is lost: an event stays pending until Redis accepted it, however long Redis is
  away; the backlog drains when it returns;
- at least once: if the relay dies between XADD and the commit that marks the rows, the
  batch is published again; consumers deduplicate on `event_id` if they must;
- in commit order per ticket: one relay publishes at a time (advisory lock) and reads in
  id order, which per ticket is commit order (see queries.PENDING_EVENTS).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from .config import Settings
from .metrics import EVENTS_PUBLISHED, PRUNED, QUARANTINE_REMOVED, child
from .redis_guard import GuardedRedis, RedisUnavailable
from .storage import Storage, queries

log = logging.getLogger(__name__)

STREAM = "ingestion:tickets"
BATCH = 500


def stream_fields(row: tuple) -> dict[str, str]:
    event_id, ticket_id, vendor, account, external_id, outcome, revision, event_type, received_at, deletion = row
    fields = {
        "ticket_id": str(ticket_id),
        "source": vendor,
        "account": account,
        "external_id": external_id,
        "event_id": str(event_id),
        "event_type": event_type,
        "change": outcome,  # created | updated | recorded | deleted
        "revision": str(revision),
        "occurred_at": received_at.isoformat(),
    }
    if deletion:  # soft | permanent (the content is gone: drop your copy) | restored (on an updated change)
        fields["deletion"] = deletion
    return fields


def prune(storage: Storage, settings: Settings) -> dict[str, int]:
    """Retention, in short batches that never hold long locks: delivery rows past
    DELIVERY_RETENTION_DAYS (never an event), the personal data of events past
    EVENT_RETENTION_DAYS (when set: the rows stay), quarantine entries past
    QUARANTINE_RETENTION_DAYS. Returns the rows pruned of each kind."""
    pruned = {"deliveries": storage.prune_deliveries(settings.delivery_retention_days),
              "event_payloads": storage.prune_event_payloads(settings.event_retention_days)
              if settings.event_retention_days else 0,
              "quarantine": storage.prune_quarantine(settings.quarantine_retention_days)}
    for kind, count in pruned.items():
        if count:
            child(PRUNED, kind).inc(count)
    if pruned["quarantine"]:
        child(QUARANTINE_REMOVED, "retention").inc(pruned["quarantine"])
    if any(pruned.values()):
        log.info("retention pruned old rows", extra=pruned)
    return pruned


class Relay:
    def __init__(self, settings: Settings, storage: Storage, guarded: GuardedRedis) -> None:
        self.storage = storage
        self.guarded = guarded
        self.maxlen = settings.stream_maxlen
        self.settings = settings

    def publish_batch(self, limit: int = BATCH) -> int:
        """Publish up to `limit` pending events; returns how many (0: nothing to do).

        Raises RedisUnavailable (nothing marked, all retried later) or psycopg errors.
        """
        with self.storage.connection() as conn, conn.transaction():
            if not conn.execute(queries.RELAY_LOCK).fetchone()[0]:
                return 0  # another relay is publishing
            rows = conn.execute(queries.PENDING_EVENTS, {"limit": limit}).fetchall()
            if not rows:
                return 0

            def append_all(client) -> list:
                pipe = client.pipeline(transaction=False)
                for row in rows:
                    pipe.xadd(STREAM, stream_fields(row), maxlen=self.maxlen, approximate=True)
                return pipe.execute()

            self.guarded.call("stream_publish", append_all)
            conn.execute(queries.MARK_PUBLISHED, {"ids": [row[0] for row in rows]})
        EVENTS_PUBLISHED.inc(len(rows))
        return len(rows)

    def backlog(self) -> int | None:
        return self.storage.outbox_backlog()

    def run_forever(self, idle_sleep: float = 0.2, prune_every: float = 3600.0,
                    should_stop: Callable[[], bool] = lambda: False) -> None:
        """Publish until told to stop; outages only slow it down."""
        next_prune = time.monotonic()
        backoff = idle_sleep
        while not should_stop():
            try:
                if time.monotonic() >= next_prune:
                    prune(self.storage, self.settings)
                    next_prune = time.monotonic() + prune_every
                published = self.publish_batch()
                backoff = idle_sleep
                if published:
                    log.info("published events", extra={"count": published, "stream": STREAM})
                    continue
            except RedisUnavailable as error:
                log.warning("stream unavailable, events wait in the outbox", extra={"error": str(error)})
                backoff = min(backoff * 2, 5.0)
            except psycopg.Error as error:
                log.warning("database unavailable for the relay", extra={"error": type(error).__name__})
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug: log it, keep the relay alive, events stay in the outbox
                log.exception("relay iteration failed")
                backoff = min(backoff * 2, 5.0)
            time.sleep(backoff)

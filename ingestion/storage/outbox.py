"""The outbox: events committed with their ticket, published to the stream by the relay
(ingestion/jobs/relay.py), and the delivery rows' retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..errors import DatabaseUnavailable
from . import partitions
from .pool import Database

#: Only one relay publishes at a time (across processes and hosts), which keeps the
#: stream in commit order per ticket. Transaction-scoped: released at commit/rollback.
RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('ingestion.relay'))"
#: A relay frozen inside its transaction (a paused container, a host gone) would hold the
#: lock until its session died, hours later for a vanished host, and every other relay
#: would wait: PostgreSQL ends a session idle in the publishing transaction this long
#: (the publish to the stream in between takes well under a second; the frozen relay's
#: batch is published again by the next: at least once, as documented).
RELAY_IDLE_LIMIT = "SET LOCAL idle_in_transaction_session_timeout = '30s'"

#: The oldest unpublished events, in id order. Per ticket, ids follow commit order: an
#: event is inserted while its delivery holds the ticket's row lock, so a later event of
#: the same ticket can only get its id after the earlier one committed. `deletion` says
#: what a deleted (or restoring) event did, read from the event itself (the deletion its
#: fields carried, which a purge keeps), never from the ticket as it stands when the relay
#: gets to it: after an outage, a soft delete published once the ticket was purged went out
#: as `permanent`. (The ticket's purge mark stands in for events stored before the fields
#: were kept; a purged ticket's restore, whose change record the purge emptied, by its fields.)
#: `forgotten` is a forget event's summary.
PENDING_EVENTS = """
SELECT e.id, e.ticket_id, t.vendor, t.account, t.external_id, e.outcome, e.revision, e.event_type, e.received_at,
       CASE WHEN e.outcome = 'deleted'
                THEN CASE WHEN e.fields IS NULL THEN CASE WHEN t.purged_at IS NULL THEN 'soft' ELSE 'permanent' END
                          WHEN e.fields->>'deletion' = 'permanent' THEN 'permanent' ELSE 'soft' END
            WHEN e.changes->'deleted'->>'current' = 'false'
              OR e.changes IS NULL AND t.purged_at IS NOT NULL AND e.outcome = 'updated'
                 AND e.fields->>'deletion' = 'restored' THEN 'restored'
       END AS deletion,
       CASE WHEN e.outcome = 'forget' THEN e.changes END AS forgotten
  FROM events e JOIN tickets t ON t.id = e.ticket_id
 WHERE e.published_at IS NULL AND e.outcome <> 'stale'
 ORDER BY e.id
 LIMIT %(limit)s
"""

#: Mark events published after the stream accepted them (same transaction as the read).
#: The batch's arrival times bound the months to look in (events is partitioned by them).
MARK_PUBLISHED = """
UPDATE events SET published_at = now()
 WHERE id = ANY(%(ids)s) AND received_at BETWEEN %(first)s AND %(last)s
"""

#: Events not yet published: the outbox backlog. Capped, so a huge backlog (Redis away
#: for hours) cannot make every scrape count millions of rows.
OUTBOX_BACKLOG = """
SELECT count(*) FROM (
    SELECT 1 FROM events WHERE published_at IS NULL AND outcome <> 'stale' LIMIT 100000
) AS pending
"""

#: Retention: drop old delivery rows (redeliveries, ignored events), in batches.
PRUNE_DELIVERIES = """
DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries WHERE received_at < now() - make_interval(days => %(days)s) LIMIT %(batch)s)
"""


class OutboxStore:
    database: Database

    def maintain_partitions(self, now: datetime | None, retention_days: int | None,
                            has_stream: bool = True) -> tuple[list[str], list[str]]:
        """The months of `events` made ahead, and (with `retention_days`) those past it
        dropped (storage/partitions.py); with a stream, never one holding an event the
        relay has not published yet. Returns (made, dropped)."""

        def work(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
            moment = now or conn.execute("SELECT now()").fetchone()[0]
            made = partitions.ensure_ahead(conn, moment)
            dropped = partitions.drop_before(conn, partitions.retention_cutoff(moment, retention_days),
                                             keep_unpublished=has_stream) if retention_days else []
            return made, dropped

        return self.database.run("maintain_partitions", work)

    def publish_pending(self, limit: int, publish: Callable[[list[dict[str, Any]]], None]) -> int:
        """Hand up to `limit` pending events to `publish`, oldest first, and mark them
        published once it returns, in one transaction holding the relay lock. When
        `publish` raises (Redis away), nothing is marked and the events stay pending.
        Returns how many were published (0: nothing pending, or another relay at work)."""

        def work(conn: psycopg.Connection) -> int:
            with conn.transaction():
                conn.execute(RELAY_IDLE_LIMIT)
                if not conn.execute(RELAY_LOCK).fetchone()[0]:
                    return 0
                rows = conn.cursor(row_factory=dict_row).execute(
                    PENDING_EVENTS, {"limit": limit}).fetchall()
                if rows:
                    publish(rows)
                    times = [row["received_at"] for row in rows]
                    conn.execute(MARK_PUBLISHED, {"ids": [row["id"] for row in rows],
                                                  "first": min(times), "last": max(times)})
                return len(rows)

        return self.database.run("publish_pending", work)

    def outbox_backlog(self, timeout: float = 1.0) -> int | None:
        """Events not yet published (capped count); None when the database cannot say."""
        try:
            return self.database.run("outbox_backlog", lambda conn: conn.execute(OUTBOX_BACKLOG).fetchone()[0],
                                     timeout=timeout)
        except DatabaseUnavailable:
            return None

    def prune_deliveries(self, retention_days: int, batch: int = 5000) -> int:
        """Delete delivery rows past retention, in batches (events are history: kept)."""
        return self.database.in_batches("prune_deliveries", PRUNE_DELIVERIES, retention_days, batch)

"""The operations the service runs on PostgreSQL, each one named query (queries.py) run
through the pool (pool.py), which counts it and translates its errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..config import Settings
from ..errors import DatabaseUnavailable
from ..tickets import Outcome, StoredDelivery, TicketEvent
from . import queries
from .pool import Database


#: What one page of the read API may hold in payloads, bodies, comments and changes (a
#: page always shows at least one row, whatever its size), so a page of large deliveries
#: (each up to MAX_BODY_BYTES) is never read whole into a worker's memory.
PAGE_BUDGET_BYTES = 4 * 1024 * 1024
#: Rows fetched per round trip of a page's server-side cursor.
PAGE_FETCH = 8



class Storage:
    """What the webhooks, the read API, the relay and the health check ask of PostgreSQL."""

    def __init__(self, settings: Settings) -> None:
        self.database = Database(settings)

    def open(self) -> None:
        """Open the pool in this process (gunicorn calls it after the fork)."""
        self.database.open()

    def close(self) -> None:
        self.database.close()

    def check(self, timeout: float = 1.0) -> bool:
        return self.database.check(timeout)

    def connection(self):
        """A pooled connection for maintenance work (the relay, pruning), errors untranslated."""
        return self.database.connection()

    def ingest(self, event: TicketEvent, dedup_key: str, window_seconds: int | None, raw_json: str,
               request_id: str | None) -> tuple[StoredDelivery, int | None]:
        """Store one delivery about a ticket. Returns the answer and, for a redelivery
        known by its body, how many seconds more it counts as one (None: forever)."""
        params = ingest_params(event, dedup_key, window_seconds, raw_json, request_id)

        def work(conn: psycopg.Connection) -> tuple[StoredDelivery, int | None]:
            ticket_id, event_id, outcome, revision, expires_in = conn.execute(queries.INGEST_EVENT, params).fetchone()
            return StoredDelivery(Outcome(outcome), str(ticket_id), str(event_id), revision), expires_in

        return self.database.run("ingest_event", work)

    def record_ignored(self, vendor: str, account: str, request_id: str | None) -> StoredDelivery:
        """Audit an authentic delivery that is not about a ticket."""
        params = {"vendor": vendor, "account": account, "request_id": request_id}
        self.database.run("record_ignored", lambda conn: conn.execute(queries.RECORD_IGNORED, params))
        return StoredDelivery(Outcome.IGNORED)

    def ticket(self, vendor: str, account: str, external_id: str) -> dict[str, Any] | None:
        """One ticket as stored, or None (the read API)."""
        params = {"vendor": vendor, "account": account, "external_id": external_id}
        return self.database.run("read_ticket", lambda conn: _dicts(conn, queries.TICKET, params).fetchone())

    def ticket_events(self, ticket_id: str, after: int, limit: int,
                      budget: int = PAGE_BUDGET_BYTES) -> tuple[list[dict[str, Any]], bool]:
        """A ticket's events with ids above `after`, oldest first (the read API): at most
        `limit`, fewer when their payloads, comments and changes pass `budget` bytes.
        Returns (rows, whether more follow). JSON columns come as text."""
        params = {"ticket_id": ticket_id, "after": after, "limit": limit + 1}
        return self.database.run("read_events", lambda conn: bounded_page(
            conn, queries.TICKET_EVENTS, params, limit, budget, _event_bytes))

    def quarantine(self, *, vendor: str, account: str, status: int, reason: str, error: str, body: bytes,
                   headers: dict[str, str], auth_method: str, request_id: str | None,
                   max_entries: int) -> tuple[int, int]:
        """Keep one refused authentic delivery; evict past `max_entries`. Returns (id, evicted)."""
        params = {"vendor": vendor, "account": account, "status": status, "reason": reason, "error": error,
                  "body": body, "headers": Jsonb(headers), "auth_method": auth_method, "request_id": request_id,
                  "max_entries": max_entries}
        return self.database.run("quarantine", lambda conn: tuple(conn.execute(queries.QUARANTINE, params).fetchone()))

    def quarantine_entries(self, vendor: str | None, after: int, limit: int,
                           budget: int = PAGE_BUDGET_BYTES) -> tuple[list[dict[str, Any]], bool]:
        """Quarantined deliveries with ids above `after`, oldest first (the read API): at
        most `limit`, fewer when their bodies pass `budget` bytes. Returns (rows, more)."""
        params = {"vendor": vendor, "after": after, "limit": limit + 1}
        return self.database.run("read_quarantine", lambda conn: bounded_page(
            conn, queries.QUARANTINE_LIST, params, limit, budget, _entry_bytes))

    def quarantine_entry(self, entry_id: int) -> dict[str, Any] | None:
        return self.database.run("read_quarantine",
                                 lambda conn: _dicts(conn, queries.QUARANTINE_ONE, {"id": entry_id}).fetchone())

    def quarantine_stats(self, timeout: float = 1.0) -> tuple[int, float] | None:
        """(entries waiting, age in seconds of the oldest, 0 when none); None when unknown."""
        try:
            count, age = self.database.run(
                "quarantine_stats", lambda conn: conn.execute(queries.QUARANTINE_STATS).fetchone(), timeout=timeout)
        except DatabaseUnavailable:
            return None
        return count, float(age or 0.0)

    def prune_event_payloads(self, retention_days: int, batch: int = 2000) -> int:
        """Empty the personal data of events past retention, in batches (rows are kept)."""
        return self._prune(queries.PRUNE_EVENT_PAYLOADS, retention_days, batch)

    def prune_quarantine(self, retention_days: int, batch: int = 1000) -> int:
        """Delete quarantine entries past retention, in batches (short transactions)."""
        return self._prune(queries.PRUNE_QUARANTINE, retention_days, batch)

    def outbox_backlog(self, timeout: float = 1.0) -> int | None:
        """Events not yet published (capped count); None when the database cannot say."""
        try:
            return self.database.run("outbox_backlog",
                                     lambda conn: conn.execute(queries.OUTBOX_BACKLOG).fetchone()[0], timeout=timeout)
        except DatabaseUnavailable:
            return None

    def prune_deliveries(self, retention_days: int, batch: int = 5000) -> int:
        """Delete delivery rows past retention, in batches (events are history: kept)."""
        return self._prune(queries.PRUNE_DELIVERIES, retention_days, batch)

    def _prune(self, query: str, retention_days: int, batch: int) -> int:
        """Run a retention DELETE batch after batch, each its own short transaction, so
        pruning never holds locks for long."""
        deleted = 0
        while True:
            with self.connection() as conn:
                count = conn.execute(query, {"days": retention_days, "batch": batch}).rowcount
            deleted += count
            if count < batch:
                return deleted


def ingest_params(event: TicketEvent, dedup_key: str, window_seconds: int | None, raw_json: str,
                  request_id: str | None) -> dict[str, Any]:
    """The parameters of queries.INGEST_EVENT for one delivery (webhooks, the reconciler)."""
    comment = event.comment
    return {
        "vendor": event.vendor, "account": event.account, "external_id": event.external_id,
        "fields": Jsonb(event.fields_json()), "dedup_key": dedup_key,
        "horizon": timedelta(seconds=window_seconds) if window_seconds is not None else None,
        "event_type": event.event_type, "vendor_event_id": event.vendor_event_id,
        "comment_body": comment.body if comment else None, "comment_author": comment.author if comment else None,
        "comment_public": comment.public if comment else None,
        "changes": Jsonb(event.changes) if event.changes is not None else None,
        "payload": raw_json, "request_id": request_id,
    }


def _dicts(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> psycopg.Cursor:
    return conn.cursor(row_factory=dict_row).execute(query, params)


def bounded_page(conn: psycopg.Connection, query: str, params: dict[str, Any], limit: int, budget: int,
                 size: Callable[[dict[str, Any]], int]) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` rows of `query` (which selects one more, to tell whether more
    follow), stopping early once the rows shown hold `budget` bytes. Rows come from a
    server-side cursor PAGE_FETCH at a time, so the rows past the budget are never read.
    Returns (rows, whether more follow)."""
    rows: list[dict[str, Any]] = []
    used = 0
    with conn.transaction(), conn.cursor(name="page", row_factory=dict_row) as cursor:
        cursor.itersize = PAGE_FETCH
        cursor.execute(query, params)
        for row in cursor:
            cost = size(row)
            if len(rows) == limit or (rows and used + cost > budget):
                return rows, True
            rows.append(row)
            used += cost
    return rows, False


def _event_bytes(row: dict[str, Any]) -> int:
    return sum(len(row[name] or "") for name in ("payload", "changes", "comment_body", "comment_author")) + 256


def _entry_bytes(row: dict[str, Any]) -> int:
    return len(row["body"]) * 4 // 3 + 512  # shown as base64 when it is not text

"""Tickets and their events: the webhook path (one statement) and the read API.

Parameters only (`%(name)s`), never string building. The ticket logic itself is the SQL
function ingest_event() (functions.sql), so the hot path is one statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..tickets import Outcome, StoredDelivery, TicketEvent
from .pool import Database
from .replica import Reads

#: Store one delivery about a ticket: returns (ticket_id, event_id, outcome, revision,
#: seconds the delivery's identity still holds). One round trip and, on an autocommit
#: connection, one transaction. Race safety: see ingest_event().
INGEST_EVENT = """
SELECT out_ticket_id, out_event_id, out_outcome, out_revision, out_expires_in
  FROM ingest_event(%(vendor)s, %(account)s, %(external_id)s, %(fields)s, %(dedup_key)s, %(horizon)s::interval,
                    %(event_type)s, %(vendor_event_id)s, %(comment_body)s, %(comment_author)s,
                    %(comment_public)s, %(changes)s, %(payload)s::jsonb, %(request_id)s, %(credential)s,
                    %(comment_key)s)
"""

#: A batch's tickets locked up front, in one order every transaction agrees on (their
#: keys' hashes), so two batches that name the same tickets in other orders queue
#: instead of deadlocking. Transaction-scoped advisory locks: released at commit.
LOCK_TICKETS = """
SELECT pg_advisory_xact_lock(h)
  FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(%(keys)s::text[]) AS k) AS hashed
 ORDER BY h
"""

#: Audit an authentic delivery that is not about a ticket. Plain insert: nothing to race.
RECORD_IGNORED = """
INSERT INTO deliveries (vendor, account, outcome, request_id)
VALUES (%(vendor)s, %(account)s, 'ignored', %(request_id)s)
"""

#: A ticket row as every reader gets it (the read API, rebuild, redact): the one list of
#: its columns in Python. Custom fields as JSON text: answers carry them as stored
#: (web/stored_json.py).
TICKET_COLUMNS = """id, vendor, account, external_id, subject, description, status, priority, type,
       requester_name, requester_email, requester_id, assignee_name, assignee_email, assignee_id,
       group_name, organization, tags, custom_fields::text AS custom_fields, vendor_created_at, vendor_updated_at,
       deleted_at, purged_at, revision, created_at, updated_at"""

#: The read API: one ticket by its vendor key.
TICKET = f"""
SELECT {TICKET_COLUMNS}
  FROM tickets WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
"""

#: The read API: a ticket's events after a cursor, oldest first (by id: commit order).
#: Changes and payload as JSON text; read a few rows at a time (bounded_page).
TICKET_EVENTS = """
SELECT id, event_type, vendor_event_id, received_at, outcome, comment_body, comment_author, comment_public,
       changes::text AS changes, payload::text AS payload
  FROM events WHERE ticket_id = %(ticket_id)s AND id > %(after)s
 ORDER BY id LIMIT %(limit)s
"""

#: Health check: proves a connection can be borrowed and the server answers.
PING = "SELECT 1"

#: What one page of the read API may hold in payloads, bodies, comments and changes (a
#: page always shows at least one row, whatever its size), so a page of large deliveries
#: (each up to MAX_BODY_BYTES) is never read whole into a worker's memory.
PAGE_BUDGET_BYTES = 4 * 1024 * 1024
#: Rows fetched per round trip of a page's server-side cursor.
PAGE_FETCH = 8


class TicketStore:
    """What the webhooks, the read API and the health check ask of PostgreSQL."""

    database: Database
    reads: Reads

    def check(self, timeout: float = 1.0) -> bool:
        """True when a connection can be borrowed within `timeout` seconds and answers."""
        return self.database.check(timeout)

    def database_status(self, timeout: float = 1.0) -> str:
        """/health's word for the database: ok, unavailable, or no schema."""
        return self.database.status(timeout)

    def ingest(self, event: TicketEvent, dedup_key: str, window_seconds: int | None, raw_json: str,
               request_id: str | None, credential: str | None = None) -> tuple[StoredDelivery, int | None]:
        """Store one delivery about a ticket. Returns the answer and, for a redelivery
        known by its body, how many seconds more it counts as one (None: forever)."""
        params = ingest_params(event, dedup_key, window_seconds, raw_json, request_id, credential)

        def work(conn: psycopg.Connection) -> tuple[StoredDelivery, int | None]:
            ticket_id, event_id, outcome, revision, expires_in = conn.execute(INGEST_EVENT, params).fetchone()
            return StoredDelivery(Outcome(outcome), str(ticket_id), str(event_id), revision), expires_in

        return self.database.run("ingest_event", work)

    def ingest_batch(self, vendor: str, account: str,
                     deliveries: list[tuple[TicketEvent | None, str, int | None, str]], request_id: str | None,
                     credential: str | None = None) -> list[StoredDelivery]:
        """Store a batch's events in one transaction, all or none (ingestion/batches.py).
        `deliveries`: (event, identity, window seconds, its JSON text) each, as for
        `ingest`; an event of None is audited as ignored. Answers in the same order."""
        params = [None if event is None else ingest_params(event, key, window, text, request_id, credential)
                  for event, key, window, text in deliveries]
        ignored = {"vendor": vendor, "account": account, "request_id": request_id}
        keys = sorted({"\x1f".join(("ingestion.ticket", e.vendor, e.account, e.external_id)) for e, *_ in deliveries if e is not None})

        def work(conn: psycopg.Connection) -> list[StoredDelivery]:
            answers = []
            with conn.transaction():
                if len(keys) > 1:
                    conn.execute(LOCK_TICKETS, {"keys": keys})
                for one in params:
                    if one is None:
                        conn.execute(RECORD_IGNORED, ignored)
                        answers.append(StoredDelivery(Outcome.IGNORED))
                        continue
                    ticket_id, event_id, outcome, revision, _ = conn.execute(INGEST_EVENT, one).fetchone()
                    answers.append(StoredDelivery(Outcome(outcome), str(ticket_id), str(event_id), revision))
            return answers

        return self.database.run("ingest_batch", work)

    def record_ignored(self, vendor: str, account: str, request_id: str | None) -> StoredDelivery:
        """Audit an authentic delivery that is not about a ticket."""
        params = {"vendor": vendor, "account": account, "request_id": request_id}
        self.database.run("record_ignored", lambda conn: conn.execute(RECORD_IGNORED, params))
        return StoredDelivery(Outcome.IGNORED)

    def ticket(self, vendor: str, account: str, external_id: str) -> dict[str, Any] | None:
        """One ticket as stored, or None (the read API)."""
        params = {"vendor": vendor, "account": account, "external_id": external_id}
        return self.reads.run("read_ticket", lambda conn: dicts(conn, TICKET, params).fetchone())

    def ticket_events(self, ticket_id: str, after: int, limit: int,
                      budget: int = PAGE_BUDGET_BYTES) -> tuple[list[dict[str, Any]], bool]:
        """A ticket's events with ids above `after`, oldest first (the read API): at most
        `limit`, fewer when their payloads, comments and changes pass `budget` bytes.
        Returns (rows, whether more follow). JSON columns come as text."""
        params = {"ticket_id": ticket_id, "after": after, "limit": limit + 1}
        return self.reads.run("read_events", lambda conn: bounded_page(
            conn, TICKET_EVENTS, params, limit, budget, _event_bytes))


def ingest_params(event: TicketEvent, dedup_key: str, window_seconds: int | None, raw_json: str,
                  request_id: str | None, credential: str | None = None) -> dict[str, Any]:
    """The parameters of INGEST_EVENT for one delivery (webhooks, the reconciler)."""
    comment = event.comment
    return {
        "vendor": event.vendor, "account": event.account, "external_id": event.external_id,
        "fields": Jsonb(event.fields_json()), "dedup_key": dedup_key,
        "horizon": timedelta(seconds=window_seconds) if window_seconds is not None else None,
        "event_type": event.event_type, "vendor_event_id": event.vendor_event_id,
        "comment_body": comment.body if comment else None, "comment_author": comment.author if comment else None,
        "comment_public": comment.public if comment else None,
        "changes": Jsonb(event.changes) if event.changes is not None else None,
        "payload": raw_json, "request_id": request_id, "credential": credential,
        "comment_key": comment.key if comment else None,
    }


def dicts(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> psycopg.Cursor:
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
    """What an event weighs in its JSON answer: payload and changes go in as stored text,
    the comment's body and author as escaped JSON strings (a control character is six)."""
    return (sum(len(row[name] or "") for name in ("payload", "changes"))
            + sum(len(json.dumps(row[name])) for name in ("comment_body", "comment_author")) + 256)

"""A ticket's history after the fact: rebuilding tickets from it, redacting personal data
out of it, and retention. The jobs (ingestion/jobs/) supply the Python part (today's
normalizer, the masking); the rules stay in SQL (functions.sql): rebuild_ticket() replays
the history with the live merge rule, record_redaction() makes a redaction a fact of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from . import partitions
from .pool import Database
from .tickets import TICKET_COLUMNS, dicts

#: Rebuild: the tickets of a scope after a cursor, in id order. Purged tickets are never
#: rebuilt (their content is forgotten for good).
REBUILD_TICKETS = """
SELECT id FROM tickets
 WHERE id > %(after)s AND purged_at IS NULL
   AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
   AND (%(external_id)s::text IS NULL OR (account = %(account)s AND external_id = %(external_id)s))
 ORDER BY id
 LIMIT %(limit)s
"""

#: The ticket, locked for a rebuild's or a redaction's transaction: a live delivery of it
#: waits (its ingest_event() locks the same row) and then merges onto the new state.
LOCK_TICKET = f"""
SELECT {TICKET_COLUMNS}
  FROM tickets WHERE id = %(id)s FOR NO KEY UPDATE
"""

#: What a rebuild may read again, in the order the history was stored: each event's raw
#: payload (as text: a payload stored nested past today's limit must not break the job),
#: unless a redaction altered it, and the deletion it carried; without the rebuilds' own
#: records.
REBUILD_EVENTS = """
SELECT id, event_type, CASE WHEN payload_redacted THEN NULL ELSE payload::text END AS payload,
       fields->>'deletion' AS deletion
  FROM events
 WHERE ticket_id = %(id)s AND dedup_key NOT LIKE 'rebuild:%%'
 ORDER BY id
"""

#: The replay itself (functions.sql): compares, writes only what changed, records it.
REBUILD = "SELECT out_changes, out_partial, out_revision FROM rebuild_ticket(%(id)s, %(readings)s)"

REBUILD_PROGRESS = "SELECT last_ticket FROM rebuild_progress WHERE scope = %(scope)s"
REBUILD_ADVANCE = """
INSERT INTO rebuild_progress (scope, last_ticket) VALUES (%(scope)s, %(last)s)
ON CONFLICT (scope) DO UPDATE SET last_ticket = excluded.last_ticket, updated_at = now()
"""
REBUILD_DONE = "DELETE FROM rebuild_progress WHERE scope = %(scope)s"

#: Redaction. The names stored next to an address (to mask as well): on the tickets as
#: they stand, and every name the history's fields ever paired with it (a person renamed
#: since, "Ana Old" then "Ana New", is both).
REDACT_NAMES = """
SELECT CASE WHEN lower(requester_email) = lower(%(email)s) THEN requester_name END,
       CASE WHEN lower(assignee_email) = lower(%(email)s) THEN assignee_name END
  FROM tickets WHERE lower(requester_email) = lower(%(email)s) OR lower(assignee_email) = lower(%(email)s)
UNION
SELECT CASE WHEN lower(fields->>'requester_email') = lower(%(email)s) THEN fields->>'requester_name' END,
       CASE WHEN lower(fields->>'assignee_email') = lower(%(email)s) THEN fields->>'assignee_name' END
  FROM events
 WHERE lower(fields->>'requester_email') = lower(%(email)s) OR lower(fields->>'assignee_email') = lower(%(email)s)
"""

#: Tickets where the address is a person's, or any of whose fields or events may mention
#: it or a full name (`likes`: substrings; the masking decides what is a mention).
REDACT_TICKETS = """
SELECT id FROM tickets
 WHERE lower(requester_email) = lower(%(email)s) OR lower(assignee_email) = lower(%(email)s)
    OR requester_email ILIKE ANY(%(likes)s) OR assignee_email ILIKE ANY(%(likes)s)
    OR subject ILIKE ANY(%(likes)s) OR description ILIKE ANY(%(likes)s) OR organization ILIKE ANY(%(likes)s)
    OR group_name ILIKE ANY(%(likes)s) OR array_to_string(tags, ' ') ILIKE ANY(%(likes)s)
    OR custom_fields::text ILIKE ANY(%(likes)s)
UNION
SELECT ticket_id FROM events
 WHERE payload::text ILIKE ANY(%(likes)s) OR comment_body ILIKE ANY(%(likes)s)
    OR comment_author ILIKE ANY(%(likes)s) OR changes::text ILIKE ANY(%(likes)s) OR fields::text ILIKE ANY(%(likes)s)
"""

#: A ticket's events as the masking reads them: JSON columns as text.
REDACT_EVENTS = """
SELECT id, received_at, payload::text AS payload, comment_body, comment_author, changes::text AS changes,
       fields::text AS fields
  FROM events WHERE ticket_id = %(id)s ORDER BY id
"""

REDACT_EVENT = """
UPDATE events SET payload = %(payload)s::jsonb, comment_body = %(comment_body)s, comment_author = %(comment_author)s,
                  changes = %(changes)s::jsonb, fields = %(fields)s::jsonb,
                  payload_redacted = payload_redacted OR %(payload)s::jsonb IS DISTINCT FROM payload
                                     OR %(fields)s::jsonb IS DISTINCT FROM fields
 WHERE id = %(id)s AND received_at = %(received_at)s
"""

#: The redaction as an event of the ticket (functions.sql): merged with the live rule.
RECORD_REDACTION = """
SELECT out_event_id, out_revision FROM record_redaction(%(id)s, %(fields)s::jsonb, %(summary)s)
"""

#: Quarantined bodies that may mention the address (the masking's pattern decides).
REDACT_QUARANTINE_CANDIDATES = """
SELECT id, body FROM quarantine
 WHERE encode(body, 'escape') ILIKE %(like)s
    OR position(decode('5c75', 'hex') IN body) > 0  -- a backslash and u: a JSON escape
"""
REDACT_QUARANTINE = "DELETE FROM quarantine WHERE id = ANY(%(ids)s)"

LOCK_TICKET_BY_KEY = """
SELECT id FROM tickets WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
   FOR NO KEY UPDATE
"""

#: The same forgetting as a vendor's permanent delete (functions.sql); the fields it empties
#: (what the stream's forget entry names); the ticket's revision after it.
FORGET_TICKET = "SELECT tickets_changed, events_changed FROM forget_ticket(%(id)s)"
PERSONAL_FIELDS = "SELECT ticket_personal_fields()"
NEXT_REVISION = "UPDATE tickets SET revision = revision + 1 WHERE id = %(id)s"

#: That a redaction happened, never what it removed.
REDACTION_REQUEST = "INSERT INTO redactions (kind, changed) VALUES (%(kind)s, %(changed)s)"

#: Retention of events' personal data: the raw payload, the comment and the changes of
#: events older than EVENT_RETENTION_DAYS are emptied, and the personal values of the
#: fields they carried (the keys stay, for rebuild_ticket), in batches; the event rows
#: stay (ids, types, times, outcomes, revisions: the history's skeleton and the audit).
PRUNE_EVENT_PAYLOADS = """
UPDATE events SET payload = NULL, comment_body = NULL, comment_author = NULL, comment_public = NULL, changes = NULL,
                  fields = fields_without_personal_data(fields), fields_retained = fields IS NOT NULL
 WHERE id IN (
    SELECT id FROM events
     WHERE received_at < now() - make_interval(days => %(days)s)
       AND (payload IS NOT NULL OR comment_body IS NOT NULL OR comment_author IS NOT NULL OR changes IS NOT NULL
            OR fields IS NOT NULL AND NOT fields_retained)
       AND NOT (%(keep_unpublished)s AND published_at IS NULL AND outcome <> 'stale'
                AND received_at >= now() - make_interval(days => %(days)s + %(grace)s))
     LIMIT %(batch)s)
"""


@dataclass(frozen=True)
class Rebuilt:
    """What rebuilding one ticket did: the changes written ({} when none), whether its
    history was too old to replay (left as it was), the events it could not read again."""

    changes: dict[str, Any]
    partial: bool
    skipped: int


@dataclass(frozen=True)
class Masking:
    """What a redaction changes on one ticket: the ticket fields it sets, as a JSON object
    (text: merged as the redaction's event), the events' new columns by id (JSON ones as
    text), and the stream's summary of it."""

    fields: str
    events: dict[int, dict[str, Any]]
    summary: dict[str, Any]


class HistoryStore:
    database: Database

    # --- rebuild -----------------------------------------------------------------------
    def rebuild_ticket_ids(self, vendor: str | None, account: str, external_id: str | None, after: str,
                           limit: int) -> list[Any]:
        params = {"after": after, "vendor": vendor, "account": account, "external_id": external_id, "limit": limit}
        return self.database.run("rebuild_scope", lambda conn: [
            row[0] for row in conn.execute(REBUILD_TICKETS, params).fetchall()])

    def rebuild_progress(self, scope: str, restart: bool) -> str | None:
        """Where an interrupted rebuild of `scope` stopped (None: from the start)."""
        def work(conn: psycopg.Connection) -> str | None:
            if restart:
                conn.execute(REBUILD_DONE, {"scope": scope})
                return None
            row = conn.execute(REBUILD_PROGRESS, {"scope": scope}).fetchone()
            return str(row[0]) if row and row[0] else None

        return self.database.run("rebuild_progress", work)

    def rebuild_finished(self, scope: str) -> None:
        self.database.run("rebuild_progress", lambda conn: conn.execute(REBUILD_DONE, {"scope": scope}))

    def rebuild(self, ticket_id: Any, scope: str,
                read: Callable[[dict[str, Any], list[dict[str, Any]]], tuple[dict[str, Any], int]],
                on_locked: Callable[[], None] = lambda: None) -> Rebuilt | None:
        """Rebuild one ticket in one transaction holding its row lock: `read(ticket,
        events)` returns today's readings of the events' payloads ({event id: fields})
        and how many it could not read; rebuild_ticket() replays and writes. The scope's
        progress advances in the same transaction. None: the ticket is gone."""
        def work(conn: psycopg.Connection) -> Rebuilt | None:
            with conn.transaction():
                ticket = dicts(conn, LOCK_TICKET, {"id": ticket_id}).fetchone()
                if ticket is None:
                    return None
                on_locked()
                events = dicts(conn, REBUILD_EVENTS, {"id": ticket_id}).fetchall()
                readings, skipped = read(ticket, events)
                changes, partial, _ = conn.execute(REBUILD, {"id": ticket_id, "readings": Jsonb(readings)}).fetchone()
                conn.execute(REBUILD_ADVANCE, {"scope": scope, "last": ticket_id})
                return Rebuilt(changes, partial, skipped)

        return self.database.run("rebuild_ticket", work)

    # --- redaction -----------------------------------------------------------------------
    def names_of(self, email: str) -> set[str]:
        """The names stored next to the address: the person's names, to mask as well."""
        return self.database.run("redact_names", lambda conn: {
            name for row in conn.execute(REDACT_NAMES, {"email": email}).fetchall() for name in row if name})

    def tickets_mentioning(self, email: str, likes: list[str]) -> list[Any]:
        return self.database.run("redact_tickets", lambda conn: [
            row[0] for row in conn.execute(REDACT_TICKETS, {"email": email, "likes": likes}).fetchall()])

    def redact(self, ticket_id: Any, mask: Callable[[dict[str, Any], list[dict[str, Any]]], Masking | None]
               ) -> Masking | None:
        """Redact one ticket in one transaction holding its row lock: `mask(ticket,
        events)` says what changes (None: nothing); the events are rewritten and the
        ticket's fields merged as a `ticket.redacted` event."""
        def work(conn: psycopg.Connection) -> Masking | None:
            with conn.transaction():
                cursor = conn.cursor(row_factory=dict_row)
                ticket = cursor.execute(LOCK_TICKET, {"id": ticket_id}).fetchone()
                if ticket is None:
                    return None
                events = cursor.execute(REDACT_EVENTS, {"id": ticket_id}).fetchall()
                masking = mask(ticket, events)
                if masking is None:
                    return None
                arrived = {event["id"]: event["received_at"] for event in events}  # each event's month
                for event_id, columns in masking.events.items():
                    cursor.execute(REDACT_EVENT, {"id": event_id, "received_at": arrived[event_id], **columns})
                cursor.execute(RECORD_REDACTION, {"id": ticket_id, "fields": masking.fields,
                                                  "summary": Jsonb(masking.summary)})
                return masking

        return self.database.run("redact_ticket", work)

    def redact_quarantine(self, like: str, mentions: Callable[[str], bool]) -> int:
        """Delete quarantined bodies that mention the address: those matching `like` (a
        substring), or holding a JSON escape (`ana\\u0040example.com` is the address
        too), that `mentions(body as text)` confirms."""
        def work(conn: psycopg.Connection) -> int:
            with conn.transaction():
                ids = [row[0] for row in conn.execute(REDACT_QUARANTINE_CANDIDATES, {"like": like})
                       if mentions(bytes(row[1]).decode("utf-8", "replace"))]
                return conn.execute(REDACT_QUARANTINE, {"ids": ids}).rowcount if ids else 0

        return self.database.run("redact_quarantine", work)

    def forget(self, vendor: str, account: str, external_id: str) -> tuple[int, int]:
        """Forget one ticket's content (as a permanent delete does, without marking it
        deleted) and record the redaction as its event. Returns (tickets, events) changed."""
        def work(conn: psycopg.Connection) -> tuple[int, int]:
            with conn.transaction():
                row = conn.execute(LOCK_TICKET_BY_KEY, {"vendor": vendor, "account": account,
                                                        "external_id": external_id}).fetchone()
                if row is None:
                    return 0, 0
                tickets, events = conn.execute(FORGET_TICKET, {"id": row[0]}).fetchone()
                if tickets:  # its content changed: a revision of its own, as every change has
                    conn.execute(NEXT_REVISION, {"id": row[0]})
                if tickets or events:
                    emptied = conn.execute(PERSONAL_FIELDS).fetchone()[0] if tickets else []
                    summary = {"forgotten": "ticket", "fields": emptied, "events": events}
                    conn.execute(RECORD_REDACTION, {"id": row[0], "fields": "{}", "summary": Jsonb(summary)})
                return tickets, events

        return self.database.run("redact_ticket", work)

    def record_redaction_request(self, kind: str, changed: dict[str, int]) -> None:
        self.database.run("redact_record", lambda conn: conn.execute(
            REDACTION_REQUEST, {"kind": kind, "changed": Jsonb(changed)}))

    # --- retention -----------------------------------------------------------------------
    def prune_event_payloads(self, retention_days: int, batch: int = 2000, keep_unpublished: bool = False) -> int:
        """Empty the personal data of events past retention, in batches (rows are kept).
        `keep_unpublished` (a stream is configured): not an event the relay has not
        published yet, whose `changes` say what its stream entry says (a restore, what a
        redaction forgot), for up to partitions.UNPUBLISHED_GRACE past retention; it is
        emptied once published, at the next pass, or once that grace is over (REDIS_URL
        alone does not say a relay runs)."""
        return self.database.in_batches("prune_event_payloads", PRUNE_EVENT_PAYLOADS, retention_days, batch,
                                        keep_unpublished=keep_unpublished, grace=partitions.UNPUBLISHED_GRACE.days)

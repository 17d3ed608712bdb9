"""The reconciler's part of PostgreSQL: a lock per vendor, account and mode for a whole
run, the export cursors, and storing an exported ticket through the webhooks' own
ingest_event() (ingestion/jobs/reconcile/ does the rest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from ..errors import DatabaseUnavailable
from ..tickets import Outcome
from .pool import REFUSED_VALUES, Database, unstorable
from .tickets import INGEST_EVENT

T = TypeVar("T")

#: The stored version of a ticket before a reconciliation snapshot is merged: whether the
#: snapshot repairs a version the webhooks left behind, or only adds fields they never carried.
STORED_VERSION = """
SELECT vendor_updated_at FROM tickets
 WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
"""

#: The accounts a vendor's tickets are stored under (at most 20), by a loose index scan of
#: tickets_external_key (vendor, account, external_id): one index probe per account,
#: whatever the number of tickets.
ACCOUNTS = """
WITH RECURSIVE found AS (
    SELECT min(account) AS account FROM tickets WHERE vendor = %(vendor)s
    UNION ALL
    SELECT (SELECT min(t.account) FROM tickets t WHERE t.vendor = %(vendor)s AND t.account > found.account)
      FROM found WHERE found.account IS NOT NULL
)
SELECT account FROM found WHERE account IS NOT NULL LIMIT 20
"""

#: One reconciler per vendor, account and mode, across processes and hosts. Session-level:
#: held on the run's connection for the whole run.
LOCK = "SELECT pg_try_advisory_lock(hashtext('ingestion.reconcile/' || %(key)s))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('ingestion.reconcile/' || %(key)s))"

CURSOR = """
SELECT since, cursor, position, caught_up_at FROM reconcile_cursors
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

#: A run from `since`, from the beginning (a first pass, a new or restarted backfill).
BEGIN = """
INSERT INTO reconcile_cursors (vendor, account, mode, since) VALUES (%(vendor)s, %(account)s, %(mode)s, %(since)s)
ON CONFLICT (vendor, account, mode) DO UPDATE
   SET since = excluded.since, cursor = NULL, position = NULL, caught_up_at = NULL, last_error = NULL,
       updated_at = now()
"""

#: After each page: where the next request starts. A crash loses at most one page,
#: which is read again (its versions are stored already: nothing is duplicated).
ADVANCE = """
UPDATE reconcile_cursors
   SET cursor = %(cursor)s, position = %(position)s, last_error = NULL, updated_at = now(),
       caught_up_at = CASE WHEN %(done)s THEN now() ELSE caught_up_at END
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

FAILED = """
UPDATE reconcile_cursors SET last_error = %(error)s, updated_at = now()
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

#: When each reconciled account last caught up (the lag gauge, after a restart).
CAUGHT_UP = """
SELECT vendor, account, caught_up_at FROM reconcile_cursors WHERE mode = 'reconcile' AND caught_up_at IS NOT NULL
"""

#: Outcomes of a reconciled snapshot worth an event: the others leave no row.
KEPT = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED})


class ReconcileRun:
    """One run's connection, holding the run's lock: its cursor and its tickets."""

    def __init__(self, conn: psycopg.Connection, where: dict[str, str]) -> None:
        self.conn, self.where = conn, where

    def cursor(self) -> tuple | None:
        """(since, cursor, position, caught_up_at) as stored, or None."""
        return self.conn.execute(CURSOR, self.where).fetchone()

    def begin(self, since: datetime) -> None:
        self.conn.execute(BEGIN, {**self.where, "since": since})

    def advance(self, cursor: str, position: datetime | None, done: bool) -> None:
        self.conn.execute(ADVANCE, {**self.where, "cursor": cursor, "position": position, "done": done})

    def failed(self, message: str) -> None:
        self.conn.execute(FAILED, {**self.where, "error": message[:500]})

    def accounts(self, vendor: str) -> list[str]:
        return [row[0] for row in self.conn.execute(ACCOUNTS, {"vendor": vendor}).fetchall()]

    def store(self, params: dict[str, Any]) -> tuple[Outcome, datetime | None, bool]:
        """Ingest one exported ticket (INGEST_EVENT's parameters) in its own transaction,
        kept only when it repaired or added something. Returns (outcome, the stored
        updated_at before, whether the ticket was stored before). Raises UnstorablePayload
        (a value PostgreSQL cannot store: the run skips the ticket and goes on)."""
        try:
            with self.conn.transaction() as transaction:
                before = self.conn.execute(STORED_VERSION, params).fetchone()
                outcome = Outcome(self.conn.execute(INGEST_EVENT, params).fetchone()[2])
                if outcome not in KEPT:
                    raise psycopg.Rollback(transaction)  # nothing to repair: keep no event
        except REFUSED_VALUES as error:  # (pool.py's translation, for this job's own connection)
            raise unstorable(error) from None
        return outcome, before[0] if before else None, before is not None


class ReconcileStore:
    database: Database

    def reconcile_run(self, key: str, where: dict[str, str], run: Callable[[ReconcileRun | None], T]) -> T:
        """`run` with the run's lock held on one connection (None: another reconciler holds
        it). Reconciliation is resumable, so after a database outage the run starts again
        from the stored cursor."""
        def work(conn: psycopg.Connection) -> T:
            if not conn.execute(LOCK, {"key": key}).fetchone()[0]:
                return run(None)
            try:
                return run(ReconcileRun(conn, where))
            finally:
                if not conn.broken:
                    conn.execute(UNLOCK, {"key": key})

        return self.database.run("reconcile_run", work)

    def caught_up(self) -> list[tuple[str, str, datetime]]:
        """(vendor, account, when) of each reconciled account's last pass that caught up."""
        try:
            return self.database.run("reconcile_caught_up", lambda conn: conn.execute(CAUGHT_UP).fetchall())
        except DatabaseUnavailable:  # the first pass will say; the gauge waits
            return []

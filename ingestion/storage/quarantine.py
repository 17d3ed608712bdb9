"""The quarantine: authentic deliveries the normalizer could not read, kept, listed,
replayed (ingestion/quarantine.py says why; ingestion/replaying.py replays)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from ..errors import DatabaseUnavailable
from .pool import Database
from .tickets import PAGE_BUDGET_BYTES, bounded_page, dicts

log = logging.getLogger(__name__)

#: Quarantine one authentic delivery the normalizer could not read. Returns its id and
#: how far the quarantine is now over its bound (EVICT's work when above 0). The entries
#: are counted per source by the table's own triggers (quarantine_counts, functions.sql),
#: so this reads a row per source, never the whole quarantine. The counts are the
#: statement's snapshot, without the entry it adds: hence the + 1.
QUARANTINE = """
WITH added AS (
    INSERT INTO quarantine (vendor, account, status, reason, error, body, headers, auth_method, request_id)
    VALUES (%(vendor)s, %(account)s, %(status)s, %(reason)s, %(error)s, %(body)s, %(headers)s,
            %(auth_method)s, %(request_id)s)
    RETURNING id
)
SELECT (SELECT id FROM added),
       (SELECT coalesce(sum(entries), 0) + 1 - %(max_entries)s FROM quarantine_counts)::bigint
"""

#: Evict what is past the bound: the oldest entries of the source (vendor and account)
#: holding the most, the one whose oldest entry is oldest among equals, so that one
#: source flooding the quarantine evicts its own entries, not another account's. Run
#: after QUARANTINE, in a transaction of its own, only when it found the quarantine over
#: its bound; it counts again (the entry just added included), so what a failed or
#: concurrent eviction left over goes too. One count row per transaction (the trigger's,
#: for the evicted source; QUARANTINE's own took its source's), so deliveries at once never
#: deadlock on them. The entries are found through quarantine_source and deleted by id:
#: `id = ANY(ARRAY(...))`, since `id IN (subquery)` with a LIMIT the planner cannot know
#: was a hash join over every entry. Never prepared (evict_over): a plan made while the
#: quarantine was small scans it whole, and would be kept for the connection's life.
EVICT = """
WITH over AS (
    SELECT coalesce(sum(entries), 0) - %(max_entries)s AS entries FROM quarantine_counts
), top AS (
    SELECT c.vendor, c.account FROM quarantine_counts c
     WHERE c.entries = (SELECT max(entries) FROM quarantine_counts)
     ORDER BY (SELECT x.id FROM quarantine x WHERE x.vendor = c.vendor AND x.account = c.account
               ORDER BY x.vendor, x.account, x.id LIMIT 1)
     LIMIT 1
)
DELETE FROM quarantine
 WHERE (SELECT entries FROM over) > 0
   AND id = ANY(ARRAY(SELECT q.id FROM quarantine q
                       WHERE (q.vendor, q.account) = (SELECT vendor, account FROM top)
                       ORDER BY q.vendor, q.account, q.id LIMIT greatest(0, (SELECT entries FROM over))))
"""


def add_entry(conn: psycopg.Connection, params: dict[str, Any]) -> tuple[int, int]:
    """QUARANTINE: (the entry's id, how many entries the quarantine holds past its bound)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        added, over = cursor.execute(QUARANTINE, params).fetchone()
    return added, over


def evict_over(conn: psycopg.Connection, max_entries: int) -> int:
    """EVICT, planned for the quarantine as it is now (never prepared): how many went."""
    return conn.execute(EVICT, {"max_entries": max_entries}, prepare=False).rowcount


#: The read API: quarantined deliveries, oldest first, after a cursor (an id).
QUARANTINE_LIST = """
SELECT id, vendor, account, received_at, status, reason, error, body, headers, auth_method, request_id,
       attempts, last_attempt
  FROM quarantine
 WHERE id > %(after)s AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
   AND (%(account)s::text IS NULL OR account = %(account)s)
 ORDER BY id
 LIMIT %(limit)s
"""

QUARANTINE_ONE = """
SELECT id, vendor, account, received_at, status, reason, error, body, headers, auth_method, request_id,
       attempts, last_attempt
  FROM quarantine WHERE id = %(id)s
"""

#: For replay: entries to try, oldest first, filtered.
QUARANTINE_SELECT = """
SELECT id, vendor, account, received_at, body, headers, request_id
  FROM quarantine
 WHERE id > %(after)s
   AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
   AND (%(id)s::bigint IS NULL OR id = %(id)s)
   AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
   AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s)
 ORDER BY id
 LIMIT %(limit)s
"""

QUARANTINE_RELEASE = "DELETE FROM quarantine WHERE id = %(id)s"

QUARANTINE_FAILED_AGAIN = """
UPDATE quarantine SET error = %(error)s, reason = %(reason)s, status = %(status)s,
                      attempts = attempts + 1, last_attempt = now()
 WHERE id = %(id)s
"""

#: The gauges: entries waiting (the counts the bound keeps, not a count of the table at
#: every scrape), and the age of the oldest (the alert's input, by quarantine_received_at).
QUARANTINE_STATS = """
SELECT (SELECT coalesce(sum(entries), 0) FROM quarantine_counts)::bigint,
       extract(epoch FROM now() - (SELECT min(received_at) FROM quarantine))
"""

#: Retention: entries older than QUARANTINE_RETENTION_DAYS, in batches.
PRUNE_QUARANTINE = """
DELETE FROM quarantine WHERE id IN (
    SELECT id FROM quarantine WHERE received_at < now() - make_interval(days => %(days)s) LIMIT %(batch)s)
"""


class QuarantineStore:
    database: Database

    def quarantine(self, *, vendor: str, account: str, status: int, reason: str, error: str, body: bytes,
                   headers: dict[str, str], auth_method: str, request_id: str | None,
                   max_entries: int) -> tuple[int, int]:
        """Keep one refused authentic delivery; evict past `max_entries`. Returns (id, evicted)."""
        params = {"vendor": vendor, "account": account, "status": status, "reason": reason, "error": error,
                  "body": body, "headers": Jsonb(headers), "auth_method": auth_method, "request_id": request_id,
                  "max_entries": max_entries}
        added, over = self.database.run("quarantine", lambda conn: add_entry(conn, params))
        if over <= 0:
            return added, 0
        try:
            return added, self.database.run("quarantine_evict", lambda conn: evict_over(conn, max_entries))
        except DatabaseUnavailable:
            # The entry is kept, and answered as kept; the next delivery evicts what is over.
            log.warning("could not evict past the quarantine bound", extra={"over": over})
            return added, 0

    def quarantine_entries(self, vendor: str | None, after: int, limit: int, account: str | None = None,
                           budget: int = PAGE_BUDGET_BYTES) -> tuple[list[dict[str, Any]], bool]:
        """Quarantined deliveries with ids above `after`, oldest first (the read API), of
        one vendor and account when given: at most `limit`, fewer when their bodies pass
        `budget` bytes. Returns (rows, more)."""
        params = {"vendor": vendor, "account": account, "after": after, "limit": limit + 1}
        return self.database.run("read_quarantine", lambda conn: bounded_page(
            conn, QUARANTINE_LIST, params, limit, budget, _entry_bytes))

    def quarantine_entry(self, entry_id: int) -> dict[str, Any] | None:
        return self.database.run("read_quarantine",
                                 lambda conn: dicts(conn, QUARANTINE_ONE, {"id": entry_id}).fetchone())

    def quarantine_stats(self, timeout: float = 1.0) -> tuple[int, float] | None:
        """(entries waiting, age in seconds of the oldest, 0 when none); None when unknown."""
        try:
            count, age = self.database.run(
                "quarantine_stats", lambda conn: conn.execute(QUARANTINE_STATS).fetchone(), timeout=timeout)
        except DatabaseUnavailable:
            return None
        return count, float(age or 0.0)

    def replay_candidates(self, after: int, limit: int, vendor: str | None = None, entry_id: int | None = None,
                          since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Entries to replay with ids above `after`, oldest first."""
        params = {"after": after, "vendor": vendor, "id": entry_id, "since": since, "until": until, "limit": limit}
        return self.database.run("replay_select", lambda conn: dicts(conn, QUARANTINE_SELECT, params).fetchall())

    def release(self, entry_id: int) -> None:
        """A replayed entry leaves quarantine (its delivery is stored)."""
        self.database.run("replay_release", lambda conn: conn.execute(QUARANTINE_RELEASE, {"id": entry_id}))

    def failed_again(self, entry_id: int, *, error: str, reason: str, status: int) -> None:
        params = {"id": entry_id, "error": error, "reason": reason, "status": status}
        self.database.run("replay_failed", lambda conn: conn.execute(QUARANTINE_FAILED_AGAIN, params))

    def prune_quarantine(self, retention_days: int, batch: int = 1000) -> int:
        """Delete quarantine entries past retention, in batches (short transactions)."""
        return self.database.in_batches("prune_quarantine", PRUNE_QUARANTINE, retention_days, batch)


def _entry_bytes(row: dict[str, Any]) -> int:
    """What an entry weighs in its JSON answer (the budget of a page): the body as escaped
    JSON text, or base64 when it is not UTF-8, with its headers and error. Counting base64
    alone let a page of three 1 MB bodies of control characters (six bytes each once
    escaped) reach 18 MB."""
    body = bytes(row["body"])
    try:
        shown = len(json.dumps(body.decode("utf-8")))
    except UnicodeDecodeError:
        shown = len(body) * 4 // 3 + 4
    return shown + len(json.dumps(row.get("headers"), default=str)) + len(json.dumps(row.get("error"))) + 512

"""The quarantine: authentic deliveries the normalizer could not read, kept, listed,
replayed (ingestion/quarantine.py says why; ingestion/replaying.py replays)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ..errors import DatabaseUnavailable
from .pool import Database
from .tickets import PAGE_BUDGET_BYTES, bounded_page, dicts

#: Quarantine one authentic delivery the normalizer could not read, and evict what falls
#: past the bound: the oldest entries of the account holding the most, so that one
#: source flooding the quarantine evicts its own entries, not another account's. The
#: per-account count is only taken once the id range passes the bound (ids only grow:
#: below it there cannot be more than `max` entries), so a quarantine under its bound
#: costs an index lookup, not a scan.
QUARANTINE = """
WITH added AS (
    INSERT INTO quarantine (vendor, account, status, reason, error, body, headers, auth_method, request_id)
    VALUES (%(vendor)s, %(account)s, %(status)s, %(reason)s, %(error)s, %(body)s, %(headers)s,
            %(auth_method)s, %(request_id)s)
    RETURNING id
), evicted AS (
    DELETE FROM quarantine
     WHERE (SELECT id FROM added) - %(max_entries)s >= (SELECT min(id) FROM quarantine)
       AND id IN (SELECT q.id FROM quarantine q
                   WHERE (q.vendor, q.account) = (SELECT vendor, account FROM quarantine
                                                   GROUP BY vendor, account ORDER BY count(*) DESC, min(id) LIMIT 1)
                   ORDER BY q.id
                   LIMIT greatest(0, (SELECT count(*) FROM quarantine) + 1 - %(max_entries)s))
    RETURNING 1
)
SELECT (SELECT id FROM added), (SELECT count(*) FROM evicted)
"""

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

#: The gauges: entries waiting, and the age of the oldest (the alert's input).
QUARANTINE_STATS = """
SELECT count(*), extract(epoch FROM now() - min(received_at)) FROM quarantine
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
        return self.database.run("quarantine", lambda conn: tuple(conn.execute(QUARANTINE, params).fetchone()))

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

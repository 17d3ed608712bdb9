"""The console's quarantine page (ingestion/web/console/quarantine.py): entries listed,
counted and read under a filter and the operator's scope, and the bulk replay jobs
(table `console_replays`; ingestion/web/console/quarantine_bulk.py says how they run).

The scope is a condition of every statement here, never a check made after reading: a
token scoped to one account can neither see, count, replay nor tell apart what another
account holds. MATCHES is the one filter of entries, shared by the list, the count and
a bulk job's next entry, so what the operator counted is what the job replays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from .pool import Database
from .replica import Reads
from .tickets import dicts

Scope = tuple[str, str] | None

#: Entries of the operator's scope (None: every account) that the filter matches.
MATCHES = """
    (%(scope_vendor)s::text IS NULL OR (q.vendor = %(scope_vendor)s AND q.account = %(scope_account)s))
AND (%(vendor)s::text IS NULL OR q.vendor = %(vendor)s)
AND (%(account)s::text IS NULL OR q.account = %(account)s)
AND (%(reason)s::text IS NULL OR q.reason = %(reason)s)
AND (%(since)s::timestamptz IS NULL OR q.received_at >= %(since)s)
AND (%(until)s::timestamptz IS NULL OR q.received_at < %(until)s)"""

#: A bulk job of the operator's scope: a scoped token sees only jobs confirmed in its own
#: scope, an unscoped one every job.
JOB_IN_SCOPE = """
(%(scope_vendor)s::text IS NULL OR (scope_vendor = %(scope_vendor)s AND scope_account = %(scope_account)s))"""

#: A page of entries, newest first, before a cursor (an id); the body cut to a preview
#: in the database, so a page of large bodies is never read whole.
PAGE = f"""
SELECT q.id, q.vendor, q.account, q.received_at, q.status, q.reason, q.error, q.headers, q.auth_method,
       q.request_id, q.attempts, q.last_attempt, substring(q.body FROM 1 FOR %(preview)s) AS body,
       octet_length(q.body) AS size
  FROM quarantine q
 WHERE q.id < %(before)s AND {MATCHES}
 ORDER BY q.id DESC
 LIMIT %(limit)s
"""

#: What the filter matches up to an id (a bulk replay's confirmation), and the highest id.
COUNT = f"""
SELECT count(*) AS count, coalesce(max(q.id), 0) AS max_id FROM quarantine q WHERE q.id <= %(up_to)s AND {MATCHES}
"""

ENTRY = f"""
SELECT q.id, q.vendor, q.account, q.received_at, q.status, q.reason, q.error, q.headers, q.auth_method,
       q.request_id, q.attempts, q.last_attempt, q.body, octet_length(q.body) AS size
  FROM quarantine q WHERE q.id = %(id)s AND {MATCHES}
"""

#: The tickets a replay stored into, for the result's links: of the scope only.
TICKETS = """
SELECT t.vendor, t.account, t.external_id FROM tickets t
 WHERE t.id = ANY(%(ids)s::uuid[])
   AND (%(scope_vendor)s::text IS NULL OR (t.vendor = %(scope_vendor)s AND t.account = %(scope_account)s))
 ORDER BY t.external_id
"""

JOB_CREATE = """
INSERT INTO console_replays (scope_vendor, scope_account, filter, max_id, expected)
VALUES (%(scope_vendor)s, %(scope_account)s, %(filter)s, %(max_id)s, %(expected)s)
RETURNING id
"""

JOB = f"SELECT * FROM console_replays WHERE id = %(job)s AND {JOB_IN_SCOPE}"

JOBS = f"SELECT * FROM console_replays WHERE {JOB_IN_SCOPE} ORDER BY id DESC LIMIT %(limit)s"

#: Take the job's next entry: only while it runs and nobody else holds an entry of it
#: (claimed_until past: a holder that died), and only from where it stands (last_id as
#: read): of two polls at once, the second finds the row changed and takes nothing. No
#: entry left: the job is done. The scope and filter parameters are the job's own.
CLAIM = f"""
WITH job AS (
    SELECT id, last_id, max_id FROM console_replays
     WHERE id = %(job)s AND state = 'running' AND (claimed_until IS NULL OR claimed_until < now())
), next AS (
    SELECT q.id, q.vendor, q.account, q.body, q.headers FROM quarantine q, job
     WHERE q.id > job.last_id AND q.id <= job.max_id AND {MATCHES}
     ORDER BY q.id LIMIT 1
)
UPDATE console_replays c
   SET claimed_id = next.id,
       claimed_until = CASE WHEN next.id IS NULL THEN NULL ELSE now() + make_interval(secs => %(lease)s) END,
       state = CASE WHEN next.id IS NULL THEN 'done' ELSE 'running' END,
       updated_at = now()
  FROM job LEFT JOIN next ON true
 WHERE c.id = job.id AND c.last_id = job.last_id AND c.state = 'running'
   AND (c.claimed_until IS NULL OR c.claimed_until < now())
RETURNING next.id, next.vendor, next.account, next.body, next.headers
"""

#: One entry replayed: the job stands past it (whatever its state meanwhile: a cancel
#: stops the next entry, not the counting of the one under way).
FINISH = """
UPDATE console_replays
   SET last_id = %(entry)s, claimed_id = NULL, claimed_until = NULL, done = done + 1,
       ingested = ingested + %(ingested)s, failed = failed + %(failed)s, updated_at = now()
 WHERE id = %(job)s AND claimed_id = %(entry)s
"""

CANCEL = f"""
UPDATE console_replays SET state = 'cancelled', updated_at = now()
 WHERE id = %(job)s AND state = 'running' AND {JOB_IN_SCOPE}
"""


@dataclass(frozen=True)
class QuarantineFilter:
    """What the operator asked for (None: any); received_at in [since, until)."""

    vendor: str | None = None
    account: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_json(self) -> dict[str, str]:
        """As a bulk job keeps it (ISO times), without the empty fields."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, stored: dict[str, str]) -> QuarantineFilter:
        times = {k: datetime.fromisoformat(stored[k]) for k in ("since", "until") if stored.get(k)}
        return cls(stored.get("vendor"), stored.get("account"), stored.get("reason"), **times)


def scope_params(scope: Scope) -> dict[str, str | None]:
    return {"scope_vendor": scope[0] if scope else None, "scope_account": scope[1] if scope else None}


def matching(found: QuarantineFilter, scope: Scope) -> dict[str, Any]:
    return {**asdict(found), **scope_params(scope)}


class ConsoleQuarantineStore:
    database: Database
    reads: Reads

    def console_quarantine_page(self, found: QuarantineFilter, scope: Scope, before: int, limit: int,
                                preview: int) -> tuple[list[dict[str, Any]], bool]:
        """Entries with ids below `before`, newest first: at most `limit`, each body cut
        to `preview` bytes (`size`: its whole length). Returns (rows, whether more follow)."""
        params = {**matching(found, scope), "before": before, "limit": limit + 1, "preview": preview}
        rows = self.reads.run("console_quarantine_page", lambda conn: dicts(conn, PAGE, params).fetchall())
        return rows[:limit], len(rows) > limit

    def console_quarantine_count(self, found: QuarantineFilter, scope: Scope,
                                 up_to: int = 2**63 - 1) -> tuple[int, int]:
        """(entries matched with ids up to `up_to`, the highest of their ids or 0)."""
        params = {**matching(found, scope), "up_to": up_to}
        row = self.database.run("console_quarantine_count", lambda conn: dicts(conn, COUNT, params).fetchone())
        return row["count"], row["max_id"]

    def console_quarantine_entry(self, entry_id: int, scope: Scope, fresh: bool = False) -> dict[str, Any] | None:
        """One entry, whole, when it is of the scope; `fresh`: from the primary (right
        after a replay: a replica may not have it yet)."""
        params = {**matching(QuarantineFilter(), scope), "id": entry_id}
        run = self.database.run if fresh else self.reads.run
        return run("console_quarantine_entry", lambda conn: dicts(conn, ENTRY, params).fetchone())

    def console_tickets(self, ticket_ids: list[str], scope: Scope) -> list[dict[str, Any]]:
        params = {"ids": ticket_ids, **scope_params(scope)}
        return self.database.run("console_tickets", lambda conn: dicts(conn, TICKETS, params).fetchall())

    def console_replay_create(self, found: QuarantineFilter, scope: Scope, max_id: int, expected: int) -> int:
        params = {**scope_params(scope), "filter": Jsonb(found.as_json()), "max_id": max_id, "expected": expected}
        return self.database.run("console_replay_create", lambda conn: conn.execute(JOB_CREATE, params).fetchone()[0])

    def console_replay(self, job_id: int, scope: Scope) -> dict[str, Any] | None:
        params = {"job": job_id, **scope_params(scope)}
        return self.database.run("console_replay", lambda conn: dicts(conn, JOB, params).fetchone())

    def console_replays(self, scope: Scope, limit: int = 10) -> list[dict[str, Any]]:
        """The newest bulk jobs of the scope."""
        params = {"limit": limit, **scope_params(scope)}
        return self.database.run("console_replays", lambda conn: dicts(conn, JOBS, params).fetchall())

    def console_replay_claim(self, job: dict[str, Any], lease_seconds: float) -> tuple[bool, dict[str, Any] | None]:
        """Take `job`'s next entry. (False, None): not taken (cancelled, done, or another
        request holds it); (True, None): nothing left, the job is done; (True, entry)."""
        scope = (job["scope_vendor"], job["scope_account"]) if job["scope_vendor"] is not None else None
        params = {**matching(QuarantineFilter.from_json(job["filter"]), scope), "job": job["id"],
                  "lease": lease_seconds}
        row = self.database.run("console_replay_claim", lambda conn: dicts(conn, CLAIM, params).fetchone())
        if row is None:
            return False, None
        return True, (row if row["id"] is not None else None)

    def console_replay_finish(self, job_id: int, entry_id: int, failed: bool) -> None:
        params = {"job": job_id, "entry": entry_id, "ingested": int(not failed), "failed": int(failed)}
        self.database.run("console_replay_finish", lambda conn: conn.execute(FINISH, params))

    def console_replay_cancel(self, job_id: int, scope: Scope) -> bool:
        params = {"job": job_id, **scope_params(scope)}
        return self.database.run("console_replay_cancel", lambda conn: conn.execute(CANCEL, params).rowcount == 1)

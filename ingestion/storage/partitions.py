"""The monthly partitions of `events`: made ahead, and dropped whole by retention.

`events` is partitioned by `received_at`, one partition per calendar month in UTC
(`events_YYYY_MM`), plus `events_default`, which catches a row no month holds yet (when
`python -m ingestion maintain` has not run for months): an insert never fails for want
of a partition. Maintenance (`maintain`, hourly in the relay):
- makes the months from the current one to MONTHS_AHEAD ahead; rows the default
  partition caught for such a month move into it first;
- with EVENT_RETENTION_DAYS set, detaches and drops each month that ended before the
  retention cut-off, after moving `history_trimmed_before` past it: tickets first seen
  before that moment have lost the start of their history, and `rebuild` leaves them as
  they are (functions.sql: rebuild_ticket). Rows of the month the cut-off falls in are
  emptied of personal data row by row, as before (storage/history.py).

Why months: a month of events is a few GB at most on a busy deployment, few enough
partitions for the planner (a year is 12), and the retention settings are in days, so a
month past the cut-off is dropped at most a month late.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

PARENT = "events"
DEFAULT = "events_default"
MONTHS_AHEAD = 3
#: A partition is made or dropped under a short lock wait: behind a long reader it gives
#: up (the next pass tries again) instead of holding every webhook behind itself.
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '2s'"
MAKER_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ingestion.partitions'))"


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_{start.year:04d}_{start.month:02d}"


@dataclass(frozen=True)
class Month:
    name: str
    start: datetime
    end: datetime


def months(conn: psycopg.Connection) -> list[Month]:
    """The monthly partitions `events` has, oldest first (not the default one)."""
    rows = conn.execute("""
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname <> %s
         ORDER BY c.relname""", (DEFAULT,)).fetchall()
    found = []
    for name, bound in rows:
        low, high = (part.split("'")[1] for part in bound.split(" TO "))
        found.append(Month(name, datetime.fromisoformat(low).astimezone(UTC),
                           datetime.fromisoformat(high).astimezone(UTC)))
    return sorted(found, key=lambda month: month.start)


def ensure_month(conn: psycopg.Connection, start: datetime) -> bool:
    """The partition of the month starting at `start`, made if missing (and what the
    default partition caught of it moved in), in one transaction. True if made."""
    name, end = partition_name(start), next_month(start)
    with conn.transaction():
        # One maker at a time (cron's `maintain` beside a relay starting, two relays): the
        # second waits, then finds the month made, where its CREATE failed on the table
        # the first had just made and the command said the database was unavailable.
        conn.execute(MAKER_LOCK)
        conn.execute(LOCK_TIMEOUT)
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]:
            return False
        caught = conn.execute(sql.SQL(
            "SELECT count(*) FROM {} WHERE received_at >= %s AND received_at < %s").format(
            sql.Identifier(DEFAULT)), (start, end)).fetchone()[0] if _has_default(conn) else 0
        if not caught:
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF events FOR VALUES FROM (%s) TO (%s)").format(
                sql.Identifier(name)).as_string(conn) % (_literal(start), _literal(end)))
            return True
        # Rows the default partition holds for this month: a new month's bounds may not
        # overlap them, so they move into a table that is then attached as the month.
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("WITH moved AS (DELETE FROM {} WHERE received_at >= %s AND received_at < %s "
                             "RETURNING *) INSERT INTO {} SELECT * FROM moved").format(
            sql.Identifier(DEFAULT), sql.Identifier(name)), (start, end))
        conn.execute(sql.SQL("ALTER TABLE events ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(
            sql.Identifier(name)).as_string(conn) % (_literal(start), _literal(end)))
        return True


def _has_default(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (DEFAULT,)).fetchone()[0]


def _literal(moment: datetime) -> str:
    """A bound as SQL text (partition bounds take no parameters)."""
    return "'" + moment.isoformat() + "'"


def ensure_months(conn: psycopg.Connection, first: datetime, last: datetime) -> list[str]:
    """The months from `first`'s to `last`'s exist; returns those made."""
    made, start = [], month_start(first)
    while start <= last:
        if ensure_month(conn, start):
            made.append(partition_name(start))
        start = next_month(start)
    return made


def ensure_ahead(conn: psycopg.Connection, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
    """The months from `now`'s to `ahead` months later exist; returns those made."""
    last = month_start(now)
    for _ in range(ahead):
        last = next_month(last)
    return ensure_months(conn, now, last)


def drop_before(conn: psycopg.Connection, cutoff: datetime, keep_unpublished: bool = True) -> list[str]:
    """Drops every month that ended at or before `cutoff`, oldest first, each after
    recording that the history before its end is gone (history_trimmed_before).

    A month still holding an event the relay has not published is kept, and the months
    after it with it (oldest first, so trimmed_before never passes a month still there):
    every event reaches the stream at least once, and a Redis outage across a month's
    end must not turn retention into a loss. The next run drops it once published.
    Without a stream (`keep_unpublished` false: no REDIS_URL, no NATS) nothing is ever
    published, and months go at the cut-off. Nor is a month kept past the cut-off by more
    than UNPUBLISHED_GRACE: REDIS_URL alone does not say a relay runs (a deployment may
    use Redis for its limits and prune from cron), and retention must end some time."""
    dropped = []
    for month in months(conn):
        if month.end > cutoff:
            break
        with conn.transaction():
            conn.execute(LOCK_TIMEOUT)
            if keep_unpublished and conn.execute(sql.SQL(UNPUBLISHED_IN).format(sql.Identifier(month.name))).fetchone():
                if month.end > cutoff - UNPUBLISHED_GRACE:
                    log.warning("retention keeps %s: it holds events not yet published to the stream", month.name)
                    break
                log.warning("retention drops %s with events no relay published in the %d days past retention",
                            month.name, UNPUBLISHED_GRACE.days)
            conn.execute("UPDATE event_history SET trimmed_before = greatest(trimmed_before, %s)", (month.end,))
            conn.execute(sql.SQL("ALTER TABLE events DETACH PARTITION {}").format(sql.Identifier(month.name)))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(month.name)))
        dropped.append(month.name)
    return dropped


#: How long past the retention cut-off an event the relay has not published is kept for it
#: (a Redis outage across the cut-off), at most: then retention goes on without it.
UNPUBLISHED_GRACE = timedelta(days=7)

#: An event of one month the relay has not published yet (the partial index
#: events_unpublished answers it).
UNPUBLISHED_IN = "SELECT 1 FROM {} WHERE published_at IS NULL AND outcome <> 'stale' LIMIT 1"


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)

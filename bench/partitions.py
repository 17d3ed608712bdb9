"""`make bench-partitions`: the partitioned `events` table's hot plans and retention.

Seeds a durable PostgreSQL with a history over a year (bench/seeding.py: seed_history,
its months made first as `maintain` makes them), then:
- prints `EXPLAIN (COSTS OFF)` of the hot queries (the read API's ticket and events, the
  console's events page newest first and over the last hour, a ticket's timeline, the
  relay's queue and marks, the duplicate lookup of ingest_event(), rebuild's and redact's
  reads), for docs/partitions.md;
- times retention both ways on months of the same size: emptying a month's personal
  data row by row (what EVENT_RETENTION_DAYS did before: batches of 2000 UPDATEs), and
  detaching and dropping a month whole (storage/partitions.py), with the table's size
  after each (the emptied rows stay as dead tuples until a vacuum).
Nothing is asserted: the figures are for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seeding import seed_history
from devserver import PostgresServer
from ingestion.storage import partitions
from ingestion.storage.history import PRUNE_EVENT_PAYLOADS, REBUILD_EVENTS, REDACT_EVENTS
from ingestion.storage.console_events import page_sql
from ingestion.storage.console_ticket import CONSOLE_TICKET_EVENTS
from ingestion.storage.migrate import migrate
from ingestion.storage.outbox import MARK_PUBLISHED, PENDING_EVENTS
from ingestion.storage.tickets import TICKET_EVENTS

LOOKUP = """
SELECT k.event_id AS id, coalesce(e.received_at, k.received_at) AS received_at
  FROM event_keys k LEFT JOIN events e ON e.id = k.event_id AND e.ticket_id = k.ticket_id
 WHERE k.ticket_id = %(ticket)s AND k.dedup_key = %(key)s
"""


def plans(conn: psycopg.Connection) -> None:
    ticket, key = conn.execute("SELECT ticket_id, dedup_key FROM event_keys LIMIT 1").fetchone() or (None, None)
    if ticket is None:  # the seed writes events directly: give one event its key, as ingest_event() does
        ticket, key = conn.execute("""INSERT INTO event_keys SELECT ticket_id, dedup_key, id, received_at
                                      FROM events ORDER BY id LIMIT 1 RETURNING ticket_id, dedup_key""").fetchone()
    now = datetime.now(UTC)
    ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id DESC LIMIT 500")]
    queries = [
        ("read API: a ticket's events (GET /api/v1/tickets/.../events)", TICKET_EVENTS,
         {"ticket_id": ticket, "after": 0, "limit": 101}),
        ("console: events, newest first", page_sql({}, scoped=False, direction=None), {"limit": 51}),
        ("console: events of the last hour", page_sql({"since": now - timedelta(hours=1)}, scoped=False, direction=None),
         {"since": now - timedelta(hours=1), "limit": 51}),
        ("console: a ticket's timeline", CONSOLE_TICKET_EVENTS,
         {"ticket_id": ticket, "after": 0, "limit": 201, "pretty": 65536}),
        ("relay: the pending events", PENDING_EVENTS, {"limit": 500}),
        ("relay: marking a batch published", MARK_PUBLISHED,
         {"ids": ids, "first": now - timedelta(days=1), "last": now}),
        ("ingest_event(): the duplicate lookup", LOOKUP, {"ticket": ticket, "key": key}),
        ("rebuild: a ticket's events", REBUILD_EVENTS, {"id": ticket}),
        ("redact: a ticket's events", REDACT_EVENTS, {"id": ticket}),
    ]
    for title, query, params in queries:
        rows = conn.execute("EXPLAIN (COSTS OFF) " + query, params).fetchall()
        print(f"\n#### {title}\n\n```")
        print("\n".join(row[0] for row in rows))
        print("```")


def size(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i "
                        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass").fetchone()[0]


def retention(conn: psycopg.Connection) -> None:
    oldest = partitions.months(conn)[:2]
    counts = [conn.execute(f"SELECT count(*) FROM {month.name}").fetchone()[0] for month in oldest]
    print(f"\nretention on months of {counts[0]:,} and {counts[1]:,} events; events take {size(conn)}")
    started = time.perf_counter()
    emptied = 0
    days = (datetime.now(UTC) - oldest[0].end).days  # everything before the first month's end
    while True:  # as Database.in_batches runs it: batches of 2000, each its own transaction
        count = conn.execute(PRUNE_EVENT_PAYLOADS.replace("%(days)s", str(days)).replace("%(batch)s", "2000")).rowcount
        emptied += count
        if count < 2000:
            break
    updating = time.perf_counter() - started
    print(f"  row by row: {emptied:,} events emptied in {updating:.2f} s; events take {size(conn)} (dead rows stay)")
    started = time.perf_counter()
    dropped = partitions.drop_before(conn, oldest[1].end)
    dropping = time.perf_counter() - started
    print(f"  whole months: {', '.join(dropped)} detached and dropped in {dropping:.3f} s; events take {size(conn)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--events-per-ticket", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=True).start()
    try:
        url = pg.create_database("partitions")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            partitions.ensure_months(conn, datetime.now(UTC) - timedelta(days=args.days + 1), datetime.now(UTC))
        seconds = seed_history(url, args.tickets, args.events_per_ticket, days=args.days)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            months = partitions.months(conn)
            print(f"seeded {args.tickets:,} tickets, {args.tickets * args.events_per_ticket:,} events over "
                  f"{args.days} days in {seconds:.0f} s: {len(months)} monthly partitions, events take {size(conn)}")
            plans(conn)
            retention(conn)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

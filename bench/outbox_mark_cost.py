"""`python bench/outbox_mark_cost.py [--events N] [--batch B]`: what the relay's marking
of published events costs PostgreSQL, next to what storing them cost.

`make bench` measures the webhooks alone; in production the relay runs beside them and
marks every stored event published (storage/outbox.py: MARK_PUBLISHED, one UPDATE per
batch). One durable throwaway PostgreSQL: N creates through `ingest_event()` (a new
ticket and its event with a Freshdesk-like payload of about 1.2 KB, as
console_index_cost.py sends), then every event marked in batches of B, as the relay does
right after the webhooks (no checkpoint between, so the pages' full images are already
written). Prints WAL bytes, wall time and the backend's CPU per event for each phase, and
how many of the updates were HOT (heap-only: no index entries rewritten). Nothing is
asserted (docs/performance.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import psycopg
from console_index_cost import CALL, FIELDS, payload

from devserver import PostgresServer
from ingestion.storage.migrate import migrate
from ingestion.storage.outbox import MARK_PUBLISHED

TICKS = 100  # /proc/<pid>/stat clock ticks per second (USER_HZ)


def wal_position(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]


def wal_bytes(conn: psycopg.Connection, start: str, end: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (end, start)).fetchone()[0])


def backend_cpu(conn: psycopg.Connection) -> float:
    """CPU seconds the connection's backend has used (utime + stime)."""
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measured(conn: psycopg.Connection, label: str, count: int, work) -> None:
    start, wall, cpu = wal_position(conn), time.perf_counter(), backend_cpu(conn)
    work()
    end, wall, cpu = wal_position(conn), time.perf_counter() - wall, backend_cpu(conn) - cpu
    print(f"  {label:<8}{wal_bytes(conn, start, end) / count:>10.0f} B{wall / count * 1e6:>10.0f} us"
          f"{cpu / count * 1e6:>10.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=500, help="events marked per UPDATE (the relay's batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        pg = PostgresServer(Path(work) / "postgres", durable=True).start()
        try:
            url = pg.create_database("outbox_mark")
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
                print(f"{args.events} events, marked in batches of {args.batch}; per event:")
                print(f"  {'phase':<8}{'WAL':>12}{'wall':>13}{'backend CPU':>13}")

                def store() -> None:
                    for n in range(args.events):
                        conn.execute(CALL, ("freshdesk", f"t{n}", FIELDS, f"id:{n}", payload(n)))

                def mark() -> None:
                    ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
                    for i in range(0, len(ids), args.batch):
                        with conn.transaction():
                            conn.execute(MARK_PUBLISHED, {"ids": ids[i:i + args.batch], "first": "-infinity",
                                                          "last": "infinity"})

                measured(conn, "store", args.events, store)
                measured(conn, "mark", args.events, mark)
                conn.execute("SELECT pg_stat_force_next_flush()")
                updated, hot = conn.execute(
                    "SELECT sum(n_tup_upd)::bigint, sum(n_tup_hot_upd)::bigint FROM pg_stat_user_tables "
                    "WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)"
                ).fetchone()
                print(f"  updates of events: {updated}, of which HOT: {hot}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

"""`python bench/outbox_mark_cost.py [--events N] [--batch B]`: what the relay's marking
of published events costs PostgreSQL, next to what storing them cost.

`make bench` measures the webhooks alone; in production the relay runs beside them and
marks every stored event published (storage/outbox.py: MARK_PUBLISHED, one UPDATE per
batch). One durable throwaway PostgreSQL: N creates through `ingest_event()` (a new
ticket and its event with a Freshdesk-like payload of about 1.2 KB, as
console_index_cost.py sends), then the relay's own transaction (`publish_pending`: read
a batch of B, hand it to a publisher that does nothing, mark it) until nothing is
pending, right after the webhooks as in production (no checkpoint between, so the pages'
full images are already written). Prints WAL bytes, wall time and PostgreSQL's CPU (every
process, as cpu.py counts it) per event for each phase, and how many of the updates were
HOT (heap-only: no index entries rewritten). Nothing is asserted (docs/performance.md).
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
from cpu import TICKS, cpu_ticks, postmaster_pid, tree, wal_bytes, wal_position

from devserver import PostgresServer
from ingestion.storage import Storage
from ingestion.storage.migrate import migrate
from ingestion.vendors import load_settings

#: Row updates of the events' partitions, and how many of them were heap-only (HOT).
UPDATES = """
SELECT coalesce(sum(n_tup_upd), 0)::bigint, coalesce(sum(n_tup_hot_upd), 0)::bigint FROM pg_stat_user_tables
 WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)
"""


def postgres_cpu(pg: PostgresServer) -> float:
    """CPU seconds every PostgreSQL process has used (the backends of both connections)."""
    return sum(cpu_ticks(pid) for pid in tree(postmaster_pid(pg))) / TICKS


def measured(conn: psycopg.Connection, pg: PostgresServer, label: str, count: int, work) -> None:
    start, wall, cpu = wal_position(conn), time.perf_counter(), postgres_cpu(pg)
    work()
    end, wall, cpu = wal_position(conn), time.perf_counter() - wall, postgres_cpu(pg) - cpu
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
            storage = Storage(load_settings({"APP_ENV": "development", "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
                print(f"{args.events} events, marked in batches of {args.batch}; per event:")
                print(f"  {'phase':<8}{'WAL':>12}{'wall':>13}{'PostgreSQL CPU':>15}")

                def store() -> None:
                    for n in range(args.events):
                        conn.execute(CALL, ("freshdesk", f"t{n}", FIELDS, f"id:{n}", payload(n)))

                def relay() -> None:
                    while storage.publish_pending(args.batch, lambda rows: None):
                        pass

                measured(conn, pg, "store", args.events, store)
                measured(conn, pg, "relay", args.events, relay)
                storage.close()  # its backends end, and report their statistics
                for _ in range(50):  # (written when a backend exits: moments later)
                    if conn.execute(UPDATES).fetchone()[0]:
                        break
                    time.sleep(0.1)
                updated, hot = conn.execute(UPDATES).fetchone()
                print(f"  updates of events: {updated}, of which HOT: {hot}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

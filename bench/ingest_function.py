"""`python bench/ingest_function.py`: the SQL hot path alone, today's `ingest_event()`
(functions.sql) against the last one a migration defined (migration 6's), call by call.

Migration 6's function is recreated beside today's (as `ingest_event_old`) in a
throwaway PostgreSQL (fsync off: the function's own cost, not the disk's), and the two
are called alternately, one new ticket and one more event on it per call pair, so the
host's drift falls on both alike. Prints the median and quartiles per call (client round
trip included), for creates and for events on a stored ticket. Nothing is asserted
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from devserver import PostgresServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

PREVIOUS = ROOT / "ingestion" / "storage" / "migrations" / "0006_vendor_deletions.sql"
CALL = ("SELECT * FROM {}(%s, '', %s, %s, %s, NULL, 'ticket.snapshot', NULL, NULL, NULL, NULL, NULL, "
        "%s::jsonb, NULL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12000)
    args = parser.parse_args()
    text = PREVIOUS.read_text()
    old = text[text.index("CREATE OR REPLACE FUNCTION ingest_event("):].replace(
        "CREATE OR REPLACE FUNCTION ingest_event(", "CREATE FUNCTION ingest_event_old(", 1)
    # What the normalizers read from `make bench`'s bodies.
    fields = Jsonb({"subject": "The printer is on fire", "description": "<p>The printer is on fire</p>",
                    "status": "open", "priority": "normal", "tags": ["bench", "printer"],
                    "vendor_updated_at": "2025-02-03T10:15:00Z"})
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-sql-") as work:
        pg = PostgresServer(Path(work) / "pg", durable=False).start()
        try:
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            migrate(pg.url("bench"))
            with psycopg.connect(pg.url("bench"), autocommit=True) as conn:
                conn.execute(old)
                times: dict[tuple[str, str], list[float]] = {
                    (f, kind): [] for f in ("ingest_event_old", "ingest_event") for kind in ("create", "event")}
                n = 0
                for i in range(args.pairs):
                    for function in (("ingest_event_old", "ingest_event") if i % 2 else ("ingest_event", "ingest_event_old")):
                        n += 1
                        for kind, key in (("create", f"id:{n}"), ("event", f"id:{n}b")):
                            started = time.perf_counter()
                            conn.execute(CALL.format(function), ("freshdesk", f"t{n}", fields, key, '{"id": 1}'))
                            times[(function, kind)].append((time.perf_counter() - started) * 1e6)
            for (function, kind), values in times.items():
                values.sort()
                print(f"{function:<18} {kind:<7} µs per call: median {statistics.median(values):6.0f}   "
                      f"p25 {values[len(values) // 4]:6.0f}   p75 {values[3 * len(values) // 4]:6.0f}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

"""`python bench/merge_cost.py`: what the merge of a new ticket costs the server, per
transaction, next to a bare round trip.

Each statement runs in its own transaction (autocommit), as a webhook's call does, in a
throwaway PostgreSQL (fsync off), in alternating blocks of `--per` calls after a warm-up
of 50; counted is the CPU of the one server process (`/proc/<pid>/schedstat`). The
statements: `SELECT 1` (the round trip and the transaction), `ingestion_uuid_v7()`,
`blank_ticket()`, `jsonb_populate_record()` over a blank ticket, and `ticket_merge()` of
a blank ticket with bench/ingest_function.py's fields (what every create runs). Why it
exists: a PL/pgSQL function prepares its expressions again in each transaction, so the
merge measured inside one loop (12-18 us) says little of what it costs a webhook
(docs/performance.md, stop 42). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import psycopg
from ingest_function import FIELDS, backend_ns
from psycopg.types.json import Jsonb

from devserver import PostgresServer
from ingestion.storage.migrate import migrate

STATEMENTS = {
    "SELECT 1": ("SELECT 1", lambda n: ()),
    "ingestion_uuid_v7()": ("SELECT ingestion_uuid_v7()", lambda n: ()),
    "blank_ticket()": ("SELECT blank_ticket('freshdesk', '', %s)", lambda n: (f"t{n}",)),
    "jsonb_populate_record()": ("SELECT jsonb_populate_record(blank_ticket('freshdesk', '', %s), %s)",
                                lambda n: (f"t{n}", Jsonb(FIELDS))),
    "ticket_merge() of a blank": ("SELECT ticket_merge(blank_ticket('freshdesk', '', %s), %s, now())",
                                  lambda n: (f"t{n}", Jsonb(FIELDS))),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--per", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingestion-merge-cost-") as work:
        os.chmod(work, 0o755)
        pg = PostgresServer(Path(work) / "pg", durable=False).start()
        try:
            url = pg.create_database("bench")
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                per: dict[str, list[float]] = {name: [] for name in STATEMENTS}
                n = 0
                for _ in range(args.blocks):
                    for name, (sql, params) in STATEMENTS.items():
                        for i in range(50):
                            conn.execute(sql, params(n + i))
                        started = backend_ns(pid)
                        for i in range(args.per):
                            conn.execute(sql, params(n + i))
                        per[name].append((backend_ns(pid) - started) / args.per / 1000)
                        n += args.per + 50
            print(f"server CPU per call, each its own transaction ({args.blocks} blocks of {args.per}; median, quartiles):")
            for name, values in per.items():
                low, mid, high = statistics.quantiles(values, n=4)
                print(f"  {name:<28}{mid:7.1f} us   ({low:.1f}-{high:.1f})")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

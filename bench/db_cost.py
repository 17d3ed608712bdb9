"""`python bench/db_cost.py`: what one create costs PostgreSQL, the service's statement
against the plain reference app's transaction, alone.

The service's is its webhook statement (`ingest_event()`, one statement in autocommit, as
bench/ingest_function.py calls it); the plain app's is bench/plain_app.py's own upsert and
delivery row in one transaction (BEGIN, two statements, COMMIT: four round trips, as
psycopg sends them). Both run in one throwaway PostgreSQL, each on its own connection, in
alternating blocks of `--per` creates after a warm-up block; counted are the CPU of each
connection's server process (`/proc/<pid>/schedstat`) and the WAL it wrote
(`pg_current_wal_insert_lsn()`), per create. `--durable` keeps fsync on (every commit
then waits for, and pays, a flush of its own: nothing else commits beside it).
`--by-relation` also splits each app's WAL by the table or index it was written for
(pg_walinspect's records between the block's two positions; a record counts for the
first relation it names), which says what each stored feature costs in WAL.

Why it exists: under `make bench`'s load the service's PostgreSQL costs about 1.5x the
plain app's per create (docs/performance.md, stop 43), and this separates what the
statements cost from what load adds. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import psycopg
from cpu import enable_walinspect
from harness import PLAIN_TABLES
from ingest_function import CALL, FIELDS, PAYLOAD, backend_ns
from psycopg.types.json import Jsonb

from devserver import PostgresServer
from ingestion.storage.migrate import migrate


def plain_statements() -> tuple[str, str]:
    """bench/plain_app.py's UPSERT and DELIVERY, read from its source: importing the app
    would build it (its pool, limiter and multiprocess metrics need their environment)."""
    tree = ast.parse((ROOT / "bench" / "plain_app.py").read_text())
    found = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
             and node.targets[0].id in ("UPSERT", "DELIVERY")}
    return found["UPSERT"], found["DELIVERY"]


def wal_by_relation(conn: psycopg.Connection, start: str, end: str) -> Counter:
    """WAL bytes and records between two positions by the relation each record names
    first ("(none)": a commit, a sequence's, ...): {(name, "bytes"|"records"): n}."""
    split: Counter = Counter()
    for _ in range(200):  # pg_walinspect reads flushed WAL only; fsync off commits asynchronously
        if conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (end,)).fetchone()[0]:
            break
        time.sleep(0.02)
    rows = conn.execute(
        "SELECT r.record_length, c.relname FROM pg_get_wal_records_info(%s, %s) r"
        " LEFT JOIN pg_class c ON c.relfilenode = substring(r.block_ref FROM 'rel [0-9]+/[0-9]+/([0-9]+)')::oid",
        (start, end)).fetchall()
    for length, name in rows:
        split[(name or "(none)", "bytes")] += int(length)
        split[(name or "(none)", "records")] += 1
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=12, help="blocks per app (default 12)")
    parser.add_argument("--per", type=int, default=300, help="creates per block (default 300)")
    parser.add_argument("--durable", action="store_true", help="fsync on (default off)")
    parser.add_argument("--by-relation", action="store_true", help="split the WAL by table and index")
    args = parser.parse_args()
    upsert, delivery = plain_statements()
    counter = itertools.count()
    fields, payload = Jsonb(FIELDS), Jsonb(json.loads(PAYLOAD))
    with tempfile.TemporaryDirectory(prefix="ingestion-db-cost-") as work:
        os.chmod(work, 0o755)
        pg = PostgresServer(Path(work) / "pg", durable=args.durable).start()
        try:
            url = pg.create_database("bench")
            migrate(url)
            with psycopg.connect(url, autocommit=True) as setup:
                setup.execute(PLAIN_TABLES)
            with psycopg.connect(url, autocommit=True) as service, psycopg.connect(url) as plain:
                service_pid = service.execute("SELECT pg_backend_pid()").fetchone()[0]
                plain_pid = plain.execute("SELECT pg_backend_pid()").fetchone()[0]
                plain.commit()
                by_relation = args.by_relation and enable_walinspect(service)
                if args.by_relation and not by_relation:
                    print("pg_walinspect is not installed: no split by relation")
                relations: dict[str, Counter] = {"service": Counter(), "plain": Counter()}

                def service_create(n: int) -> None:
                    service.execute(CALL.format("ingest_event"), ("freshdesk", f"t{n}", fields, f"id:{n}", PAYLOAD),
                                    prepare=True)

                def plain_create(n: int) -> None:
                    with plain.transaction():
                        ticket_id, _ = plain.execute(upsert, ("freshdesk", f"t{n}", FIELDS["subject"], FIELDS["status"],
                                                              payload)).fetchone()
                        plain.execute(delivery, (ticket_id, "freshdesk", f"t{n}", "created"))

                apps = {"service": (service_create, service_pid), "plain": (plain_create, plain_pid)}
                cpu: dict[str, list[float]] = {name: [] for name in apps}
                wal: dict[str, list[float]] = {name: [] for name in apps}

                def lsn() -> str:
                    return service.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]

                for block in range(args.blocks + 1):
                    for name in (("service", "plain") if block % 2 else ("plain", "service")):
                        create, pid = apps[name]
                        before, started = lsn(), backend_ns(pid)
                        for _ in range(args.per):
                            create(next(counter))
                        spent, after = backend_ns(pid) - started, lsn()
                        if block:  # the first block warms the caches and the prepared statements
                            cpu[name].append(spent / 1e3 / args.per)
                            wal[name].append(float(service.execute("SELECT pg_wal_lsn_diff(%s, %s)",
                                                                   (after, before)).fetchone()[0]) / args.per)
                            if by_relation:
                                relations[name] += wal_by_relation(service, before, after)
            print(f"one create, alone: server CPU and WAL ({args.blocks} alternating blocks of {args.per}; "
                  f"fsync {'on' if args.durable else 'off'}; median and quartiles)")
            for name in apps:
                low, mid, high = statistics.quantiles(cpu[name], n=4)
                print(f"  {name:<8} {mid:7.1f} us ({low:.1f}-{high:.1f})   WAL {statistics.median(wal[name]):6.0f} bytes")
            ratios = [s / p for s, p in zip(cpu["service"], cpu["plain"])]
            print(f"  service / plain, paired by block: {statistics.median(ratios):.2f}x of the server CPU")
            if by_relation:
                creates = args.blocks * args.per
                for name, split in relations.items():
                    print(f"  {name}'s WAL per create by relation (bytes, records):")
                    names = sorted({n for n, _ in split}, key=lambda n: -split[(n, "bytes")])
                    for relation in names:
                        print(f"    {relation:<48} {split[(relation, 'bytes')] / creates:6.0f}"
                              f" {split[(relation, 'records')] / creates:6.2f}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

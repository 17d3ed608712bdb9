"""`python bench/ingest_function.py`: the SQL hot path alone, today's `ingest_event()`
(functions.sql) against another version of it, call by call.

The other version is `--against FILE`: a functions.sql (another checkout's
`ingestion/storage/functions.sql`, or a copy with a change to try), or by default the
last `ingest_event()` a migration restated whole (migration 6's). Every function the file
defines is created beside today's under the suffix `_b`, calls between them renamed, in a
throwaway PostgreSQL (fsync off: the function's own cost, not the disk's).

What is counted is the CPU of the server process that runs the calls
(`/proc/<pid>/schedstat`, nanoseconds), not the wall time: the client, the network and the
host's other work fall outside it. Each call is its own transaction, as a webhook's is (a
PL/pgSQL function prepares its expressions again in every transaction, so a loop inside
one transaction would hide part of the cost). The two versions run in alternating blocks
of `--per` calls, `--blocks` times: creates, then a status change of each stored ticket
(an update: the merge, and the ticket saved). Printed: the median per call of each, and
the median and quartiles of the paired differences, so the host's drift falls on both
alike (an A/A run, `--against` today's own file, gives 0 +- 10 us quartiles). Nothing is
asserted (docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from devserver import PostgresServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

PREVIOUS = ROOT / "ingestion" / "storage" / "migrations" / "0006_vendor_deletions.sql"
# Fourteen arguments: what migration 6's function takes, and today's (its p_credential
# has a default).
CALL = ("SELECT * FROM {}(%s, '', %s, %s, %s, NULL, 'ticket.snapshot', NULL, NULL, NULL, NULL, NULL, "
        "%s::jsonb, NULL)")
# What the normalizers read from `make bench`'s bodies, and such a body.
FIELDS = {"subject": "The printer is on fire", "description": "<p>The printer is on fire</p>",
          "status": "open", "priority": "normal", "tags": ["bench", "printer"],
          "vendor_updated_at": "2025-02-03T10:15:00Z"}
PAYLOAD = json.dumps({"ticket": {"id": 1, "subject": "The printer is on fire", "status": "open",
                                 "priority": "normal", "description": "<p>The printer is on fire</p>",
                                 "tags": ["bench", "printer"], "updated_at": "2025-02-03T10:15:00Z"}})


def beside(sql: str) -> str:
    """`sql`'s functions under the suffix `_b`, so they live beside today's; its DROP
    FUNCTION statements (which would drop today's) left out."""
    sql = re.sub(r"DROP FUNCTION IF EXISTS [^;]*;", "", sql)
    for name in set(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)\(", sql)):
        sql = re.sub(rf"\b{name}\(", f"{name}_b(", sql)
    return sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


def backend_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path,
                        help="a functions.sql to compare today's with (default: migration 6's ingest_event)")
    parser.add_argument("--blocks", type=int, default=60, help="blocks per version and kind (default 60)")
    parser.add_argument("--per", type=int, default=200, help="calls per block (default 200)")
    args = parser.parse_args()
    if args.against:
        other, label = beside(args.against.read_text()), str(args.against)
    else:
        text = PREVIOUS.read_text()
        other, label = beside(text[text.index("CREATE OR REPLACE FUNCTION ingest_event("):]), PREVIOUS.name
    names = {"today": "ingest_event", "other": "ingest_event_b"}
    counter = itertools.count()
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-sql-") as work:
        pg = PostgresServer(Path(work) / "pg", durable=False).start()
        try:
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            migrate(pg.url("bench"))
            with psycopg.connect(pg.url("bench"), autocommit=True) as conn:
                conn.execute(other)
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                fields = Jsonb(FIELDS)
                changed = Jsonb({**FIELDS, "status": "pending", "vendor_updated_at": "2025-02-03T11:15:00Z"})
                print(f"ingest_event() today against {label}: server CPU per call (us), each call its own "
                      f"transaction, {args.blocks} alternating blocks of {args.per}")
                for kind in ("create", "event"):
                    per_call: dict[str, list[float]] = {version: [] for version in names}
                    for block in range(args.blocks):
                        for version in (("today", "other") if block % 2 else ("other", "today")):
                            statement = CALL.format(names[version])
                            started = backend_ns(pid)
                            for _ in range(args.per):
                                n = next(counter)
                                # an event: a status change of a ticket a create of this run stored
                                ticket = f"t{n}" if kind == "create" else f"t{n % (2 * args.blocks * args.per)}"
                                conn.execute(statement, ("freshdesk", ticket, fields if kind == "create" else changed,
                                                         f"id:{n}", PAYLOAD), prepare=True)
                            per_call[version].append((backend_ns(pid) - started) / 1e3 / args.per)
                    differences = [today - other_ for today, other_ in zip(per_call["today"], per_call["other"])]
                    low, _, high = statistics.quantiles(differences, n=4)
                    print(f"  {kind:<7} today {statistics.median(per_call['today']):6.1f}   other "
                          f"{statistics.median(per_call['other']):6.1f}   today - other: median "
                          f"{statistics.median(differences):+6.1f} (quartiles {low:+.1f} .. {high:+.1f})")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

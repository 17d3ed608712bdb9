"""`python bench/quarantine_bound.py`: what quarantining one delivery costs below and at
QUARANTINE_MAX_ENTRIES, optionally beside an older revision's statement.

A throwaway PostgreSQL (fsync off), one database per variant, each filled at once to
1,000 entries short of the bound (three accounts), then quarantines from the three
accounts in turn, in blocks of 500, the variants alternating block by block: the first
two blocks fill the quarantine, the rest evict. Today's path is the service's own
(storage/quarantine.py: add_entry, then evict_over when over the bound). `--against REV`
runs that revision's single QUARANTINE statement instead (as up to 3936dcf: it counted
and grouped the whole quarantine at each delivery once full), on a database whose
counting triggers are disabled. Prints wall microseconds per delivery, block by block.
Nothing is asserted (docs/performance.md, stop 41).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg
from psycopg.types.json import Jsonb

from devserver import PostgresServer
from ingestion.storage.migrate import FUNCTIONS, migrate
from ingestion.storage.quarantine import add_entry, evict_over

FILL = """
INSERT INTO quarantine (vendor, account, status, reason, error, body)
SELECT 'freshdesk', 'acct' || (g %% 3), 422, 'invalid_field', 'no id', '\\x00' FROM generate_series(1, %s) g
"""


def params(n: int, bound: int) -> dict:
    return {"vendor": "freshdesk", "account": f"acct{n % 3}", "status": 422, "reason": "invalid_field",
            "error": "no id", "body": b"{}", "headers": Jsonb({}), "auth_method": "hmac", "request_id": None,
            "max_entries": bound}


def todays(conn: psycopg.Connection, n: int, bound: int) -> None:
    _, over = add_entry(conn, params(n, bound))
    if over > 0:
        evict_over(conn, bound)


def older(statement: str):
    def deliver(conn: psycopg.Connection, n: int, bound: int) -> None:
        conn.execute(statement, params(n, bound)).fetchone()
    return deliver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bound", type=int, action="append", help="QUARANTINE_MAX_ENTRIES (repeatable; "
                        "default 10000 and 100000)")
    parser.add_argument("--blocks", type=int, default=6, help="blocks of 500 per variant (default 6)")
    parser.add_argument("--against", help="a revision whose QUARANTINE statement runs beside today's")
    args = parser.parse_args()
    statement = None
    if args.against:
        text = subprocess.run(["git", "show", f"{args.against}:ingestion/storage/quarantine.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        statement = re.search(r'^QUARANTINE = """(.*?)"""', text, re.DOTALL | re.MULTILINE).group(1)
    work = Path(tempfile.mkdtemp(prefix="quarantine-bound-"))
    pg = PostgresServer(work / "postgres").start()
    try:
        for bound in args.bound or [10_000, 100_000]:
            variants = {"today": todays}
            if statement:
                variants[args.against] = older(statement)
            conns = {}
            for name in variants:
                url = pg.create_database(f"q_{len(conns)}_{bound}")
                migrate(url)
                conn = psycopg.connect(url, autocommit=True)
                conn.execute(FILL, (max(0, bound - 1000),))
                conn.execute("ANALYZE quarantine")
                if name == "today":
                    conn.execute(FUNCTIONS.read_text())  # counts what FILL added (as an upgrade does)
                else:
                    conn.execute("ALTER TABLE quarantine DISABLE TRIGGER USER")
                conns[name] = conn
            rounds: dict[str, list[int]] = {name: [] for name in variants}
            for _ in range(args.blocks):
                for name, deliver in variants.items():
                    started = time.perf_counter()
                    for n in range(500):
                        deliver(conns[name], n, bound)
                    rounds[name].append(round((time.perf_counter() - started) / 500 * 1e6))
            print(f"bound {bound:,}: us per delivery, blocks of 500 (the first two fill it, the rest evict)")
            for name, values in rounds.items():
                print(f"  {name:<12} {', '.join(map(str, values))}")
            for conn in conns.values():
                conn.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

"""`python bench/reconcile.py`: how fast the reconciler stores what it reads.

Starts a durable PostgreSQL on loopback and the fake vendor API of the tests (a real
HTTP server), exports N Zendesk tickets in pages of 1000, and times:

1. a backfill of all N (every one `repaired`: the store starts empty);
2. a reconcile pass after 10% of them changed at the vendor (the rest `unchanged`,
   rolled back without leaving a row);
3. the same pass again (nothing changed: all `unchanged`).

Pacing is lifted (RECONCILE_REQUESTS_PER_MINUTE=6000) so the figures are the
reconciler's own cost; against the real vendors the pace (10 requests a minute for
Zendesk, 1000 tickets each) is the limit, not this. Nothing is asserted: figures are
printed for a human (docs/performance.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psycopg  # noqa: E402

from devserver import PostgresServer  # noqa: E402
from fake_vendor_api import ZENDESK_TOKEN, FakeVendorAPI  # noqa: E402
from ingestion.vendors import load_settings  # noqa: E402
from ingestion.jobs.reconcile.engine import reconcilers  # noqa: E402
from ingestion.jobs.reconcile.settings import ReconcileSettings  # noqa: E402
from ingestion.storage import Storage  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def ticket(number: int, moment: datetime, subject: str) -> dict:
    return {"id": number, "subject": subject, "description": f"Ticket {number} needs help", "status": "open",
            "priority": "normal", "type": "question", "requester_id": 1000 + number % 97, "assignee_id": 7,
            "group_id": 3, "organization_id": 11, "tags": ["bench", f"t{number % 13}"],
            "custom_fields": [{"id": 360001, "value": f"v{number % 5}"}],
            "created_at": START.isoformat(), "updated_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def timed(label: str, run, tickets: int) -> None:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:7.2f} s  {tickets / seconds:8.0f} tickets/s  pages {result.pages:>3}  "
          f"{dict(result.outcomes)}", flush=True)
    assert result.error is None, result.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake API's request log
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-reconcile-") as work:
        pg = PostgresServer(Path(work) / "postgres", durable=True).start()
        api = FakeVendorAPI()
        try:
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            url = pg.url("bench")
            migrate(url)
            env = {"APP_ENV": "production", "DATABASE_URL": url, "ZENDESK_API_URL": api.url,
                   "ZENDESK_API_EMAIL": "agent@example.com", "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
                   "ZENDESK_API_ACCOUNT": "42", "RECONCILE_REQUESTS_PER_MINUTE": "6000"}
            settings, options = load_settings(env), ReconcileSettings.from_env(env)
            storage = Storage(settings)
            [reconciler] = reconcilers(settings, options, storage)
            n = args.tickets
            api.zendesk = [ticket(i, START + timedelta(seconds=i), "First version") for i in range(1, n + 1)]
            print(f"PostgreSQL {pg.bindir}, durable; fake Zendesk export over HTTP; {n} tickets, pages of 1000")
            timed("backfill (all repaired)", lambda: reconciler.run("backfill", since=START), n)
            later = START + timedelta(days=1)
            for i, item in enumerate(api.zendesk):
                if i % 10 == 0:
                    api.zendesk[i] = ticket(item["id"], later + timedelta(seconds=i), "Changed at the vendor")
            timed("pass after 10% changed (rest unchanged)",
                  lambda: reconciler.run("backfill", since=START, restart=True), n)
            timed("pass with nothing changed", lambda: reconciler.run("backfill", since=START, restart=True), n)
            with psycopg.connect(url) as conn:
                events = conn.execute("SELECT count(*) FROM events WHERE event_type = 'reconciliation'").fetchone()[0]
            print(f"  reconciliation events stored: {events} (expected {n + (n + 9) // 10}: repairs only)")
        finally:
            api.close()
            pg.stop()


if __name__ == "__main__":
    main()

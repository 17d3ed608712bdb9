"""`python bench/console_index_cost.py [--calls N]`: what the console's indexes (migration
12) cost the webhook path, per `ingest_event()` call.

Four databases in one throwaway PostgreSQL (fsync off: the indexes' CPU, not the disk):
without the console's indexes, with all of them, without the type and outcome ones, and
without the GIN payload index. Each create (a new ticket and its event, with a
Freshdesk-like payload of about 1.2 KB) goes to all four in turn, the order turning every
call, and the median per call is printed. Nothing is asserted (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import psycopg
from psycopg.types.json import Jsonb

from devserver import PostgresServer
from ingestion.storage.migrate import migrate

CALL = ("SELECT * FROM ingest_event(%s, '', %s, %s, %s, NULL, 'ticket.snapshot', NULL, NULL, NULL, NULL, NULL, "
        "%s::jsonb, NULL)")
FIELDS = Jsonb({"subject": "The printer is on fire", "status": "open", "priority": "normal",
                "tags": ["bench", "printer"], "vendor_updated_at": "2025-02-03T10:15:00Z"})
CONSOLE_INDEXES = ("events_newest", "events_type_newest", "events_outcome_newest", "events_payload",
                   "tickets_external_id", "tickets_requester_email")
#: Database -> the console indexes dropped from it.
CONFIGURATIONS = {
    "without": CONSOLE_INDEXES,
    "all": (),
    "no_type_outcome": ("events_type_newest", "events_outcome_newest"),
    "no_gin": ("events_payload",),
}


def payload(n: int) -> str:
    """A Freshdesk automation body as `make bench` sends them, about 1.2 KB."""
    return json.dumps({"freshdesk_webhook": {
        "ticket_id": n, "ticket_subject": "The printer is on fire",
        "ticket_description": "<p>" + "The printer is on fire, again. " * 8 + "</p>",
        "ticket_status": "Open", "ticket_priority": "Medium", "ticket_source": "Email", "ticket_type": "Incident",
        "ticket_tags": "bench,printer", "ticket_requester_name": "Ana Perez", "ticket_requester_email":
        f"ana{n}@example.com", "ticket_group_name": "Support", "ticket_agent_name": "Bo",
        "ticket_agent_email": "bo@example.com", "ticket_created_at": "2025-02-03T10:15:00Z",
        "ticket_updated_at": "2025-02-03T10:15:00Z", "ticket_cf_region": "EU", "ticket_cf_plan": "gold",
        "ticket_portal_name": "Acme", "ticket_url": f"https://acme.freshdesk.com/helpdesk/tickets/{n}"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-indexes-") as work:
        pg = PostgresServer(Path(work) / "pg", durable=False).start()
        try:
            connections = {}
            for name, dropped in CONFIGURATIONS.items():
                url = pg.create_database(f"bench_{name}")
                migrate(url)
                connections[name] = psycopg.connect(url, autocommit=True)
                for index in dropped:
                    connections[name].execute(f"DROP INDEX {index}")  # fixed names above
            times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
            for n in range(args.calls):
                body = payload(n)
                for name in (list(CONFIGURATIONS) if n % 2 else list(reversed(CONFIGURATIONS))):
                    started = time.perf_counter()
                    connections[name].execute(CALL, ("freshdesk", f"t{n}", FIELDS, f"id:{n}", body))
                    times[name].append((time.perf_counter() - started) * 1e6)
            for name, values in times.items():
                values.sort()
                print(f"{name:<16} µs per create: median {statistics.median(values):5.0f}   "
                      f"p25 {values[len(values) // 4]:5.0f}   p75 {values[3 * len(values) // 4]:5.0f}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

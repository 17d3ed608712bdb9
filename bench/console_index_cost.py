"""`python bench/console_index_cost.py [calls]`: what the console's indexes (migration 12)
cost the webhook path, per `ingest_event()` call.

Four databases in one throwaway PostgreSQL (fsync off: the indexes' CPU, not the disk):
without the console's indexes, with all of them, without the type and outcome ones, and
without the GIN payload index. Each create (a new ticket and its event, with a
Freshdesk-like payload of about 1.2 KB) goes to all four in turn, the order turning every
call, and the median per call is printed. Nothing is asserted (docs/performance.md).
"""
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

CALL = ("SELECT * FROM ingest_event(%s, '', %s, %s, %s, NULL, 'ticket.snapshot', NULL, NULL, NULL, NULL, NULL, %s::jsonb, NULL)")
fields = Jsonb({"subject": "The printer is on fire", "status": "open", "priority": "normal", "tags": ["bench", "printer"], "vendor_updated_at": "2025-02-03T10:15:00Z"})
def payload(n):
    return json.dumps({"freshdesk_webhook": {"ticket_id": n, "ticket_subject": "The printer is on fire", "ticket_description": "<p>The printer is on fire, again. " * 8 + "</p>",
        "ticket_status": "Open", "ticket_priority": "Medium", "ticket_source": "Email", "ticket_type": "Incident", "ticket_tags": "bench,printer",
        "ticket_requester_name": "Ana Perez", "ticket_requester_email": f"ana{n}@example.com", "ticket_group_name": "Support", "ticket_agent_name": "Bo",
        "ticket_agent_email": "bo@example.com", "ticket_created_at": "2025-02-03T10:15:00Z", "ticket_updated_at": "2025-02-03T10:15:00Z",
        "ticket_cf_region": "EU", "ticket_cf_plan": "gold", "ticket_portal_name": "Acme", "ticket_url": f"https://acme.freshdesk.com/helpdesk/tickets/{n}"}})
CONFIGS = {
 "none": ["events_newest","events_type_newest","events_outcome_newest","events_payload","tickets_external_id","tickets_requester_email"],
 "all": [],
 "no_type_outcome": ["events_type_newest","events_outcome_newest"],
 "no_gin": ["events_payload"],
}
DDL = {
 "events_newest": "CREATE INDEX events_newest ON events (received_at, id)",
 "events_type_newest": "CREATE INDEX events_type_newest ON events (event_type, received_at, id)",
 "events_outcome_newest": "CREATE INDEX events_outcome_newest ON events (outcome, received_at, id)",
 "events_payload": "CREATE INDEX events_payload ON events USING gin (payload jsonb_path_ops)",
 "tickets_external_id": "CREATE INDEX tickets_external_id ON tickets (external_id)",
 "tickets_requester_email": "CREATE INDEX tickets_requester_email ON tickets (lower(requester_email))",
}
with tempfile.TemporaryDirectory() as work:
    pg = PostgresServer(Path(work)/"pg", durable=False).start()
    try:
        with psycopg.connect(pg.url(), autocommit=True) as c:
            for name in CONFIGS: c.execute(f"CREATE DATABASE b_{name}")
        conns = {}
        for name, drop in CONFIGS.items():
            migrate(pg.url(f"b_{name}"))
            conns[name] = psycopg.connect(pg.url(f"b_{name}"), autocommit=True)
            for idx in drop: conns[name].execute(f"DROP INDEX IF EXISTS {idx}")
        times = {n: [] for n in CONFIGS}
        n = 0
        for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4000):
            order = list(CONFIGS) if i % 2 else list(reversed(CONFIGS))
            n += 1
            p = payload(n)
            for name in order:
                t = time.perf_counter()
                conns[name].execute(CALL, ("freshdesk", f"t{n}", fields, f"id:{n}", p))
                times[name].append((time.perf_counter()-t)*1e6)
        for name, v in times.items():
            v.sort(); print(f"{name:<16} median {statistics.median(v):6.0f} µs  p25 {v[len(v)//4]:6.0f}  p75 {v[3*len(v)//4]:6.0f}")
    finally:
        pg.stop()

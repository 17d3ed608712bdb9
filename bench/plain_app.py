"""The plain reference: the same features as the service, written the way each library's
documentation shows, in an afternoon. `make bench` compares the service against it.

- Basic auth checked with hmac.compare_digest (what Freshdesk rules send);
- flask-limiter's `@limiter.limit` decorator, counters in Redis (its documented setup);
- prometheus-flask-exporter's GunicornPrometheusMetrics with its default request
  metrics, multiprocess, served by its own HTTP server (plain.gunicorn.conf.py);
- python-json-logger, one JSON line per request;
- a psycopg pool: in one transaction, the ticket with INSERT ... ON CONFLICT DO UPDATE
  and a delivery row.
No event history, no idempotency by delivery, no circuit breaker: it does less than the
service. Not part of the service.
"""

import hmac
import logging
import os
import sys

from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pythonjsonlogger.json import JsonFormatter

USER, PASSWORD = os.environ["PLAIN_BASIC_AUTH"].split(":", 1)

pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=1, max_size=2, open=False)
app = Flask(__name__)
limiter = Limiter(get_remote_address, app=app, storage_uri=os.environ["REDIS_URL"])
metrics = GunicornPrometheusMetrics(app)

handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
log = logging.getLogger("plain")
log.addHandler(handler)
log.setLevel(logging.INFO)

UPSERT = """
INSERT INTO plain_tickets (source, external_id, subject, status, payload)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (source, external_id) DO UPDATE
   SET subject = EXCLUDED.subject, status = EXCLUDED.status, payload = EXCLUDED.payload, updated_at = now()
RETURNING id, (xmax = 0) AS created
"""
DELIVERY = "INSERT INTO plain_deliveries (ticket_id, source, external_id, outcome) VALUES (%s, %s, %s, %s)"


@app.post("/api/v1/ingest/webhook/<vendor>")
@limiter.limit(os.environ.get("PLAIN_LIMIT", "10 per 6 second"))
def ingest(vendor):
    auth = request.authorization
    if not auth or not (hmac.compare_digest(auth.username or "", USER) & hmac.compare_digest(auth.password or "",
                                                                                              PASSWORD)):
        return jsonify(error="Invalid credentials"), 401
    payload = request.get_json(force=True)
    ticket = payload.get("ticket", payload)
    external_id = str(ticket["id"])
    with pool.connection() as conn, conn.transaction():
        ticket_id, created = conn.execute(UPSERT, (vendor, external_id, ticket.get("subject"), ticket.get("status"),
                                                   Jsonb(payload))).fetchone()
        outcome = "created" if created else "updated"
        conn.execute(DELIVERY, (ticket_id, vendor, external_id, outcome))
    log.info("webhook", extra={"vendor": vendor, "external_id": external_id, "outcome": outcome,
                               "path": request.path, "status": 201 if created else 200})
    return jsonify(status=outcome, ticket_id=str(ticket_id)), 201 if created else 200


def post_fork(server, worker):
    pool.open()

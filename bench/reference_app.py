"""The reference: what a user would write in an afternoon to receive ticket webhooks.

Flask + a psycopg pool, one INSERT ... ON CONFLICT per request, nothing else: no
authentication, no rate limit, no metrics, no logging, no validation beyond "it is
JSON". `make bench` runs it under the same gunicorn settings as the service and
compares the two side by side. Not part of the service.
"""

import os

from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=1, max_size=2, open=False)
app = Flask(__name__)

UPSERT = """
INSERT INTO reference_tickets (source, external_id, subject, payload)
VALUES (%s, %s, %s, %s)
ON CONFLICT (source, external_id) DO UPDATE SET subject = EXCLUDED.subject, payload = EXCLUDED.payload
RETURNING id
"""


@app.post("/api/v1/ingest/webhook/<vendor>")
def ingest(vendor):
    payload = request.get_json(force=True)
    ticket = payload.get("ticket", payload)
    with pool.connection() as conn:
        row = conn.execute(UPSERT, (vendor, str(ticket["id"]), ticket.get("subject"), Jsonb(payload))).fetchone()
    return jsonify(status="ok", ticket_id=str(row[0])), 201


def post_fork(server, worker):
    pool.open()

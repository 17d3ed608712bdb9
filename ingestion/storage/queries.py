"""Every SQL statement the service runs, named, each with why it is safe.

Parameters only, never string building. The ticket logic itself lives in the
`ingest_ticket()` function of schema.sql, so the hot path is one statement.
"""

#: Store one ticket delivery; returns (ticket_id, outcome, revision). One round trip and,
#: on an autocommit connection, one transaction. Race safety: see ingest_ticket() in schema.sql.
INGEST_TICKET = """
SELECT out_ticket_id, out_outcome, out_revision
  FROM ingest_ticket(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
"""

#: Audit an authentic delivery that is not about a ticket. Plain insert: nothing to race.
RECORD_IGNORED = """
INSERT INTO deliveries (source, outcome, vendor_delivery_id, request_id)
VALUES (%s, 'ignored', %s, %s)
"""

#: Health check: proves a connection can be borrowed and the server answers.
PING = "SELECT 1"

#: Serializes concurrent schema applications (several instances starting at once).
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ingestion.schema'))"

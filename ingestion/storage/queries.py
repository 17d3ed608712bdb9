"""Every SQL statement the service runs, named, each with why it is safe.

Parameters only, never string building. The ticket logic itself lives in the
`ingest_ticket()` function of schema.sql, so the hot path is one statement.
"""

#: Store one ticket delivery; returns (ticket_id, outcome, revision, content hash now
#: stored). One round trip and,
#: on an autocommit connection, one transaction. Race safety: see ingest_ticket() in schema.sql.
INGEST_TICKET = """
SELECT out_ticket_id, out_outcome, out_revision, out_content_hash
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

#: Only one relay publishes at a time (across processes and hosts), which keeps the
#: stream in commit order per ticket. Transaction-scoped: released at commit/rollback.
RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('ingestion.relay'))"

#: The oldest unpublished events, in id order. Per ticket, ids follow commit order: a
#: delivery's row is inserted while it holds the ticket's row lock, so a later delivery
#: of the same ticket can only get its id after the earlier one committed.
PENDING_EVENTS = """
SELECT d.id, d.ticket_id, d.source, d.external_id, d.outcome, d.revision, d.received_at
  FROM deliveries d
 WHERE d.published_at IS NULL AND d.outcome IN ('created', 'updated')
 ORDER BY d.id
 LIMIT %s
"""

#: Mark events published after the stream accepted them (same transaction as the read).
MARK_PUBLISHED = "UPDATE deliveries SET published_at = now() WHERE id = ANY(%s)"

#: Events not yet published: the outbox backlog. Capped, so a huge backlog (Redis away
#: for hours) cannot make every scrape count millions of rows.
OUTBOX_BACKLOG = """
SELECT count(*) FROM (
    SELECT 1 FROM deliveries WHERE published_at IS NULL AND outcome IN ('created', 'updated') LIMIT 100000
) AS pending
"""

#: Retention: drop old delivery rows, in batches, but never an event still to publish.
PRUNE_DELIVERIES = """
DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries
     WHERE received_at < now() - make_interval(days => %s)
       AND (published_at IS NOT NULL OR outcome NOT IN ('created', 'updated'))
     LIMIT %s)
"""

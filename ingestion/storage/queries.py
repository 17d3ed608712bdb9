"""Every SQL statement the service runs, named, each with why it is safe.

Parameters only (`%(name)s`), never string building. The ticket logic itself lives in the
`ingest_event()` function (migrations/0002_ticket_history.sql; deletions added in
0006_vendor_deletions.sql), so the hot path is one statement.
"""

#: Store one delivery about a ticket: returns (ticket_id, event_id, outcome, revision,
#: seconds the delivery's identity still holds). One round trip and, on an autocommit
#: connection, one transaction. Race safety: see ingest_event().
INGEST_EVENT = """
SELECT out_ticket_id, out_event_id, out_outcome, out_revision,
       CASE WHEN %(horizon)s::interval IS NULL OR out_outcome <> 'already_exists' THEN NULL
            ELSE greatest(0, extract(epoch FROM (SELECT e.received_at FROM events e WHERE e.id = out_event_id)
                                               + %(horizon)s::interval - now()))::integer END
  FROM ingest_event(%(vendor)s, %(account)s, %(external_id)s, %(fields)s, %(dedup_key)s, %(horizon)s::interval,
                    %(event_type)s, %(vendor_event_id)s, %(comment_body)s, %(comment_author)s,
                    %(comment_public)s, %(changes)s, %(payload)s::jsonb, %(request_id)s)
"""

#: Audit an authentic delivery that is not about a ticket. Plain insert: nothing to race.
RECORD_IGNORED = """
INSERT INTO deliveries (vendor, account, outcome, request_id)
VALUES (%(vendor)s, %(account)s, 'ignored', %(request_id)s)
"""

#: Only one relay publishes at a time (across processes and hosts), which keeps the
#: stream in commit order per ticket. Transaction-scoped: released at commit/rollback.
RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('ingestion.relay'))"

#: The oldest unpublished events, in id order. Per ticket, ids follow commit order: an
#: event is inserted while its delivery holds the ticket's row lock, so a later event of
#: the same ticket can only get its id after the earlier one committed.
PENDING_EVENTS = """
SELECT e.id, e.ticket_id, t.vendor, t.account, t.external_id, e.outcome, e.revision, e.event_type, e.received_at,
       CASE WHEN e.outcome = 'deleted' THEN CASE WHEN t.purged_at IS NULL THEN 'soft' ELSE 'permanent' END
            WHEN e.changes->'deleted'->>'current' = 'false' THEN 'restored' END
  FROM events e JOIN tickets t ON t.id = e.ticket_id
 WHERE e.published_at IS NULL AND e.outcome <> 'stale'
 ORDER BY e.id
 LIMIT %(limit)s
"""

#: Mark events published after the stream accepted them (same transaction as the read).
MARK_PUBLISHED = "UPDATE events SET published_at = now() WHERE id = ANY(%(ids)s)"

#: Events not yet published: the outbox backlog. Capped, so a huge backlog (Redis away
#: for hours) cannot make every scrape count millions of rows.
OUTBOX_BACKLOG = """
SELECT count(*) FROM (
    SELECT 1 FROM events WHERE published_at IS NULL AND outcome <> 'stale' LIMIT 100000
) AS pending
"""

#: Retention: drop old delivery rows (redeliveries, ignored events), in batches.
PRUNE_DELIVERIES = """
DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries WHERE received_at < now() - make_interval(days => %(days)s) LIMIT %(batch)s)
"""

#: Retention of events' personal data: the raw payload, the comment and the changes of
#: events older than EVENT_RETENTION_DAYS are emptied, in batches; the event rows stay
#: (ids, types, times, outcomes, revisions: the history's skeleton and the audit).
PRUNE_EVENT_PAYLOADS = """
UPDATE events SET payload = NULL, comment_body = NULL, comment_author = NULL, comment_public = NULL, changes = NULL
 WHERE id IN (
    SELECT id FROM events
     WHERE received_at < now() - make_interval(days => %(days)s)
       AND (payload IS NOT NULL OR comment_body IS NOT NULL OR comment_author IS NOT NULL OR changes IS NOT NULL)
     LIMIT %(batch)s)
"""

#: The read API: one ticket by its vendor key. Custom fields as JSON text: the answer
#: carries them as stored (web/stored_json.py).
TICKET = """
SELECT id, vendor, account, external_id, subject, description, status, priority, type,
       requester_name, requester_email, requester_id, assignee_name, assignee_email, assignee_id,
       group_name, organization, tags, custom_fields::text AS custom_fields, vendor_created_at, vendor_updated_at,
       deleted_at, purged_at, revision, created_at, updated_at
  FROM tickets WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
"""

#: The read API: a ticket's events after a cursor, oldest first (by id: commit order).
#: Changes and payload as JSON text; read a few rows at a time (storage: byte-bounded pages).
TICKET_EVENTS = """
SELECT id, event_type, vendor_event_id, received_at, outcome, comment_body, comment_author, comment_public,
       changes::text AS changes, payload::text AS payload
  FROM events WHERE ticket_id = %(ticket_id)s AND id > %(after)s
 ORDER BY id LIMIT %(limit)s
"""


#: Quarantine one authentic delivery the normalizer could not read, and evict what falls
#: past the bound. Ids only grow, so `id <= new - max` leaves at most `max` entries (fewer
#: when some were replayed): an index range, whatever the table's size.
QUARANTINE = """
WITH added AS (
    INSERT INTO quarantine (vendor, account, status, reason, error, body, headers, auth_method, request_id)
    VALUES (%(vendor)s, %(account)s, %(status)s, %(reason)s, %(error)s, %(body)s, %(headers)s,
            %(auth_method)s, %(request_id)s)
    RETURNING id
), evicted AS (
    DELETE FROM quarantine WHERE id <= (SELECT id FROM added) - %(max_entries)s RETURNING 1
)
SELECT (SELECT id FROM added), (SELECT count(*) FROM evicted)
"""

#: The read API: quarantined deliveries, oldest first, after a cursor (an id).
QUARANTINE_LIST = """
SELECT id, vendor, account, received_at, status, reason, error, body, headers, auth_method, request_id,
       attempts, last_attempt
  FROM quarantine
 WHERE id > %(after)s AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
 ORDER BY id
 LIMIT %(limit)s
"""

QUARANTINE_ONE = """
SELECT id, vendor, account, received_at, status, reason, error, body, headers, auth_method, request_id,
       attempts, last_attempt
  FROM quarantine WHERE id = %(id)s
"""

#: For replay: entries to try, oldest first, filtered.
QUARANTINE_SELECT = """
SELECT id, vendor, account, received_at, body, headers, request_id
  FROM quarantine
 WHERE id > %(after)s
   AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
   AND (%(id)s::bigint IS NULL OR id = %(id)s)
   AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
   AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s)
 ORDER BY id
 LIMIT %(limit)s
"""

QUARANTINE_RELEASE = "DELETE FROM quarantine WHERE id = %(id)s"

QUARANTINE_FAILED_AGAIN = """
UPDATE quarantine SET error = %(error)s, reason = %(reason)s, status = %(status)s,
                      attempts = attempts + 1, last_attempt = now()
 WHERE id = %(id)s
"""

#: The gauges: entries waiting, and the age of the oldest (the alert's input).
QUARANTINE_STATS = """
SELECT count(*), extract(epoch FROM now() - min(received_at)) FROM quarantine
"""

#: Retention: entries older than QUARANTINE_RETENTION_DAYS, in batches.
PRUNE_QUARANTINE = """
DELETE FROM quarantine WHERE id IN (
    SELECT id FROM quarantine WHERE received_at < now() - make_interval(days => %(days)s) LIMIT %(batch)s)
"""


#: Rebuild: the tickets of a scope after a cursor, in id order.
REBUILD_TICKETS = """
SELECT id FROM tickets
 WHERE id > %(after)s AND purged_at IS NULL
   AND (%(vendor)s::text IS NULL OR vendor = %(vendor)s)
   AND (%(external_id)s::text IS NULL OR (account = %(account)s AND external_id = %(external_id)s))
 ORDER BY id
 LIMIT %(limit)s
"""

#: The ticket, locked for the rebuild's transaction: a live delivery of it waits (its
#: ingest_event() locks the same row) and then merges onto the rebuilt state.
REBUILD_LOCK = "SELECT * FROM tickets WHERE id = %(id)s FOR UPDATE"

#: The ticket's events, without the rebuild's own records (they carry no payload).
REBUILD_EVENTS = """
SELECT id, event_type, payload, received_at FROM events
 WHERE ticket_id = %(id)s AND dedup_key NOT LIKE 'rebuild:%%'
 ORDER BY id
"""

REBUILD_UPDATE = """
UPDATE tickets SET
    subject = %(subject)s, description = %(description)s, status = %(status)s, priority = %(priority)s,
    type = %(type)s, requester_name = %(requester_name)s, requester_email = %(requester_email)s,
    requester_id = %(requester_id)s, assignee_name = %(assignee_name)s, assignee_email = %(assignee_email)s,
    assignee_id = %(assignee_id)s, group_name = %(group)s, organization = %(organization)s, tags = %(tags)s,
    custom_fields = %(custom_fields)s, vendor_created_at = %(vendor_created_at)s,
    vendor_updated_at = %(vendor_updated_at)s, revision = revision + 1, updated_at = now()
 WHERE id = %(id)s
RETURNING revision
"""

#: The rebuild's own event: what changed, published like any other (outcome updated).
REBUILD_EVENT = """
INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, changes, request_id)
VALUES (%(id)s, 'updated', %(revision)s, 'ticket.rebuilt', 'rebuild:' || %(revision)s, %(changes)s, 'rebuild')
"""

REBUILD_PROGRESS = "SELECT last_ticket FROM rebuild_progress WHERE scope = %(scope)s"
REBUILD_ADVANCE = """
INSERT INTO rebuild_progress (scope, last_ticket) VALUES (%(scope)s, %(last)s)
ON CONFLICT (scope) DO UPDATE SET last_ticket = excluded.last_ticket, updated_at = now()
"""
REBUILD_DONE = "DELETE FROM rebuild_progress WHERE scope = %(scope)s"


#: Redaction (ingestion/redact.py). The names stored next to an address.
REDACT_NAMES = """
SELECT CASE WHEN lower(requester_email) = lower(%(email)s) THEN requester_name END,
       CASE WHEN lower(assignee_email) = lower(%(email)s) THEN assignee_name END
  FROM tickets WHERE lower(requester_email) = lower(%(email)s) OR lower(assignee_email) = lower(%(email)s)
"""

#: Tickets where the address is a person's, or any of whose events mention it.
REDACT_TICKETS = """
SELECT id FROM tickets WHERE lower(requester_email) = lower(%(email)s) OR lower(assignee_email) = lower(%(email)s)
UNION
SELECT ticket_id FROM events
 WHERE payload::text ILIKE %(like)s OR comment_body ILIKE %(like)s OR comment_author ILIKE %(like)s
    OR changes::text ILIKE %(like)s
"""

REDACT_LOCK = "SELECT * FROM tickets WHERE id = %(id)s FOR UPDATE"

REDACT_EVENTS = "SELECT id, payload, comment_body, comment_author, changes FROM events WHERE ticket_id = %(id)s"

REDACT_EVENT = """
UPDATE events SET payload = %(payload)s, comment_body = %(comment_body)s, comment_author = %(comment_author)s,
                  changes = %(changes)s
 WHERE id = %(id)s
"""

REDACT_QUARANTINE = "DELETE FROM quarantine WHERE encode(body, 'escape') ILIKE %(like)s"

REDACT_TICKET_LOCK = """
SELECT id FROM tickets WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
   FOR UPDATE
"""

#: The same forgetting as a vendor's permanent delete (migrations/0006_vendor_deletions.sql).
REDACT_TICKET = "SELECT tickets_changed, events_changed FROM forget_ticket(%(id)s)"

REDACTION_RECORD = "INSERT INTO redactions (kind, changed) VALUES (%(kind)s, %(changed)s)"


#: The reconciler (ingestion/reconcile/). The stored version of a ticket before a
#: reconciliation snapshot is merged: whether the snapshot repairs a version the webhooks
#: left behind, or only adds fields they never carried.
RECONCILE_STORED_VERSION = """
SELECT vendor_updated_at FROM tickets
 WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
"""

#: The accounts a vendor's tickets are stored under (at most 20), by a loose index scan of
#: tickets_external_key (vendor, account, external_id): one index probe per account,
#: whatever the number of tickets.
RECONCILE_ACCOUNTS = """
WITH RECURSIVE found AS (
    SELECT min(account) AS account FROM tickets WHERE vendor = %(vendor)s
    UNION ALL
    SELECT (SELECT min(t.account) FROM tickets t WHERE t.vendor = %(vendor)s AND t.account > found.account)
      FROM found WHERE found.account IS NOT NULL
)
SELECT account FROM found WHERE account IS NOT NULL LIMIT 20
"""

#: One reconciler per vendor, account and mode, across processes and hosts. Session-level:
#: held on the reconciler's own connection for its whole run.
RECONCILE_LOCK = "SELECT pg_try_advisory_lock(hashtext('ingestion.reconcile/' || %(key)s))"
RECONCILE_UNLOCK = "SELECT pg_advisory_unlock(hashtext('ingestion.reconcile/' || %(key)s))"

RECONCILE_CURSOR = """
SELECT since, cursor, position, caught_up_at FROM reconcile_cursors
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

#: A run from `since`, from the beginning (a first pass, a new or restarted backfill).
RECONCILE_BEGIN = """
INSERT INTO reconcile_cursors (vendor, account, mode, since) VALUES (%(vendor)s, %(account)s, %(mode)s, %(since)s)
ON CONFLICT (vendor, account, mode) DO UPDATE
   SET since = excluded.since, cursor = NULL, position = NULL, caught_up_at = NULL, last_error = NULL,
       updated_at = now()
"""

#: After each page: where the next request starts. A crash loses at most one page,
#: which is read again (its versions are stored already: nothing is duplicated).
RECONCILE_ADVANCE = """
UPDATE reconcile_cursors
   SET cursor = %(cursor)s, position = %(position)s, last_error = NULL, updated_at = now(),
       caught_up_at = CASE WHEN %(done)s THEN now() ELSE caught_up_at END
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

RECONCILE_FAILED = """
UPDATE reconcile_cursors SET last_error = %(error)s, updated_at = now()
 WHERE vendor = %(vendor)s AND account = %(account)s AND mode = %(mode)s
"""

#: When each reconciled account last caught up (the lag gauge, after a restart).
RECONCILE_CAUGHT_UP = """
SELECT vendor, account, caught_up_at FROM reconcile_cursors WHERE mode = 'reconcile' AND caught_up_at IS NOT NULL
"""

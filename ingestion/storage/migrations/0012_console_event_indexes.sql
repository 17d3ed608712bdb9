-- migrate: outside a transaction
-- Migration 12: the indexes the console's events page (issue 22) needs to answer in
-- milliseconds on 10,000,000 events: the list is newest first (received_at, id), a page
-- at a time after a cursor, and each filter either narrows an index scan in that order
-- or reaches the events through their tickets (storage/console_events.py).
--
-- Built CONCURRENTLY, outside a transaction (migrate.py): no lock that would hold a
-- webhook's insert for the minutes a build takes on a large table. IF NOT EXISTS: a run
-- that stopped half-way is finished by running migrate again.
--
-- The list's order, and a time range within it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_newest ON events (received_at, id);
-- An event type, newest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_type_newest ON events (event_type, received_at, id);
-- An outcome, newest first (whichever outcome is rare in a deployment: a stale event, a
-- deletion, or only the creations of a long history's tickets).
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_outcome_newest ON events (outcome, received_at, id);
-- The payload search by JSON containment (`payload @> '{"status": 5}'`). jsonb_path_ops:
-- only @>, a hash per path, smaller and faster than the default operator class.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_payload ON events USING gin (payload jsonb_path_ops);
-- A ticket by its vendor id alone (any vendor, any account), and by its requester's
-- address as written in any case (redaction looks tickets up by it the same way).
CREATE INDEX CONCURRENTLY IF NOT EXISTS tickets_external_id ON tickets (external_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS tickets_requester_email ON tickets (lower(requester_email));

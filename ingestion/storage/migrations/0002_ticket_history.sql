-- Migration 2: a ticket's current state plus the full history of its events.
--
-- tickets: keyed by (vendor, account, external_id); more normalized fields; no raw
--   payload (each event keeps its own); ids time-ordered from now on.
-- events: one row per distinct authentic delivery about a ticket, with its raw payload;
--   also the outbox of the event stream (published_at).
-- deliveries: the audit rows of requests that brought no new event (redeliveries,
--   ignored events). A request that brought one is audited by its event row.
--
-- Existing data is kept: every created/updated delivery becomes an event (the latest
-- of each ticket carries the ticket's raw payload; older ones had none kept), pending
-- ones stay pending, and a ticket whose deliveries were pruned gets one snapshot event.

-- Time-ordered UUIDs (version 7: 48 bits of milliseconds, then random), so new rows land
-- on the right edge of the primary key index instead of on random pages.
CREATE FUNCTION ingestion_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

DROP FUNCTION IF EXISTS ingest_ticket(text, text, text, text, text, text, text, text, text, text[],
                                      timestamptz, timestamptz, jsonb, text, text);

-- tickets ------------------------------------------------------------------------
ALTER TABLE tickets RENAME COLUMN external_source TO vendor;
-- Vendors are validated by the application, so a new vendor needs no migration.
ALTER TABLE tickets DROP CONSTRAINT IF EXISTS tickets_external_source_check;
ALTER TABLE tickets ALTER COLUMN id SET DEFAULT ingestion_uuid_v7();
ALTER TABLE tickets
    ADD COLUMN account         text  NOT NULL DEFAULT '',
    ADD COLUMN type            text,
    ADD COLUMN requester_id    text,
    ADD COLUMN assignee_name   text,
    ADD COLUMN assignee_email  text,
    ADD COLUMN assignee_id     text,
    ADD COLUMN group_name      text,
    ADD COLUMN organization    text,
    ADD COLUMN custom_fields   jsonb NOT NULL DEFAULT '{}';
ALTER TABLE tickets DROP CONSTRAINT tickets_external_key;
ALTER TABLE tickets ADD CONSTRAINT tickets_external_key UNIQUE (vendor, account, external_id);

-- events -------------------------------------------------------------------------
CREATE TABLE events (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id         uuid        NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    -- created | updated | recorded (new event, ticket fields unchanged) | stale (older
    -- than the ticket: kept, ticket untouched)
    outcome           text        NOT NULL,
    -- the ticket's revision once this event was applied
    revision          integer     NOT NULL,
    event_type        text        NOT NULL,
    vendor_event_id   text,
    -- What makes a redelivery the same delivery: 'id:' + the vendor's event or delivery
    -- id, or 'body:' + a fingerprint of the body (same within the retry horizon only;
    -- an older holder of the key gets ':' + its id appended when a new event takes it).
    dedup_key         text        NOT NULL,
    -- the event's own vendor timestamp, which orders it against the ticket
    vendor_updated_at timestamptz,
    comment_body      text,
    comment_author    text,
    comment_public    boolean,
    changes           jsonb,
    -- NULL only for events migrated from the first release, which kept no payload
    payload           jsonb,
    request_id        text,
    -- the outbox: NULL until the relay appended the event to the stream
    published_at      timestamptz,
    CONSTRAINT events_outcome_check CHECK (outcome IN ('created', 'updated', 'recorded', 'stale')),
    -- A retry is never stored twice, across workers and instances. Leading with the
    -- ticket keeps each ticket's keys together (and new tickets' ids are time-ordered).
    CONSTRAINT events_dedup_key UNIQUE (ticket_id, dedup_key)
);
-- The relay's work queue: small, because published rows leave it. Stale events are
-- history only and never published.
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL AND outcome <> 'stale';
-- Retention scans by time; BRIN costs almost nothing on the insert path.
CREATE INDEX events_received_at ON events USING brin (received_at);

-- Existing history: each created/updated delivery is an event. A vendor delivery id seen
-- before keeps deduplicating redeliveries after the upgrade.
INSERT INTO events (ticket_id, received_at, outcome, revision, event_type, vendor_event_id, dedup_key,
                    vendor_updated_at, payload, request_id, published_at)
SELECT d.ticket_id, d.received_at, d.outcome, coalesce(d.revision, 1), 'ticket.snapshot', d.vendor_delivery_id,
       CASE WHEN d.vendor_delivery_id IS NOT NULL
                 AND row_number() OVER (PARTITION BY d.ticket_id, d.vendor_delivery_id ORDER BY d.id) = 1
            THEN 'id:' || d.vendor_delivery_id ELSE 'v1:' || d.id END,
       CASE WHEN d.id = last.id THEN t.vendor_updated_at END,
       CASE WHEN d.id = last.id THEN t.raw_payload END,
       d.request_id, d.published_at
  FROM deliveries d
  JOIN tickets t ON t.id = d.ticket_id
  JOIN LATERAL (SELECT max(l.id) AS id FROM deliveries l
                 WHERE l.ticket_id = d.ticket_id AND l.outcome IN ('created', 'updated')) last ON true
 WHERE d.outcome IN ('created', 'updated')
 ORDER BY d.id;

-- Tickets whose deliveries were pruned: their last payload as one snapshot event.
INSERT INTO events (ticket_id, received_at, outcome, revision, event_type, dedup_key, vendor_updated_at,
                    payload, published_at)
SELECT t.id, t.updated_at, CASE WHEN t.revision > 1 THEN 'updated' ELSE 'created' END, t.revision,
       'ticket.snapshot', 'v1:ticket', t.vendor_updated_at, t.raw_payload, now()
  FROM tickets t
 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.id);

ALTER TABLE tickets DROP COLUMN raw_payload, DROP COLUMN content_hash;

-- deliveries ---------------------------------------------------------------------
DELETE FROM deliveries WHERE outcome IN ('created', 'updated');
DROP INDEX IF EXISTS deliveries_unpublished;
ALTER TABLE deliveries RENAME COLUMN source TO vendor;
ALTER TABLE deliveries RENAME COLUMN vendor_delivery_id TO vendor_event_id;
ALTER TABLE deliveries DROP COLUMN published_at, DROP COLUMN revision;
ALTER TABLE deliveries
    ADD COLUMN account  text NOT NULL DEFAULT '',
    ADD COLUMN event_id bigint;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_outcome_check;
-- ('stale': rows of the first release, which audited stale deliveries here)
ALTER TABLE deliveries ADD CONSTRAINT deliveries_outcome_check CHECK (outcome IN ('already_exists', 'ignored', 'stale'));

-- ingest_event ------------------------------------------------------------------------
-- Store one delivery about a ticket: the whole hot path in one statement, so one round
-- trip and (in autocommit) one transaction covering the ticket, the event and the outbox.
--
-- p_fields holds the normalized fields this delivery carries, and only those: a field
-- absent from it keeps its stored value, a field present sets it, even to null (merge,
-- never wipe). Custom fields merge key by key.
--
-- Race safety: concurrent deliveries of one ticket meet at the unique key. The loser's
-- INSERT ... ON CONFLICT DO NOTHING waits for the winner's transaction; its following
-- SELECT ... FOR NO KEY UPDATE runs with a fresh snapshot (READ COMMITTED, new statement),
-- sees the winner's row and locks it. Deliveries of one ticket are therefore serialized:
-- the duplicate check below sees every event committed before it, exactly one delivery
-- is `created`, and event ids follow commit order per ticket.
CREATE FUNCTION ingest_event(
    p_vendor text, p_account text, p_external_id text, p_fields jsonb,
    p_dedup_key text, p_dedup_horizon interval, p_event_type text, p_vendor_event_id text,
    p_comment_body text, p_comment_author text, p_comment_public boolean, p_changes jsonb,
    p_payload jsonb, p_request_id text,
    OUT out_ticket_id uuid, OUT out_event_id bigint, OUT out_outcome text, OUT out_revision integer)
LANGUAGE plpgsql AS $$
DECLARE
    t tickets%ROWTYPE;
    merged tickets%ROWTYPE;
    earlier record;
    updated_at_given timestamptz := (p_fields->>'vendor_updated_at')::timestamptz;
BEGIN
    LOOP
        INSERT INTO tickets AS x (vendor, account, external_id, subject, description, status, priority, type,
                                  requester_name, requester_email, requester_id, assignee_name, assignee_email,
                                  assignee_id, group_name, organization, tags, custom_fields,
                                  vendor_created_at, vendor_updated_at)
        VALUES (p_vendor, p_account, p_external_id, p_fields->>'subject', p_fields->>'description',
                p_fields->>'status', p_fields->>'priority', p_fields->>'type',
                p_fields->>'requester_name', p_fields->>'requester_email', p_fields->>'requester_id',
                p_fields->>'assignee_name', p_fields->>'assignee_email', p_fields->>'assignee_id',
                p_fields->>'group', p_fields->>'organization',
                coalesce(ARRAY(SELECT jsonb_array_elements_text(p_fields->'tags')), '{}'),
                coalesce(p_fields->'custom_fields', '{}'),
                (p_fields->>'vendor_created_at')::timestamptz, updated_at_given)
        ON CONFLICT (vendor, account, external_id) DO NOTHING
        RETURNING x.id INTO out_ticket_id;
        IF FOUND THEN
            out_outcome := 'created';
            out_revision := 1;
            EXIT;
        END IF;
        SELECT * INTO t FROM tickets x
         WHERE x.vendor = p_vendor AND x.account = p_account AND x.external_id = p_external_id
           FOR NO KEY UPDATE;
        EXIT WHEN FOUND;  -- otherwise the row vanished between the two statements: insert again
    END LOOP;

    IF out_outcome IS NULL THEN
        out_ticket_id := t.id;
        out_revision := t.revision;

        -- The same delivery again? A body fingerprint only counts within the horizon:
        -- past it, the same body is a new event and takes the key over.
        SELECT e.id, e.received_at INTO earlier FROM events e
         WHERE e.ticket_id = t.id AND e.dedup_key = p_dedup_key;
        IF FOUND THEN
            IF p_dedup_horizon IS NULL OR earlier.received_at > now() - p_dedup_horizon THEN
                out_outcome := 'already_exists';
                out_event_id := earlier.id;
                INSERT INTO deliveries (vendor, account, external_id, ticket_id, event_id, outcome,
                                        vendor_event_id, request_id)
                VALUES (p_vendor, p_account, p_external_id, t.id, earlier.id, 'already_exists',
                        p_vendor_event_id, p_request_id);
                RETURN;
            END IF;
            UPDATE events SET dedup_key = dedup_key || ':' || id WHERE id = earlier.id;
        END IF;

        IF updated_at_given < t.vendor_updated_at THEN
            -- An older version arriving late (Freshdesk retries after up to 95 minutes):
            -- kept as history, the ticket untouched. NULL on either side cannot be
            -- ordered and counts as newer.
            out_outcome := 'stale';
        ELSE
            merged := t;
            IF p_fields ? 'subject' THEN merged.subject := p_fields->>'subject'; END IF;
            IF p_fields ? 'description' THEN merged.description := p_fields->>'description'; END IF;
            IF p_fields ? 'status' THEN merged.status := p_fields->>'status'; END IF;
            IF p_fields ? 'priority' THEN merged.priority := p_fields->>'priority'; END IF;
            IF p_fields ? 'type' THEN merged.type := p_fields->>'type'; END IF;
            IF p_fields ? 'requester_name' THEN merged.requester_name := p_fields->>'requester_name'; END IF;
            IF p_fields ? 'requester_email' THEN merged.requester_email := p_fields->>'requester_email'; END IF;
            IF p_fields ? 'requester_id' THEN merged.requester_id := p_fields->>'requester_id'; END IF;
            IF p_fields ? 'assignee_name' THEN merged.assignee_name := p_fields->>'assignee_name'; END IF;
            IF p_fields ? 'assignee_email' THEN merged.assignee_email := p_fields->>'assignee_email'; END IF;
            IF p_fields ? 'assignee_id' THEN merged.assignee_id := p_fields->>'assignee_id'; END IF;
            IF p_fields ? 'group' THEN merged.group_name := p_fields->>'group'; END IF;
            IF p_fields ? 'organization' THEN merged.organization := p_fields->>'organization'; END IF;
            IF p_fields ? 'tags' THEN
                merged.tags := ARRAY(SELECT jsonb_array_elements_text(p_fields->'tags'));
            END IF;
            IF p_fields ? 'custom_fields' THEN
                merged.custom_fields := t.custom_fields || (p_fields->'custom_fields');
            END IF;
            IF p_fields ? 'vendor_created_at' THEN
                merged.vendor_created_at := (p_fields->>'vendor_created_at')::timestamptz;
            END IF;
            IF p_fields ? 'vendor_updated_at' THEN merged.vendor_updated_at := updated_at_given; END IF;

            IF merged IS NOT DISTINCT FROM t THEN
                out_outcome := 'recorded';
            ELSE
                UPDATE tickets x SET
                    subject = merged.subject, description = merged.description, status = merged.status,
                    priority = merged.priority, type = merged.type, requester_name = merged.requester_name,
                    requester_email = merged.requester_email, requester_id = merged.requester_id,
                    assignee_name = merged.assignee_name, assignee_email = merged.assignee_email,
                    assignee_id = merged.assignee_id, group_name = merged.group_name,
                    organization = merged.organization, tags = merged.tags, custom_fields = merged.custom_fields,
                    vendor_created_at = merged.vendor_created_at, vendor_updated_at = merged.vendor_updated_at,
                    revision = x.revision + 1, updated_at = now()
                 WHERE x.id = t.id
                RETURNING x.revision INTO out_revision;
                out_outcome := 'updated';
            END IF;
        END IF;
    END IF;

    INSERT INTO events (ticket_id, outcome, revision, event_type, vendor_event_id, dedup_key, vendor_updated_at,
                        comment_body, comment_author, comment_public, changes, payload, request_id)
    VALUES (out_ticket_id, out_outcome, out_revision, p_event_type, p_vendor_event_id, p_dedup_key,
            updated_at_given, p_comment_body, p_comment_author, p_comment_public, p_changes, p_payload,
            p_request_id)
    RETURNING id INTO out_event_id;
END
$$;

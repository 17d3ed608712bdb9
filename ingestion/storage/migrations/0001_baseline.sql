-- Migration 1: the schema as the first release's schema.sql left it (tickets with their
-- latest raw payload, deliveries as audit trail and outbox). Written to be idempotent,
-- because databases created by that release already hold it: applying it to them
-- changes nothing, and migration 2 then upgrades both kinds alike.

-- One row per vendor ticket: the normalized fields and the latest raw payload.
CREATE TABLE IF NOT EXISTS tickets (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    external_source   text        NOT NULL CHECK (external_source IN ('freshdesk', 'zendesk')),
    external_id       text        NOT NULL,
    subject           text,
    description       text,
    status            text,
    priority          text,
    requester_name    text,
    requester_email   text,
    tags              text[]      NOT NULL DEFAULT '{}',
    vendor_created_at timestamptz,
    vendor_updated_at timestamptz,
    -- Fingerprint of the normalized fields: equal hash = "same content" (a redelivery).
    content_hash      text        NOT NULL,
    -- Bumped on every update; lets caches tell an older answer from a newer one.
    revision          integer     NOT NULL DEFAULT 1,
    raw_payload       jsonb       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_external_key UNIQUE (external_source, external_id)
);

-- One row per authenticated delivery: the audit trail, and the transactional outbox.
-- A `created` or `updated` row with published_at NULL is an event the relay has not yet
-- appended to the Redis stream; it is written in the same transaction as the ticket,
-- so an event exists if and only if the change was committed.
CREATE TABLE IF NOT EXISTS deliveries (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    source             text        NOT NULL,
    external_id        text,
    -- No foreign key on purpose: tickets are never deleted, and the check (an index
    -- lookup and a row lock per delivery) was a fifth of this function's cost.
    ticket_id          uuid,
    outcome            text        NOT NULL
                       CHECK (outcome IN ('created', 'already_exists', 'updated', 'stale', 'ignored')),
    revision           integer,
    vendor_delivery_id text,
    request_id         text,
    published_at       timestamptz
);

-- The relay's work queue: small, because published rows leave it.
CREATE INDEX IF NOT EXISTS deliveries_unpublished
    ON deliveries (id) WHERE published_at IS NULL AND outcome IN ('created', 'updated');
-- Retention pruning scans by time; BRIN costs almost nothing on the insert path.
CREATE INDEX IF NOT EXISTS deliveries_received_at ON deliveries USING brin (received_at);
CREATE INDEX IF NOT EXISTS deliveries_ticket_id ON deliveries (ticket_id);
-- Upgrade of databases created before the foreign key was dropped.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_ticket_id_fkey;

-- ingest_ticket: store one ticket delivery; returns the ticket id, the outcome, and the
-- ticket's revision and content fingerprint after the call (for a stale delivery: the
-- newer content kept, which the duplicate cache then remembers). A webhook is this one statement: one round trip, and (run in
-- autocommit) one transaction covering the ticket, the delivery and its outbox event.
--
-- Race safety: concurrent deliveries of one ticket meet at the unique key. The INSERT
-- ... ON CONFLICT DO NOTHING of the loser waits for the winner's transaction; the
-- following SELECT ... FOR NO KEY UPDATE runs with a fresh snapshot (READ COMMITTED,
-- new statement) so it sees the winner's row, locks it, and compares against the
-- latest committed content. Deliveries of one ticket are therefore serialized, their
-- delivery rows get ids in commit order, and exactly one of them is `created`.
-- (Dropped first: CREATE OR REPLACE cannot change a function's result columns, and the
-- whole file is applied in one transaction, so callers never see it missing.)
DROP FUNCTION IF EXISTS ingest_ticket(text, text, text, text, text, text, text, text, text, text[],
                                      timestamptz, timestamptz, jsonb, text, text);
CREATE FUNCTION ingest_ticket(
    p_source text, p_external_id text, p_content_hash text,
    p_subject text, p_description text, p_status text, p_priority text,
    p_requester_name text, p_requester_email text, p_tags text[],
    p_vendor_created_at timestamptz, p_vendor_updated_at timestamptz,
    p_raw_payload jsonb, p_vendor_delivery_id text, p_request_id text,
    OUT out_ticket_id uuid, OUT out_outcome text, OUT out_revision integer, OUT out_content_hash text)
LANGUAGE plpgsql AS $$
DECLARE
    existing tickets%ROWTYPE;
BEGIN
    LOOP
        INSERT INTO tickets AS t (
            external_source, external_id, subject, description, status, priority,
            requester_name, requester_email, tags, vendor_created_at, vendor_updated_at,
            content_hash, raw_payload)
        VALUES (
            p_source, p_external_id, p_subject, p_description, p_status, p_priority,
            p_requester_name, p_requester_email, p_tags, p_vendor_created_at, p_vendor_updated_at,
            p_content_hash, p_raw_payload)
        ON CONFLICT (external_source, external_id) DO NOTHING
        RETURNING t.id, t.revision INTO out_ticket_id, out_revision;
        IF FOUND THEN
            out_outcome := 'created';
            out_content_hash := p_content_hash;
            EXIT;
        END IF;

        SELECT * INTO existing FROM tickets t
         WHERE t.external_source = p_source AND t.external_id = p_external_id
           FOR NO KEY UPDATE;
        EXIT WHEN FOUND;  -- otherwise the row vanished between the two statements: insert again
    END LOOP;

    IF out_outcome IS NULL THEN
        out_ticket_id := existing.id;
        out_content_hash := existing.content_hash;
        IF existing.content_hash = p_content_hash THEN
            out_outcome := 'already_exists';
            out_revision := existing.revision;
        ELSIF p_vendor_updated_at < existing.vendor_updated_at THEN
            -- An older version arriving late (Freshdesk retries after up to 95 minutes):
            -- keep what we have. NULL on either side cannot be ordered and counts as newer.
            out_outcome := 'stale';
            out_revision := existing.revision;
        ELSE
            UPDATE tickets t SET
                subject = p_subject, description = p_description, status = p_status,
                priority = p_priority, requester_name = p_requester_name,
                requester_email = p_requester_email, tags = p_tags,
                vendor_created_at = p_vendor_created_at, vendor_updated_at = p_vendor_updated_at,
                content_hash = p_content_hash, raw_payload = p_raw_payload,
                revision = t.revision + 1, updated_at = now()
             WHERE t.id = existing.id
            RETURNING t.revision INTO out_revision;
            out_outcome := 'updated';
            out_content_hash := p_content_hash;
        END IF;
    END IF;

    INSERT INTO deliveries (source, external_id, ticket_id, outcome, revision, vendor_delivery_id, request_id)
    VALUES (p_source, p_external_id, out_ticket_id, out_outcome, out_revision, p_vendor_delivery_id, p_request_id);
END
$$;

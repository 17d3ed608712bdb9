-- Migration 8: events keep the normalized fields they carried, the facts a rebuild
-- replays with the live merge rule (functions.sql: ticket_merge, rebuild_ticket); and a
-- redaction or a forgetting is an event of its own (outcome forget), so the stream tells
-- consumers and a rebuild honours it.
--
-- fields_retained: retention or a forgetting emptied the personal values of `fields`
-- (its keys stay, so the event still says which fields it set). payload_redacted: a
-- redaction masked the payload, which therefore no longer says what it said (a rebuild
-- replays the event's stored fields, masked alike). Events stored before this migration
-- have no fields (NULL): a rebuild reads them from their payloads.
--
-- Nullable and constant-default columns: no table rewrite. The new check admits
-- everything the old one did (NOT VALID: no scan of a large events table).
ALTER TABLE events
    ADD COLUMN fields jsonb,
    ADD COLUMN fields_retained boolean NOT NULL DEFAULT false,
    ADD COLUMN payload_redacted boolean NOT NULL DEFAULT false;

ALTER TABLE events DROP CONSTRAINT events_outcome_check,
    ADD CONSTRAINT events_outcome_check
        CHECK (outcome IN ('created', 'updated', 'recorded', 'stale', 'deleted', 'forget')) NOT VALID;

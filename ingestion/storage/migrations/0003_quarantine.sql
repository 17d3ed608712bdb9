-- Quarantine: authentic deliveries the normalizer could not read, kept with their raw
-- bytes so that nothing authentic is lost. Answered 400/422 (the vendor's log shows the
-- failure), replayed by `python -m ingestion replay` once the normalizer reads them.
-- Bounded: the app evicts the oldest past QUARANTINE_MAX_ENTRIES on insert, the relay
-- and `prune` delete entries older than QUARANTINE_RETENTION_DAYS.
CREATE TABLE quarantine (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor       text        NOT NULL,
    account      text        NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL DEFAULT now(),
    status       integer     NOT NULL,  -- the answer given: 400 or 422
    reason       text        NOT NULL,  -- a short label (metrics): not_json, invalid_field, ...
    error        text        NOT NULL,  -- the message the vendor was answered
    body         bytea       NOT NULL,  -- the raw bytes, as they were authenticated
    headers      jsonb       NOT NULL DEFAULT '{}',  -- identifying headers only, never credentials
    auth_method  text,
    request_id   text,
    attempts     integer     NOT NULL DEFAULT 0,  -- replays that failed since
    last_attempt timestamptz
);

CREATE INDEX quarantine_vendor ON quarantine (vendor, id);
CREATE INDEX quarantine_received_at ON quarantine (received_at);

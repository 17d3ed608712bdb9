-- Migration 13: the console's bulk replays of the quarantine (ingestion/web/console/
-- quarantine_bulk.py says why it works this way). One row per confirmed "replay
-- everything this filter matches": the filter and the confirming token's scope, the id
-- range snapshotted at confirmation (entries with id <= max_id: later arrivals are not
-- part of it), where it stands (every matching entry up to last_id was replayed;
-- claimed_id is the one being replayed now, held until claimed_until), its counts and its
-- state. A new, empty table: no lock on anything the webhooks use.
CREATE TABLE console_replays (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_vendor  text,        -- the confirming token's scope; both NULL: every account
    scope_account text,
    filter        jsonb       NOT NULL,  -- vendor, account, reason, since, until; absent: any
    max_id        bigint      NOT NULL,
    expected      integer     NOT NULL,  -- the count the operator confirmed
    last_id       bigint      NOT NULL DEFAULT 0,
    claimed_id    bigint,
    claimed_until timestamptz,
    done          integer     NOT NULL DEFAULT 0,
    ingested      integer     NOT NULL DEFAULT 0,
    failed        integer     NOT NULL DEFAULT 0,
    state         text        NOT NULL DEFAULT 'running',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT console_replays_state_check CHECK (state IN ('running', 'cancelled', 'done')),
    CONSTRAINT console_replays_scope_check CHECK ((scope_vendor IS NULL) = (scope_account IS NULL))
);

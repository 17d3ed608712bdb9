-- The schema as it stands: every table, constraint and index the service uses, in one
-- readable place. The functions are in ingestion/storage/functions.sql (each defined
-- once), apart from the ids' default below, which the tables need first.
--
-- Databases get here through the versioned migrations (ingestion/storage/migrations/,
-- `python -m ingestion migrate`), from empty or from any earlier release; this file is
-- what they arrive at. tests/test_schema.py proves it: the migrations from an empty
-- database give exactly this file plus functions.sql. A schema change is a new migration
-- and the same change here.

-- Time-ordered UUIDs (version 7: 48 bits of milliseconds, then random), so new rows land
-- on the right edge of the primary key index instead of on random pages.
CREATE FUNCTION ingestion_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- One row per vendor ticket: its current normalized fields, merged from its events
-- (functions.sql: ticket_merge). Same ticket = same vendor, account and vendor id.
CREATE TABLE tickets (
    id                uuid        PRIMARY KEY DEFAULT ingestion_uuid_v7(),
    vendor            text        NOT NULL,
    account           text        NOT NULL DEFAULT '',
    external_id       text        NOT NULL,
    subject           text,
    description       text,
    status            text,
    priority          text,
    type              text,
    requester_name    text,
    requester_email   text,
    requester_id      text,
    assignee_name     text,
    assignee_email    text,
    assignee_id       text,
    group_name        text,
    organization      text,
    tags              text[]      NOT NULL DEFAULT '{}',
    custom_fields     jsonb       NOT NULL DEFAULT '{}',
    vendor_created_at timestamptz,
    vendor_updated_at timestamptz,
    -- deleted at the vendor (a soft delete: restorable there); purged: permanently
    -- deleted, its content forgotten here too
    deleted_at        timestamptz,
    purged_at         timestamptz,
    -- bumped on every change; lets caches tell an older answer from a newer one
    revision          integer     NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_external_key UNIQUE (vendor, account, external_id)
);
-- A ticket by its vendor id alone, and by its requester's address in any case (the
-- console's filters, redaction's look-up).
CREATE INDEX tickets_external_id ON tickets (external_id);
CREATE INDEX tickets_requester_email ON tickets (lower(requester_email));

-- One row per distinct authentic delivery about a ticket: the history (with its raw
-- payload and the fields it carried), the audit trail, and the outbox of the stream.
-- Partitioned by month of arrival (migration 14, storage/partitions.py): retention drops
-- a month whole; `python -m ingestion maintain` makes the months ahead (events_YYYY_MM),
-- and events_default catches what no month holds yet.
CREATE TABLE events (
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    ticket_id         uuid        NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    -- created | updated | recorded (ticket fields unchanged) | stale (older than the
    -- ticket: kept, ticket untouched) | deleted | forget (a redaction or a forgetting,
    -- which tells the stream's consumers to drop their copies)
    outcome           text        NOT NULL,
    -- the ticket's revision once this event was applied
    revision          integer     NOT NULL,
    event_type        text        NOT NULL,
    vendor_event_id   text,
    -- what makes a redelivery the same delivery: 'id:' + the vendor's event or delivery
    -- id, or 'body:' + a fingerprint of the body (the same within the retry horizon only);
    -- unique per ticket through event_keys
    dedup_key         text        NOT NULL,
    -- the event's own vendor time, which orders it against the ticket
    vendor_updated_at timestamptz,
    comment_body      text,
    comment_author    text,
    comment_public    boolean,
    changes           jsonb,
    payload           jsonb,
    request_id        text,
    -- the outbox: NULL until the relay appended the event to the stream
    published_at      timestamptz,
    -- the normalized fields the event carried: what a rebuild replays when its payload
    -- cannot be read again; retention empties their personal values (fields_retained)
    fields            jsonb,
    fields_retained   boolean     NOT NULL DEFAULT false,
    -- a redaction masked the payload: a rebuild replays the stored fields instead
    payload_redacted  boolean     NOT NULL DEFAULT false,
    -- the credential that verified the delivery (`signing:trigger`, `basic:env`), never a secret
    credential        text,
    CONSTRAINT events_outcome_check
        CHECK (outcome IN ('created', 'updated', 'recorded', 'stale', 'deleted', 'forget')),
    CONSTRAINT events_pkey PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE events_default PARTITION OF events DEFAULT;
-- A ticket's history, oldest first (the read API, the console, rebuild, redaction).
CREATE INDEX events_ticket ON events (ticket_id, id);
-- The relay's work queue: small, because published rows leave it.
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL AND outcome <> 'stale';
-- The console's events page (storage/console_events.py): newest first, a time range, an
-- event type, an outcome, the payload search by JSON containment (migration 12).
CREATE INDEX events_newest ON events (received_at, id);
CREATE INDEX events_type_newest ON events (event_type, received_at, id);
CREATE INDEX events_outcome_newest ON events (outcome, received_at, id);
CREATE INDEX events_payload ON events USING gin (payload jsonb_path_ops);

-- Each delivery identity an event was stored under, per ticket: a retry is never stored
-- twice, across workers and instances (ingest_event reads and writes it). Kept when
-- retention drops the event's month, so a very late retry is still known.
CREATE TABLE event_keys (
    ticket_id   uuid        NOT NULL,
    dedup_key   text        NOT NULL,
    event_id    bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    CONSTRAINT event_keys_pkey PRIMARY KEY (ticket_id, dedup_key)
);

-- One row: the history before trimmed_before is gone (retention dropped those months):
-- tickets first seen before it are not rebuilt (functions.sql: rebuild_ticket).
CREATE TABLE event_history (
    one            boolean     NOT NULL DEFAULT true,
    trimmed_before timestamptz NOT NULL DEFAULT '-infinity',
    CONSTRAINT event_history_one_check CHECK (one),
    CONSTRAINT event_history_pkey PRIMARY KEY (one)
);
INSERT INTO event_history DEFAULT VALUES;

-- The audit rows of requests that brought no new event: redeliveries, ignored events.
CREATE TABLE deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    vendor          text        NOT NULL,
    account         text        NOT NULL DEFAULT '',
    external_id     text,
    ticket_id       uuid,
    event_id        bigint,
    outcome         text        NOT NULL,
    vendor_event_id text,
    request_id      text,
    -- ('stale': rows of the first release, which audited stale deliveries here)
    CONSTRAINT deliveries_outcome_check CHECK (outcome IN ('already_exists', 'ignored', 'stale'))
);
CREATE INDEX deliveries_received_at ON deliveries USING brin (received_at);
CREATE INDEX deliveries_ticket_id ON deliveries (ticket_id);

-- Authentic deliveries the normalizer could not read, kept with their raw bytes
-- (ingestion/quarantine.py), replayed by `python -m ingestion replay`. Bounded.
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
-- A source's entries, oldest first: what the bound evicts (storage/quarantine.py).
CREATE INDEX quarantine_source ON quarantine (vendor, account, id);
-- How many entries each source holds, kept by the triggers of functions.sql
-- (quarantine_counts_keep): the bound reads these rows, never the whole quarantine.
CREATE TABLE quarantine_counts (
    vendor  text   NOT NULL,
    account text   NOT NULL,
    entries bigint NOT NULL,
    CONSTRAINT quarantine_counts_pkey PRIMARY KEY (vendor, account)
);

-- The console's bulk replays of the quarantine: the filter and scope confirmed, the id
-- range snapshotted then, where each stands, its counts and state
-- (ingestion/web/console/quarantine_bulk.py).
CREATE TABLE console_replays (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_vendor  text,        -- the confirming token's scope; both NULL: every account
    scope_account text,
    filter        jsonb       NOT NULL,  -- vendor, account, reason, since, until; absent: any
    max_id        bigint      NOT NULL,  -- entries with id <= max_id at confirmation
    expected      integer     NOT NULL,  -- the count the operator confirmed
    last_id       bigint      NOT NULL DEFAULT 0,  -- every matching entry up to here was replayed
    claimed_id    bigint,                -- the entry being replayed now ...
    claimed_until timestamptz,           -- ... held until then
    done          integer     NOT NULL DEFAULT 0,
    ingested      integer     NOT NULL DEFAULT 0,
    failed        integer     NOT NULL DEFAULT 0,
    state         text        NOT NULL DEFAULT 'running',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT console_replays_state_check CHECK (state IN ('running', 'cancelled', 'done')),
    CONSTRAINT console_replays_scope_check CHECK ((scope_vendor IS NULL) = (scope_account IS NULL))
);

-- Where `python -m ingestion rebuild` stands, per scope: an interrupted rebuild resumes.
CREATE TABLE rebuild_progress (
    scope       text        PRIMARY KEY,
    last_ticket uuid,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- That a redaction happened, never what it removed: its kind and how many rows changed.
CREATE TABLE redactions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    kind         text        NOT NULL,  -- email | ticket
    changed      jsonb       NOT NULL
);

-- Where each reconciler stopped, per vendor, account and mode, so a restart resumes there.
CREATE TABLE reconcile_cursors (
    vendor       text        NOT NULL,
    account      text        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('reconcile', 'backfill')),
    since        timestamptz NOT NULL,
    cursor       text,
    position     timestamptz,  -- how far the export has got in vendor time
    caught_up_at timestamptz,  -- the last time a run reached the end of the export
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account, mode)
);

-- A source: a vendor account and the credentials that may write into it
-- (ingestion/sources.py; `python -m ingestion sources ...`).
CREATE TABLE sources (
    vendor     text        NOT NULL,
    account    text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account)
);

-- A source's named credentials per method: the current value and, during a rotation, the
-- previous one, Fernet-encrypted under SOURCES_ENCRYPTION_KEY. `env`: no value, the
-- vendor's environment variable of that method.
CREATE TABLE source_credentials (
    vendor     text        NOT NULL,
    account    text        NOT NULL,
    method     text        NOT NULL CHECK (method IN ('hmac', 'basic', 'signing', 'token')),
    name       text        NOT NULL,
    current    bytea,
    previous   bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account, method, name),
    FOREIGN KEY (vendor, account) REFERENCES sources ON DELETE CASCADE,
    CONSTRAINT source_credentials_env_holds_no_value
        CHECK ((name = 'env') = (current IS NULL) AND (name <> 'env' OR previous IS NULL))
);

-- The vendor's own id of an account named otherwise in its webhook URL (a Zendesk source
-- named `acme` while Zendesk sends account 1234567): learned from the first authentic
-- delivery whose body names one, then every delivery must name the same
-- (ingestion/sources.py); `sources unbind` forgets it.
CREATE TABLE account_ids (
    vendor            text        NOT NULL,
    account           text        NOT NULL,
    vendor_account_id text        NOT NULL,
    bound_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account)
);

-- Where `python -m ingestion rebuild` stands, per scope (all tickets, one vendor, one
-- ticket): an interrupted rebuild resumes after the last ticket it finished.
CREATE TABLE rebuild_progress (
    scope        text        PRIMARY KEY,
    last_ticket  uuid,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

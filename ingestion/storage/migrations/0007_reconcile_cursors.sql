-- Migration 7: where each reconciler stopped, so a restart resumes there.
--
-- One row per vendor, account and mode (reconcile: the long-running poller; backfill:
-- a one-off import from a date). `cursor` is the vendor export's own position (Zendesk's
-- after_cursor; Freshdesk's updated_since and page), opaque to everything but the
-- vendor's folder. `since` is where the run began (a backfill resumes only the same one).
CREATE TABLE reconcile_cursors (
    vendor          text        NOT NULL,
    account         text        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('reconcile', 'backfill')),
    since           timestamptz NOT NULL,
    cursor          text,
    -- how far the export has got in vendor time (the last ticket's updated_at)
    position        timestamptz,
    caught_up_at    timestamptz,  -- the last time a run reached the end of the export
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account, mode)
);

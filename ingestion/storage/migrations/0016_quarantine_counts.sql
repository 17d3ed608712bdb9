-- Migration 16: the quarantine's entries per source, kept by the table itself (the
-- triggers of functions.sql: quarantine_counts_keep), so the bound's eviction
-- (storage/quarantine.py: EVICT) reads a row per source instead of counting and
-- grouping the whole quarantine at every quarantined delivery once it is full, which
-- cost milliseconds a delivery, more with every entry the bound allows
-- (docs/performance.md, stop 41). functions.sql fills it when it installs the triggers.
-- The index finds a source's oldest entries, which the eviction removes.
CREATE TABLE quarantine_counts (
    vendor  text   NOT NULL,
    account text   NOT NULL,
    entries bigint NOT NULL,
    CONSTRAINT quarantine_counts_pkey PRIMARY KEY (vendor, account)
);
CREATE INDEX quarantine_source ON quarantine (vendor, account, id);

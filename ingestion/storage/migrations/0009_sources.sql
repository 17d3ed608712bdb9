-- Migration 9: sources. A source is a vendor account and the credentials that may write
-- into it (ingestion/sources.py); `python -m ingestion sources ...` manages them.
--
-- source_credentials: any number of named credentials per method, each with its current
-- value and, during a rotation, the previous one, encrypted with Fernet under
-- SOURCES_ENCRYPTION_KEY (the database never sees a secret in clear). A credential named
-- `env` holds no value: it stands for the vendor's environment variable of that method.
--
-- Upgrading keeps every deployment working as before: each vendor account that already
-- sent something (a ticket, a delivery, a quarantined body) becomes a source whose
-- credentials are its vendor's environment variables,
-- so the URLs and secrets in use go on being accepted, and only accounts never seen
-- need a source. (The vendors and methods below are those of this release.)
--
-- events.credential: which credential verified the delivery (`signing:trigger`,
-- `basic:env`; ` (previous)` while a rotation is under way), never a secret.
CREATE TABLE sources (
    vendor     text        NOT NULL,
    account    text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, account)
);

CREATE TABLE source_credentials (
    vendor     text        NOT NULL,
    account    text        NOT NULL,
    method     text        NOT NULL CHECK (method IN ('hmac', 'basic', 'signing')),
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

ALTER TABLE events ADD COLUMN credential text;

INSERT INTO sources (vendor, account)
SELECT vendor, account FROM tickets WHERE account <> ''
UNION SELECT vendor, account FROM deliveries WHERE account <> ''   -- so far only duplicates or ignored
UNION SELECT vendor, account FROM quarantine WHERE account <> '';  -- so far only quarantined

INSERT INTO source_credentials (vendor, account, method, name)
SELECT s.vendor, s.account, m.method, 'env'
  FROM sources s
  JOIN (VALUES ('freshdesk', 'hmac'), ('freshdesk', 'basic'), ('zendesk', 'signing'), ('zendesk', 'basic'),
               ('helpscout', 'hmac')) AS m (vendor, method) ON m.vendor = s.vendor;

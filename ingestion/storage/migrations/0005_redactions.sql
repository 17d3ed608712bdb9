-- That a redaction happened, never what it removed: when, which kind of request (an
-- email address or a ticket), and how many rows it changed in each table.
CREATE TABLE redactions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    kind         text        NOT NULL,  -- email | ticket
    changed      jsonb       NOT NULL
);

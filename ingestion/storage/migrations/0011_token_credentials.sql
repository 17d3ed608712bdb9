-- Migration 11: a source may hold a `token` credential, a secret a vendor sends as is in
-- a header (Sunshine Conversations' X-API-Key, for Zendesk sources). The table is small
-- (a row per credential), so re-checking it is instant.
ALTER TABLE source_credentials
    DROP CONSTRAINT source_credentials_method_check,
    ADD CONSTRAINT source_credentials_method_check CHECK (method IN ('hmac', 'basic', 'signing', 'token'));

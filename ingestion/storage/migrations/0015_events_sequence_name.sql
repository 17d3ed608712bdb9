-- Migration 15: the events' id sequence under the name schema.sql gives it. Migration 14
-- made the partitioned table beside the old one, whose sequence kept `events_id_seq`, so
-- the new one's identity sequence was named `events_id_seq1`; after the swap the old one
-- was dropped and the name stayed. Nothing reads it by name; the schema test compares
-- every relation, and a database made by migrations must be the one schema.sql describes.
-- A rename takes a lock on the sequence alone, for an instant.
DO $$
BEGIN
    IF to_regclass('events_id_seq1') IS NOT NULL AND to_regclass('events_id_seq') IS NULL THEN
        ALTER SEQUENCE events_id_seq1 RENAME TO events_id_seq;
    END IF;
END
$$;

"""Migration 14: `events` becomes a table partitioned by month, converted online.

Why: every delivery keeps its raw payload, and retention could only empty old rows, an
UPDATE over millions of them. Partitions by `received_at` let retention drop a month
whole (storage/partitions.py). A partitioned table's unique keys must hold the partition
key, so the rule "a retry is never stored twice" (UNIQUE (ticket_id, dedup_key)) moves
to a table of its own, `event_keys`, which ingest_event() reads and writes (functions.sql).

The conversion runs while the service writes, and can stop anywhere and run again:
1. `events_partitioned` is made (same columns, the months from the oldest event to three
   months ahead, a default partition, the indexes), and `event_keys` and
   `event_history` (one row: `trimmed_before`, what retention dropped).
2. A trigger on `events` repeats every insert, update and delete on both new tables.
3. The rows already there are copied in batches of BATCH by id, each batch in its own
   short transaction holding a SHARE lock on `events` (writers wait for it, readers do
   not), so a batch and the trigger never interleave; how far it got is kept in
   `events_partitioning`, where the next run goes on.
4. The swap, in one transaction under `lock_timeout`: the trigger goes, the tables trade
   names, the id becomes an identity again from the old sequence's next value, and the
   old table is dropped.
A database that is already partitioned is left as it is.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions.sql"

BATCH = 5000
#: Named, never `*`: the old table's column order is its migrations' history.
NAMES = ("id", "ticket_id", "received_at", "outcome", "revision", "event_type", "vendor_event_id", "dedup_key",
         "vendor_updated_at", "comment_body", "comment_author", "comment_public", "changes", "payload", "request_id",
         "published_at", "fields", "fields_retained", "payload_redacted", "credential")
LIST = ", ".join(NAMES)

COLUMNS = """
    id                bigint      NOT NULL,
    ticket_id         uuid        NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    outcome           text        NOT NULL,
    revision          integer     NOT NULL,
    event_type        text        NOT NULL,
    vendor_event_id   text,
    dedup_key         text        NOT NULL,
    vendor_updated_at timestamptz,
    comment_body      text,
    comment_author    text,
    comment_public    boolean,
    changes           jsonb,
    payload           jsonb,
    request_id        text,
    published_at      timestamptz,
    fields            jsonb,
    fields_retained   boolean     NOT NULL DEFAULT false,
    payload_redacted  boolean     NOT NULL DEFAULT false,
    credential        text,
    CONSTRAINT events_part_outcome_check
        CHECK (outcome IN ('created', 'updated', 'recorded', 'stale', 'deleted', 'forget')),
    PRIMARY KEY (id, received_at)
"""

PREPARE = [
    f"CREATE TABLE IF NOT EXISTS events_partitioned ({COLUMNS}) PARTITION BY RANGE (received_at)",
    "CREATE TABLE IF NOT EXISTS events_partitioned_default PARTITION OF events_partitioned DEFAULT",
    "CREATE INDEX IF NOT EXISTS events_part_ticket ON events_partitioned (ticket_id, id)",
    "CREATE INDEX IF NOT EXISTS events_part_unpublished ON events_partitioned (id) "
    "WHERE published_at IS NULL AND outcome <> 'stale'",
    "CREATE INDEX IF NOT EXISTS events_part_newest ON events_partitioned (received_at, id)",
    "CREATE INDEX IF NOT EXISTS events_part_type_newest ON events_partitioned (event_type, received_at, id)",
    "CREATE INDEX IF NOT EXISTS events_part_outcome_newest ON events_partitioned (outcome, received_at, id)",
    "CREATE INDEX IF NOT EXISTS events_part_payload ON events_partitioned USING gin (payload jsonb_path_ops)",
    """CREATE TABLE IF NOT EXISTS event_keys (
           ticket_id   uuid        NOT NULL,
           dedup_key   text        NOT NULL,
           event_id    bigint      NOT NULL,
           received_at timestamptz NOT NULL,
           PRIMARY KEY (ticket_id, dedup_key))""",
    """CREATE TABLE IF NOT EXISTS event_history (
           one            boolean     PRIMARY KEY DEFAULT true CHECK (one),
           trimmed_before timestamptz NOT NULL DEFAULT '-infinity')""",
    "INSERT INTO event_history DEFAULT VALUES ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS events_partitioning (one boolean PRIMARY KEY DEFAULT true CHECK (one), "
    "copied_to bigint NOT NULL DEFAULT 0)",
    "INSERT INTO events_partitioning DEFAULT VALUES ON CONFLICT DO NOTHING",
    """CREATE OR REPLACE FUNCTION events_partitioning_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           IF TG_OP IN ('UPDATE', 'DELETE') THEN
               DELETE FROM events_partitioned WHERE id = OLD.id AND received_at = OLD.received_at;
               DELETE FROM event_keys WHERE ticket_id = OLD.ticket_id AND dedup_key = OLD.dedup_key
                                        AND event_id = OLD.id;
           END IF;
           IF TG_OP IN ('INSERT', 'UPDATE') THEN
               INSERT INTO events_partitioned (""" + LIST + """)
               VALUES (""" + ", ".join("NEW." + name for name in NAMES) + """);
               INSERT INTO event_keys VALUES (NEW.ticket_id, NEW.dedup_key, NEW.id, NEW.received_at)
               ON CONFLICT (ticket_id, dedup_key) DO UPDATE
                   SET event_id = EXCLUDED.event_id, received_at = EXCLUDED.received_at;
           END IF;
           RETURN NULL;
       END $$""",
    "DROP TRIGGER IF EXISTS events_partitioning_mirror ON events",
    "CREATE TRIGGER events_partitioning_mirror AFTER INSERT OR UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_partitioning_mirror()",
]

COPY = """
WITH batch AS (
    SELECT * FROM events WHERE id > %(after)s ORDER BY id LIMIT %(batch)s
), copied AS (
    INSERT INTO events_partitioned (""" + LIST + """) SELECT """ + LIST + """ FROM batch ON CONFLICT DO NOTHING
), keyed AS (
    INSERT INTO event_keys SELECT ticket_id, dedup_key, id, received_at FROM batch ON CONFLICT DO NOTHING
)
SELECT max(id) FROM batch
"""

SWAP = [
    "LOCK TABLE events IN ACCESS EXCLUSIVE MODE",
    "DROP TRIGGER events_partitioning_mirror ON events",
    "DROP FUNCTION events_partitioning_mirror()",
    "ALTER TABLE events RENAME TO events_unpartitioned",
    "ALTER TABLE events_partitioned RENAME TO events",
    "ALTER TABLE events_partitioned_default RENAME TO events_default",
]


def _partitioned(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'events'::regclass").fetchone()[0]


def _months(conn: psycopg.Connection) -> None:
    """The months from the oldest event's to three ahead, on the new table."""
    from ingestion.storage import partitions

    oldest = conn.execute("SELECT min(received_at) FROM events").fetchone()[0]
    now = conn.execute("SELECT now()").fetchone()[0]
    start = partitions.month_start(min(oldest, now) if oldest else now)
    end = partitions.month_start(now)
    for _ in range(3):
        end = partitions.next_month(end)
    while start <= end:
        name = "events_partitioned_" + partitions.partition_name(start).split("_", 1)[1]
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events_partitioned "
                     f"FOR VALUES FROM ('{start.isoformat()}') TO ('{partitions.next_month(start).isoformat()}')")
        start = partitions.next_month(start)


def apply(conn: psycopg.Connection, lock_timeout: str) -> None:
    if _partitioned(conn):
        return
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
        for statement in PREPARE:
            conn.execute(statement)
        _months(conn)
    while True:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
            conn.execute("LOCK TABLE events IN SHARE MODE")
            after = conn.execute("SELECT copied_to FROM events_partitioning").fetchone()[0]
            reached = conn.execute(COPY, {"after": after, "batch": BATCH}).fetchone()[0]
            if reached is None:
                break
            conn.execute("UPDATE events_partitioning SET copied_to = %s", (reached,))
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
        for statement in SWAP:
            conn.execute(statement)
        for name, kind in conn.execute("""
                SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'I')
                   AND c.relname LIKE 'events\\_partitioned\\_%' AND c.relname <> 'events_partitioned_pkey'
                """).fetchall():
            # the months, and their indexes (named after the table they were made on)
            conn.execute(f"ALTER {'TABLE' if kind == 'r' else 'INDEX'} {name} "
                         f"RENAME TO {name.replace('events_partitioned_', 'events_', 1)}")
        following = conn.execute("SELECT nextval(pg_get_serial_sequence('events_unpartitioned', 'id'))").fetchone()[0]
        conn.execute(f"ALTER TABLE events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH {following})")
        conn.execute("DROP TABLE events_unpartitioned")
        conn.execute("DROP TABLE events_partitioning")
        conn.execute("ALTER TABLE events RENAME CONSTRAINT events_part_outcome_check TO events_outcome_check")
        for index in ("ticket", "unpublished", "newest", "type_newest", "outcome_newest", "payload"):
            conn.execute(f"ALTER INDEX events_part_{index} RENAME TO events_{index}")
        conn.execute("ALTER INDEX events_partitioned_pkey RENAME TO events_pkey")
        # The functions that read event_keys, in the same transaction: between this swap
        # and migrate's own application of functions.sql, an ingest_event() of the old
        # text would store events whose keys event_keys never hears of.
        conn.execute(FUNCTIONS.read_text())

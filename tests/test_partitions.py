"""`events` partitioned by month (migration 14, storage/partitions.py): a populated
unpartitioned table converted online while rows are written, a conversion stopped half-way
and run again, the months made ahead and dropped by retention, a retry of an event whose
month is gone, and rebuild leaving a ticket whose history start was dropped."""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from signing import post

from ingestion.storage import partitions
from ingestion.storage.migrate import DIRECTORY, migrate
from ingestion.storage.tickets import INGEST_EVENT, ingest_params
from ingestion.tickets import TicketEvent

SPEC = importlib.util.spec_from_file_location("migration_14", DIRECTORY / "0014_partitioned_events.py")
FOURTEEN = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(FOURTEEN)
#: The row as compared before and after the conversion (every column).
ROW_TEXT = f"md5(string_agg(concat_ws('|', {FOURTEEN.LIST}), ',' ORDER BY id))"


@pytest.fixture
def before_fourteen(postgres, tmp_path):
    """A database migrated to version 13 (the last unpartitioned one), with a history of
    three months: 40 tickets, 1200 events, some published, some not."""
    url = postgres.create_database(f"partitions_{uuid.uuid4().hex[:8]}")
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in sorted(DIRECTORY.glob("00*.sql")):
        if int(path.name[:4]) < 14:
            (folder / path.name).write_text(path.read_text())
    empty = tmp_path / "functions.sql"
    empty.write_text("SELECT 1;\n")
    migrate(url, directory=folder, functions=empty)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""INSERT INTO tickets (id, vendor, account, external_id, revision, created_at, updated_at)
                        SELECT gen_random_uuid(), 'freshdesk', '', 'p-' || n, 30, now() - interval '80 days', now()
                          FROM generate_series(1, 40) AS n""")
        conn.execute("""INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, payload, received_at,
                                            published_at)
                        SELECT t.id, CASE WHEN g = 1 THEN 'created' ELSE 'updated' END, g, 'ticket.updated',
                               'id:' || t.external_id || ':' || g, jsonb_build_object('n', g),
                               now() - make_interval(days => 80) + make_interval(mins => (g * 40 + n)::int),
                               CASE WHEN g < 25 THEN now() END
                          FROM (SELECT id, external_id, row_number() OVER (ORDER BY external_id) AS n FROM tickets) t,
                               generate_series(1, 30) AS g""")
    return url


def shadow(conn):
    conn.execute(f"CREATE TABLE events_expected AS SELECT {FOURTEEN.LIST} FROM events")


def digest(conn, table):
    return conn.execute(f"SELECT count(*), {ROW_TEXT} FROM {table}").fetchone()


def test_a_populated_table_is_converted_while_it_is_written_and_nothing_is_lost(before_fourteen, monkeypatch):
    monkeypatch.setattr(FOURTEEN, "BATCH", 50)  # 24 batches: the writer runs between them
    url = before_fourteen
    stop, written = threading.Event(), []

    def writer():
        """Inserts, and marks published (what ingest_event and the relay do), on events and
        on a plain copy alike."""
        with psycopg.connect(url, autocommit=True) as conn:
            n = 0
            while not stop.is_set():
                n += 1
                new_id = conn.execute("""INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, payload)
                                         SELECT id, 'recorded', 30, 'ticket.comment_added', 'live:' || %s, '{}'
                                           FROM tickets ORDER BY external_id LIMIT 1 RETURNING id""", (n,)).fetchone()[0]
                conn.execute(f"INSERT INTO events_expected SELECT {FOURTEEN.LIST} FROM events WHERE id = %s", (new_id,))
                for table in ("events", "events_expected"):
                    conn.execute(f"UPDATE {table} SET published_at = '2026-01-01Z' WHERE id = %s", (new_id - 600,))
                written.append(n)
                time.sleep(0.005)

    with psycopg.connect(url, autocommit=True) as conn:
        shadow(conn)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        with psycopg.connect(url, autocommit=True) as conn:
            FOURTEEN.apply(conn, "5s")
    finally:
        stop.set()
        thread.join(30)
    assert len(written) > 10  # the writer really wrote while the batches copied
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass").fetchone()[0] == "p"
        assert digest(conn, "events") == digest(conn, "events_expected")
        # Every event has its key (but the writer's rows after the swap: raw inserts, not ingest_event()'s)
        assert conn.execute("""SELECT count(*) FROM events e WHERE e.dedup_key NOT LIKE 'live:%%' AND NOT EXISTS (
                                   SELECT 1 FROM event_keys k WHERE k.ticket_id = e.ticket_id
                                      AND k.dedup_key = e.dedup_key AND k.event_id = e.id)""").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM event_keys WHERE dedup_key LIKE 'live:%%'").fetchone()[0] >= 10
        months = [m.name for m in partitions.months(conn)]
        assert len(months) >= 4 and months == sorted(months)  # from 80 days ago to three ahead
        assert conn.execute("SELECT count(*) FROM events_default").fetchone()[0] == 0
        top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        new = conn.execute("""INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key)
                              SELECT id, 'recorded', 31, 'x', 'after' FROM tickets LIMIT 1 RETURNING id""").fetchone()[0]
        assert new > top  # the identity goes on after the old sequence


def test_a_conversion_stopped_half_way_goes_on_where_it_stopped(before_fourteen, monkeypatch):
    monkeypatch.setattr(FOURTEEN, "BATCH", 100)
    url = before_fourteen
    with psycopg.connect(url, autocommit=True) as conn:
        shadow(conn)
    blocker = psycopg.connect(url)
    failed = []

    def convert():
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                FOURTEEN.apply(conn, "200ms")
            except psycopg.errors.LockNotAvailable as error:
                failed.append(error)

    with psycopg.connect(url, autocommit=True) as watcher:
        thread = threading.Thread(target=convert)
        thread.start()
        deadline = time.monotonic() + 20
        while True:  # wait for a first batch, then hold the table against the next
            progress = watcher.execute("SELECT to_regclass('events_partitioning') IS NOT NULL").fetchone()[0] \
                and watcher.execute("SELECT copied_to FROM events_partitioning").fetchone()[0]
            if progress:
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        thread.join(30)
        blocker.rollback()
        blocker.close()
        assert failed, "the conversion should have given up on its lock"
        halfway = watcher.execute("SELECT copied_to FROM events_partitioning").fetchone()[0]
        assert 0 < halfway < watcher.execute("SELECT max(id) FROM events").fetchone()[0]
        FOURTEEN.apply(watcher, "5s")  # run again: it goes on from halfway
        assert digest(watcher, "events") == digest(watcher, "events_expected")


def test_migrate_then_functions_make_a_partitioned_service(make_app, db):
    """The tests' own database went through migration 14: webhooks land in this month's
    partition, and a retry of an event in an older month is still known."""
    client = make_app().test_client()
    event = {"id": "evt-m1", "type": "zen:event-type:ticket.created", "detail": {"id": "901", "subject": "one"}}
    assert post(client, "zendesk", event).status_code == 201
    where = db.execute("SELECT tableoid::regclass::text AS part FROM events").fetchone()["part"]
    assert where == partitions.partition_name(partitions.month_start(datetime.now(UTC)))
    db.execute("UPDATE events SET received_at = received_at - interval '62 days'")  # row moves to an older month
    assert db.execute("SELECT tableoid::regclass::text AS part FROM events").fetchone()["part"] != where
    assert post(client, "zendesk", event).json["status"] == "already_exists"  # known by its event id


def test_the_hot_path_statement_never_opens_the_months(db):
    """A statement naming `events` opens and locks every month's partition and index at
    each call, even where the plan never reads them (a year kept is 17 of each): the
    webhook's one statement reads nothing itself, ingest_event() does the reading."""
    event = TicketEvent(vendor="freshdesk", account="", external_id="plan-1", event_type="ticket.created",
                        fields={"subject": "one"})
    params = ingest_params(event, "key-1", 120, '{"id": 1}', None)
    [plan] = db.execute(f"EXPLAIN (FORMAT JSON) {INGEST_EVENT}", params).fetchone()["QUERY PLAN"]

    def relations(node: dict) -> list[str]:
        named = [node["Relation Name"]] if "Relation Name" in node else []
        return named + [name for child in node.get("Plans", []) for name in relations(child)]

    assert plan["Plan"]["Node Type"] == "Function Scan"
    assert relations(plan["Plan"]) == []


def test_maintain_makes_months_ahead_and_moves_what_the_default_partition_caught(db, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        far = partitions.month_start(datetime.now(UTC) + timedelta(days=400))
        assert conn.execute("SELECT to_regclass(%s)", (partitions.partition_name(far),)).fetchone()[0] is None
        ticket = conn.execute("""INSERT INTO tickets (id, vendor, account, external_id, revision, created_at, updated_at)
                                 VALUES (gen_random_uuid(), 'freshdesk', '', 'future', 1, now(), now())
                                 RETURNING id""").fetchone()[0]
        conn.execute("""INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, received_at)
                        VALUES (%s, 'created', 1, 'x', 'far', %s)""", (ticket, far + timedelta(days=3)))
        assert conn.execute("SELECT count(*) FROM events_default").fetchone()[0] == 1
        try:
            made = partitions.ensure_ahead(conn, far, ahead=0)
            assert made == [partitions.partition_name(far)]
            assert conn.execute("SELECT count(*) FROM events_default").fetchone()[0] == 0
            assert conn.execute("SELECT tableoid::regclass::text FROM events WHERE dedup_key = 'far'"
                                ).fetchone()[0] == partitions.partition_name(far)
            assert partitions.ensure_ahead(conn, far, ahead=0) == []  # again: nothing to do
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {partitions.partition_name(far)}")


def test_two_makers_of_one_month_at_once_both_succeed(db, database_url):
    """Cron's `maintain` beside a relay starting (each makes the months ahead): the second
    found no month, then met the first's new table and failed, and the command said the
    database was unavailable. Now the second waits for the first, then finds the month."""
    far = partitions.month_start(datetime.now(UTC) + timedelta(days=500))
    results = []
    try:
        with psycopg.connect(database_url, autocommit=True) as first, \
                psycopg.connect(database_url, autocommit=True) as second:
            with first.transaction():  # the first maker, not committed yet
                assert partitions.ensure_month(first, far) is True
                racer = threading.Thread(target=lambda: results.append(partitions.ensure_month(second, far)))
                racer.start()
                time.sleep(0.5)
                assert racer.is_alive()  # waiting for the first maker
            racer.join(10)
        assert results == [False]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {partitions.partition_name(far)}")


def test_retention_drops_old_months_whole_and_rebuild_leaves_their_tickets(make_app, db, database_url):
    from ingestion.jobs.maintain import maintain
    from ingestion.storage import Storage
    from ingestion.vendors import load_settings

    from conftest import make_env

    client = make_app().test_client()
    assert post(client, "freshdesk", {"id": "old", "subject": "from long ago"}).status_code == 201
    assert post(client, "freshdesk", {"id": "new", "subject": "recent"}).status_code == 201
    old_month = partitions.month_start(datetime.now(UTC) - timedelta(days=150))
    with psycopg.connect(database_url, autocommit=True) as conn:
        partitions.ensure_month(conn, old_month)
    db.execute("UPDATE events SET received_at = %s WHERE ticket_id = (SELECT id FROM tickets WHERE external_id = 'old')",
               (old_month + timedelta(days=2),))
    db.execute("UPDATE tickets SET created_at = %s WHERE external_id = 'old'", (old_month + timedelta(days=2),))
    db.execute("UPDATE events SET published_at = now()")  # the relay's work: an unpublished month is kept (below)
    settings = load_settings(make_env(database_url, EVENT_RETENTION_DAYS="90"))
    storage = Storage(settings)
    try:
        made, dropped = maintain(storage, settings)
    finally:
        storage.close()
    assert partitions.partition_name(old_month) in dropped
    assert db.execute("SELECT count(*) AS n FROM events e JOIN tickets t ON t.id = e.ticket_id "
                      "WHERE t.external_id = 'old'").fetchone()["n"] == 0
    trimmed = db.execute("SELECT trimmed_before FROM event_history").fetchone()["trimmed_before"]
    assert trimmed >= partitions.next_month(old_month)
    # The ticket keeps its state; a rebuild cannot replay it and leaves it as it is.
    rebuilt = db.execute("SELECT (rebuild_ticket(id, '{}')).* FROM tickets WHERE external_id = 'old'").fetchone()
    assert rebuilt["out_partial"] is True and rebuilt["out_changes"] == {}
    assert db.execute("SELECT subject FROM tickets WHERE external_id = 'old'").fetchone()["subject"] == "from long ago"
    recent = db.execute("SELECT (rebuild_ticket(id, '{}')).* FROM tickets WHERE external_id = 'new'").fetchone()
    assert recent["out_partial"] is False
    # A retry of the dropped event is still known by its key.
    assert post(client, "freshdesk", {"id": "old", "subject": "from long ago"}).json["status"] == "already_exists"


def test_retention_keeps_a_month_holding_events_not_yet_published(make_app, db, database_url, redis_url):
    """A Redis outage across a month's end: the relay could not publish, so retention must
    not drop what the stream never got; once published, the month goes. Without a stream
    (no REDIS_URL) nothing is ever published, and the month goes at the cut-off."""
    from ingestion.jobs.maintain import maintain
    from ingestion.storage import Storage
    from ingestion.vendors import load_settings

    from conftest import make_env

    client = make_app().test_client()
    assert post(client, "freshdesk", {"id": "waiting", "subject": "not on the stream yet"}).status_code == 201
    old_month = partitions.month_start(datetime.now(UTC) - timedelta(days=150))
    older_month = partitions.month_start(old_month - timedelta(days=1))
    with psycopg.connect(database_url, autocommit=True) as conn:
        partitions.ensure_month(conn, older_month)
        partitions.ensure_month(conn, old_month)
    db.execute("UPDATE events SET received_at = %s", (old_month + timedelta(days=2),))
    # A cut-off 3 days after the month's end: within UNPUBLISHED_GRACE (a week) of it.
    days = (datetime.now(UTC) - partitions.next_month(old_month)).days - 3
    settings = load_settings(make_env(database_url, EVENT_RETENTION_DAYS=str(days), REDIS_URL=redis_url))
    storage = Storage(settings)
    try:
        assert maintain(storage, settings)[1] == [partitions.partition_name(older_month)]  # empty: dropped
        assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 1
        assert storage.outbox_backlog() == 1
        trimmed = db.execute("SELECT trimmed_before FROM event_history").fetchone()["trimmed_before"]
        assert trimmed <= old_month
        db.execute("UPDATE events SET published_at = now()")
        assert maintain(storage, settings)[1] == [partitions.partition_name(old_month)]
    finally:
        storage.close()
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 0
    # Past the grace, an unpublished month goes too: REDIS_URL alone does not say a relay
    # runs, and retention must end.
    assert post(client, "freshdesk", {"id": "never-relayed", "subject": "no relay"}).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        partitions.ensure_month(conn, old_month)
    db.execute("UPDATE events SET received_at = %s", (old_month + timedelta(days=2),))
    late = load_settings(make_env(database_url, EVENT_RETENTION_DAYS=str(days - 8), REDIS_URL=redis_url))
    storage = Storage(late)
    try:
        assert maintain(storage, late)[1] == [partitions.partition_name(old_month)]
    finally:
        storage.close()
    # No stream configured: an unpublished event never will be, and waits for nothing.
    assert post(client, "freshdesk", {"id": "no-stream", "subject": "never published"}).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        partitions.ensure_month(conn, old_month)
    db.execute("UPDATE events SET received_at = %s", (old_month + timedelta(days=2),))
    without = load_settings(make_env(database_url, EVENT_RETENTION_DAYS="90"))
    assert not without.has_stream
    storage = Storage(without)
    try:
        assert maintain(storage, without)[1] == [partitions.partition_name(old_month)]
    finally:
        storage.close()


def test_the_relay_marks_a_batch_spanning_months(make_app, db, redis_url, database_url):
    from conftest import make_env
    from ingestion.jobs.relay import Relay
    from ingestion.redis_guard import GuardedRedis
    from ingestion.storage import Storage
    from ingestion.vendors import load_settings

    client = make_app().test_client()
    for n in range(4):
        assert post(client, "freshdesk", {"id": f"span-{n}"}).status_code == 201
    db.execute("UPDATE events SET received_at = received_at - interval '40 days' WHERE id % 2 = 0")
    settings = load_settings(make_env(database_url, REDIS_URL=redis_url))
    storage = Storage(settings)
    try:
        assert Relay(settings, storage, GuardedRedis(settings)).publish_batch() == 4
        assert storage.outbox_backlog() == 0
    finally:
        storage.close()

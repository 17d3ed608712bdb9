"""Versioned migrations: a database of the first release upgrades in place with nothing
lost, each migration is applied once, a busy table makes a migration give up instead of
blocking webhooks, and starting the service changes no schema."""

from __future__ import annotations

import json
import re
import threading
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from ingestion.errors import MigrationError
from ingestion.storage.migrate import (DIRECTORY, OUTSIDE_A_TRANSACTION, Migration, applied_versions, available,
                                       latest_version, migrate)
from signing import FRESHDESK_URL, ZENDESK_URL, signed

FIRST_RELEASE = (DIRECTORY / "0001_baseline.sql").read_text()


@pytest.fixture
def fresh_url(postgres):
    return postgres.create_database(f"migrations_{uuid.uuid4().hex[:12]}")


def connect(url):
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def v1_ingest(conn, source, external_id, subject, updated_at, payload, delivery_id=None):
    """The first release's hot path, as it ran: its own ingest_ticket() function."""
    content_hash = uuid.uuid5(uuid.NAMESPACE_URL, f"{subject}|{updated_at}").hex
    return conn.execute(
        "SELECT * FROM ingest_ticket(%s, %s, %s, %s, NULL, 'open', NULL, 'Ada', 'ada@example.com', %s, NULL, %s,"
        " %s::jsonb, %s, 'req')",
        (source, external_id, content_hash, subject, ["t1"], updated_at, json.dumps(payload), delivery_id)).fetchone()


def test_a_fresh_database_gets_every_migration_once(fresh_url):
    applied = migrate(fresh_url)
    assert [m.version for m in applied.migrations] == list(range(1, latest_version() + 1))
    assert applied.functions
    again = migrate(fresh_url)
    assert (again.migrations, again.functions) == ([], False)
    with connect(fresh_url) as conn:
        assert applied_versions(conn) == list(range(1, latest_version() + 1))


def test_a_first_release_database_upgrades_in_place_with_nothing_lost(fresh_url, make_app):
    with connect(fresh_url) as conn:
        conn.execute(FIRST_RELEASE)  # as its `init-db` left it: no version table
        created = v1_ingest(conn, "freshdesk", "11", "v1", "2025-01-01T00:00:00Z", {"id": 11, "v": 1})
        v1_ingest(conn, "freshdesk", "11", "v2", "2025-01-02T00:00:00Z", {"id": 11, "v": 2})
        v1_ingest(conn, "freshdesk", "11", "v2", "2025-01-02T00:00:00Z", {"id": 11, "v": 2})  # already_exists
        v1_ingest(conn, "freshdesk", "11", "old", "2024-12-31T00:00:00Z", {"id": 11, "v": 0})  # stale
        v1_ingest(conn, "zendesk", "7", "z", "2025-01-01T00:00:00Z", {"type": "zen:event-type:ticket.created"},
                  delivery_id="zd-event-1")
        v1_ingest(conn, "zendesk", "8", "pruned", None, {"id": 8})
        conn.execute("INSERT INTO deliveries (source, outcome) VALUES ('zendesk', 'ignored')")
        # zendesk 7 was published; the deliveries of zendesk 8 were pruned by retention
        conn.execute("UPDATE deliveries SET published_at = now() WHERE external_id = '7'")
        conn.execute("DELETE FROM deliveries WHERE external_id = '8'")
        before = conn.execute("SELECT id, external_source, external_id, subject, revision, requester_name, tags"
                              " FROM tickets ORDER BY external_id").fetchall()

    assert [m.version for m in migrate(fresh_url).migrations] == list(range(1, latest_version() + 1))

    with connect(fresh_url) as conn:
        after = conn.execute("SELECT id, vendor, account, external_id, subject, revision, requester_name, tags"
                             " FROM tickets ORDER BY external_id").fetchall()
        assert [{**b, "external_source": None} for b in before] == [
            {**{k: v for k, v in a.items() if k not in ("vendor", "account")}, "external_source": None}
            for a in after]
        assert {(a["vendor"], a["account"]) for a in after} == {("freshdesk", ""), ("zendesk", "")}
        events = conn.execute("SELECT t.external_id, e.outcome, e.revision, e.payload, e.published_at IS NULL AS"
                              " pending, e.dedup_key FROM events e JOIN tickets t ON t.id = e.ticket_id"
                              " ORDER BY e.id").fetchall()
        assert [(e["external_id"], e["outcome"], e["revision"], e["pending"]) for e in events] == [
            ("11", "created", 1, True), ("11", "updated", 2, True), ("7", "created", 1, False),
            ("8", "created", 1, False)]
        # The latest event of each ticket carries the payload the ticket held.
        assert [e["payload"] for e in events] == [None, {"id": 11, "v": 2}, {"type": "zen:event-type:ticket.created"},
                                                  {"id": 8}]
        assert events[2]["dedup_key"] == "id:zd-event-1"
        audit = conn.execute("SELECT vendor, outcome FROM deliveries ORDER BY id").fetchall()
        assert [(d["vendor"], d["outcome"]) for d in audit] == [
            ("freshdesk", "already_exists"), ("freshdesk", "stale"), ("zendesk", "ignored")]

    # The upgraded database serves the new release: a redelivery of an event stored by the
    # first release is still one, and new events land on the migrated tickets.
    from conftest import make_env  # noqa: PLC0415
    from ingestion import create_app
    from ingestion.vendors import load_settings

    app = create_app(load_settings(make_env(fresh_url)))
    client = app.test_client()
    try:
        body, headers = signed("zendesk", {"type": "zen:event-type:ticket.created", "id": "zd-event-1",
                                           "detail": {"id": "7"}})
        assert client.post(ZENDESK_URL, data=body, headers=headers).json["status"] == "already_exists"
        body, headers = signed("freshdesk", {"ticket": {"id": 11, "status": "Closed"}})
        response = client.post(FRESHDESK_URL, data=body, headers=headers)
        assert (response.json["status"], response.json["ticket_id"]) == ("updated", str(created["out_ticket_id"]))
    finally:
        app.extensions["ingestion"].storage.close()


def test_a_migration_that_cannot_get_its_lock_gives_up_and_changes_nothing(fresh_url):
    with connect(fresh_url) as conn:
        conn.execute(FIRST_RELEASE)
    reader = psycopg.connect(fresh_url)  # a long report holding the table
    reader.execute("SELECT count(*) FROM tickets").fetchone()
    try:
        with pytest.raises(MigrationError) as refused:
            migrate(fresh_url, lock_timeout="300ms")
        assert "nothing was changed by it, run migrate again" in str(refused.value)
    finally:
        reader.rollback()
        reader.close()
    with connect(fresh_url) as conn:
        assert applied_versions(conn) == [1]  # the baseline needed no strong lock; 2 waits for a retry
        assert conn.execute("SELECT to_regclass('events')").fetchone()["to_regclass"] is None
    assert [m.version for m in migrate(fresh_url).migrations] == list(range(2, latest_version() + 1))


def test_two_migrators_at_once_apply_each_migration_once(fresh_url):
    results, errors = [], []

    def run():
        try:
            results.append([m.version for m in migrate(fresh_url).migrations])
        except Exception as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results, key=len) == [[], list(range(1, latest_version() + 1))]


def test_starting_the_service_changes_no_schema(fresh_url, make_app):
    """An ordinary start does no DDL: on a database nobody migrated, webhooks are refused
    with 503 (try again once the operator migrated) and no table appears."""
    from conftest import make_env  # noqa: PLC0415
    from ingestion import create_app
    from ingestion.vendors import load_settings

    app = create_app(load_settings(make_env(fresh_url)))
    try:
        body, headers = signed("freshdesk", {"id": 1})
        response = app.test_client().post(FRESHDESK_URL, data=body, headers=headers)
    finally:
        app.extensions["ingestion"].storage.close()
    assert response.status_code == 503
    with connect(fresh_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'").fetchone()["n"] == 0


# --- migrations outside a transaction (CREATE INDEX CONCURRENTLY) ------------------------
def write_migrations(directory, *files):
    """A migrations folder of its own (and an empty functions.sql), for the runner alone."""
    for number, text in enumerate(files, 1):
        (directory / f"{number:04d}_step_{number}.sql").write_text(text)
    functions = directory / "functions.sql.txt"
    functions.write_text("SELECT 1;\n")
    return {"directory": directory, "functions": functions}


def index_validity(url, name):
    with connect(url) as conn:
        row = conn.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " WHERE c.relname = %s", (name,)).fetchone()
    return None if row is None else row["indisvalid"]


def test_the_console_indexes_are_built_concurrently_outside_a_transaction(fresh_url):
    """PostgreSQL refuses CREATE INDEX CONCURRENTLY inside a transaction: that migration 12
    applies at all proves the runner ran it outside one, and every index it built is valid."""
    twelve = next(m for m in available() if m.version == 12)
    assert not twelve.transactional
    assert all("CONCURRENTLY IF NOT EXISTS" in statement for statement in twelve.statements())
    assert all(m.transactional for m in available() if m.version not in (12, 14))  # (14: Python, in batches)
    migrate(fresh_url)
    for name in ("events_newest", "events_type_newest", "events_outcome_newest", "events_payload",
                 "tickets_external_id", "tickets_requester_email"):
        assert index_validity(fresh_url, name) is True, name


def test_an_index_an_interrupted_concurrent_build_left_invalid_is_built_again(fresh_url, tmp_path):
    files = write_migrations(tmp_path, "CREATE TABLE t (a integer);\nINSERT INTO t VALUES (1), (1);\n",
                             f"{OUTSIDE_A_TRANSACTION}\n-- a unique index the duplicate rows make fail half-way\n"
                             "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n")
    with pytest.raises(MigrationError) as failed:
        migrate(fresh_url, **files)
    assert "migration 2 (step_2) failed at its statement 1 of 1" in str(failed.value)
    assert index_validity(fresh_url, "t_a") is False  # what PostgreSQL leaves behind
    with connect(fresh_url) as conn:
        assert applied_versions(conn) == [1]
        conn.execute("DELETE FROM t")
    assert [m.version for m in migrate(fresh_url, **files).migrations] == [2]
    assert index_validity(fresh_url, "t_a") is True  # dropped and built again, not kept as it was


def test_a_migration_outside_a_transaction_that_cannot_get_a_lock_stops_and_finishes_when_run_again(fresh_url,
                                                                                                   tmp_path):
    first = "CREATE TABLE t (a integer);\n"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    migrate(fresh_url, **write_migrations(tmp_path / "one", first))
    files = write_migrations(tmp_path / "two", first,
                             f"{OUTSIDE_A_TRANSACTION}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n"
                             "ALTER TABLE t\n    ADD COLUMN IF NOT EXISTS b integer;\n")
    reader = psycopg.connect(fresh_url)  # a long report holding the table: the ALTER waits for it
    reader.execute("SELECT count(*) FROM t").fetchone()
    try:
        with pytest.raises(MigrationError) as refused:
            migrate(fresh_url, lock_timeout="300ms", **files)
        assert "for a lock at its statement 2 of 2" in str(refused.value)
        assert "run migrate again to finish it" in str(refused.value)
    finally:
        reader.rollback()
        reader.close()
    assert index_validity(fresh_url, "t_a") is True  # the statement before it took effect
    with connect(fresh_url) as conn:
        assert applied_versions(conn) == [1]
    assert [m.version for m in migrate(fresh_url, **files).migrations] == [2]
    with connect(fresh_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 't'"
                            " AND column_name = 'b'").fetchone()["n"] == 1


@pytest.mark.parametrize("text, problem", [
    ("DO $$ BEGIN NULL; END $$;\n", "holds no $$ bodies"),
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a)\n", "does not end with ';'"),
])
def test_a_migration_outside_a_transaction_is_plain_statements(tmp_path, text, problem):
    path = tmp_path / "0001_odd.sql"
    path.write_text(f"{OUTSIDE_A_TRANSACTION}\n{text}")
    with pytest.raises(MigrationError, match=re.escape(problem)):
        Migration(1, "odd", path).statements()

"""DATABASE_READ_URL: the read API and the console read from a real streaming replica
(a hot standby made with pg_basebackup from the tests' PostgreSQL), fall back to the
primary while it is down, and the webhook path never needs it (storage/replica.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from signing import post
from test_console_overview import TOKEN, age, numbers, page, signed_in

from devserver import PostgresServer
from ingestion.storage import replica as replica_module
from ingestion.storage.console_overview import HOUR, SETTLE, clock_hour, rememberable

READ_TOKEN = "replica-reader-token-5e8f1a2b"
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture(scope="module")
def standby(postgres: PostgresServer, database_url: str, workdir: Path):
    server = postgres.standby(workdir / "standby").start()
    yield server
    server.stop()


@pytest.fixture
def replica(standby: PostgresServer, database_url: str):
    """The standby, running and replaying, with the tests' database on it."""
    if not standby.running:
        standby.start()
    url = database_url.replace(f":{database_url.split(':')[-1].split('/')[0]}/", f":{standby.port}/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
    yield url
    if not standby.running:
        standby.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


def caught_up(db, replica_url: str, timeout: float = 20, position: str = "pg_last_wal_replay_lsn()") -> None:
    """Until the replica has replayed (or, with `position`, received) everything the
    primary has written so far."""
    target = db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").fetchone()["lsn"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while not conn.execute(f"SELECT {position} >= %s::pg_lsn", (target,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


def pause(replica_url: str) -> None:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")


def resume(replica_url: str) -> None:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


def reads(served_by: str) -> float:
    return REGISTRY.get_sample_value("ingestion_db_replica_reads_total", {"served_by": served_by}) or 0


def subject(client) -> str:
    response = client.get("/api/v1/tickets/freshdesk/7", headers=AUTH)
    assert response.status_code == 200, response.data
    return response.json["subject"]


@pytest.fixture
def app(make_app, db, replica):
    return make_app(DATABASE_READ_URL=replica, API_TOKENS=f"{READ_TOKEN} {TOKEN}")


def test_reads_come_from_the_replica_and_webhooks_never_need_it(app, db, replica):
    client = app.test_client()
    assert post(client, "freshdesk", {"id": 7, "subject": "First words"}).status_code == 201
    caught_up(db, replica)
    pause(replica)  # the replica now stays where it is: what it shows proves who answered
    assert post(client, "freshdesk", {"id": 7, "subject": "Second words"}).json["status"] == "updated"
    before = reads("replica")
    assert subject(client) == "First words"
    events = client.get("/api/v1/tickets/freshdesk/7/events", headers=AUTH)
    assert events.status_code == 200 and len(events.json["events"]) == 1
    console = signed_in(app)
    ticket_page = console.get("/console/tickets/freshdesk/7")
    assert ticket_page.status_code == 200 and b"First words" in ticket_page.data
    assert b"Second words" not in ticket_page.data
    assert reads("replica") - before == 4  # the ticket; the events (their ticket, then them); the page
    resume(replica)
    caught_up(db, replica)
    assert subject(client) == "Second words"


def test_reads_fall_back_to_the_primary_while_the_replica_is_down_and_return_to_it(
        app, db, replica, standby, monkeypatch):
    monkeypatch.setattr(replica_module, "REPLICA_RETRY_SECONDS", 1.0)
    client = app.test_client()
    assert post(client, "freshdesk", {"id": 7, "subject": "Before the outage"}).status_code == 201
    standby.stop()
    assert post(client, "freshdesk", {"id": 7, "subject": "During the outage"}).json["status"] == "updated"
    before = reads("primary")
    started = time.monotonic()
    assert subject(client) == "During the outage"  # the primary's answer, not a 5xx
    assert time.monotonic() - started < 2
    assert subject(client) == "During the outage"  # the replica is left alone for a while
    assert reads("primary") - before == 2
    health = client.get("/health")
    assert health.status_code == 200 and health.json["status"] == "healthy"
    assert health.json["checks"]["replica"] == "unavailable"
    assert signed_in(app).get("/console/events").status_code == 200

    standby.start()
    caught_up(db, replica)
    pause(replica)
    assert post(client, "freshdesk", {"id": 7, "subject": "After the outage"}).json["status"] == "updated"
    time.sleep(1.1)  # REPLICA_RETRY_SECONDS, as set above
    assert subject(client) == "During the outage"  # the replica answers again (paused: one step behind)
    assert client.get("/health").json["checks"]["replica"] == "ok"


def test_without_a_replica_everything_reads_the_primary_and_health_does_not_mention_one(make_app, db):
    app = make_app(API_TOKENS=READ_TOKEN)
    client = app.test_client()
    assert post(client, "freshdesk", {"id": 7, "subject": "Only one database"}).status_code == 201
    before = reads("replica") + reads("primary")
    assert subject(client) == "Only one database"
    assert reads("replica") + reads("primary") == before
    assert "replica" not in client.get("/health").json["checks"]


def test_an_hour_is_remembered_only_once_the_replica_has_replayed_past_it():
    """Settled hours are counted once per process. On a replica an hour counted before the
    replica replayed it would stay short for good: it is kept only when the replica's last
    replayed commit is SETTLE past the hour's end (replay follows commit order)."""
    base = datetime(2026, 12, 5, 3, tzinfo=UTC)
    hours = [base + HOUR * n for n in range(5)]  # 03:00 .. 07:00
    assert rememberable(hours, None) == hours  # the primary: everything it has is there
    assert rememberable(hours, base + HOUR * 5 + SETTLE) == hours[:5]
    assert rememberable(hours, base + HOUR * 3 + SETTLE) == hours[:3]  # 05:00 and 06:00 may still be arriving
    assert rememberable(hours, base + HOUR * 3 + SETTLE - timedelta(seconds=1)) == hours[:2]
    assert rememberable(hours, base) == []  # a replica stopped before all of them


def test_a_role_without_monitoring_rights_keeps_hours_counted_on_a_healthy_replica(make_app, db, replica, database_url):
    """pg_stat_wal_receiver shows nothing to a role without pg_read_all_stats, which made
    every overview recount the day on a replica; the replay time needs no such right."""
    db.execute("DO $$ BEGIN CREATE ROLE replica_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    db.execute("GRANT pg_read_all_data TO replica_reader")
    reader_url = replica.replace("postgres@", "replica_reader@")
    app = make_app(DATABASE_READ_URL=reader_url, API_TOKENS=f"{READ_TOKEN} {TOKEN}")
    client = app.test_client()
    assert post(client, "freshdesk", {"id": 30}).status_code == 201
    age(db, "events", "true", 5)
    assert post(client, "freshdesk", {"id": 31}).status_code == 201  # a commit now: the replica replays past 5 h ago
    caught_up(db, replica)
    before = reads("replica")
    assert numbers(page(signed_in(app)), "arrivals-freshdesk")[:2] == [1, 2]
    assert reads("replica") > before  # the page was read on the replica, as replica_reader
    five_hours_ago = clock_hour(db.execute("SELECT now() - interval '5 hours' AS t").fetchone()["t"])
    assert app.extensions["ingestion"].storage.settled_hours.missing(None, [five_hours_ago]) == []


def test_a_frozen_replica_costs_a_read_the_statement_timeout_not_the_worker(make_app, db, replica, standby, monkeypatch):
    """SIGSTOPped, the replica keeps its connections open and never answers; its own
    statement_timeout cannot fire. The read's watchdog cuts it and the primary answers."""
    monkeypatch.setattr(replica_module, "REPLICA_RETRY_SECONDS", 1.0)
    app = make_app(DATABASE_READ_URL=replica, API_TOKENS=READ_TOKEN, DB_STATEMENT_TIMEOUT_MS="1000")
    client = app.test_client()
    assert post(client, "freshdesk", {"id": 7, "subject": "Before the freeze"}).status_code == 201
    caught_up(db, replica)
    assert subject(client) == "Before the freeze"  # a pooled connection to the replica now exists
    standby.pause()
    try:
        assert post(client, "freshdesk", {"id": 7, "subject": "During the freeze"}).json["status"] == "updated"
        started = time.monotonic()
        assert subject(client) == "During the freeze"  # the primary's answer
        assert time.monotonic() - started < 3.5  # 1 s statement timeout + 1 s margin (+ the machine)
        started = time.monotonic()
        assert subject(client) == "During the freeze"  # the replica is left alone meanwhile
        assert time.monotonic() - started < 0.5
    finally:
        standby.resume()

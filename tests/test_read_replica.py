"""DATABASE_READ_URL: the read API and the console read from a real streaming replica
(a hot standby made with pg_basebackup from the tests' PostgreSQL), fall back to the
primary while it is down, and the webhook path never needs it (storage/replica.py)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from signing import post
from test_console_overview import TOKEN, age, numbers, page, signed_in

from devserver import PostgresServer
from ingestion.storage import replica as replica_module

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


def test_the_overview_remembers_no_hour_counted_on_a_replica_that_is_behind(app, db, replica):
    """Settled hours are counted once per process. On a replica that has not applied what
    it received, an hour counted short would stay short: it is counted, not remembered."""
    client = app.test_client()
    caught_up(db, replica)
    pause(replica)
    for n in range(3):
        assert post(client, "freshdesk", {"id": 20 + n}).status_code == 201
    age(db, "events", "true", 5)
    caught_up(db, replica, position="pg_last_wal_receive_lsn()")  # received, not applied: behind
    console = signed_in(app)
    assert numbers(page(console), "arrivals-freshdesk")[:2] == [0, 0]  # the replica has none of them yet
    resume(replica)
    caught_up(db, replica)
    assert numbers(page(console), "arrivals-freshdesk")[:2] == [0, 3]

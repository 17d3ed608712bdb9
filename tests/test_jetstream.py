"""STREAM_TRANSPORT=nats: the relay publishes each event to NATS JetStream, a subject per
vendor and account, the event id as the message id; durable consumers read each event
once, through a republished batch and a server killed mid-publish (a real nats-server -js
started by the test)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import make_env
from devserver import NatsServer
from ingestion.config import ConfigError
from ingestion.errors import StreamUnavailable
from ingestion.jobs.relay import Relay
from ingestion.storage import Storage
from ingestion.storage.outbox import PENDING_EVENTS
from ingestion.stream.fields import stream_fields
from ingestion.stream.jetstream import STREAM_NAME, account_token, subject_for
from ingestion.vendors import load_settings
from processes import ROOT
from signing import post


@pytest.fixture
def nats_server(tmp_path: Path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    if server.running:
        server.stop()


@pytest.fixture
def relay_to(database_url):
    made = []

    def build(nats_url: str) -> Relay:
        settings = load_settings(make_env(database_url, STREAM_TRANSPORT="nats", NATS_URL=nats_url))
        storage = Storage(settings)
        relay = Relay(settings, storage)
        made.append(relay)
        return relay

    yield build
    for relay in made:
        relay.transport.close()
        relay.storage.close()


def consume(url: str, durable: str, subject: str = "ingestion.tickets.>", settle: float = 0.5) -> list[tuple[str, dict]]:
    """What a durable pull consumer reads (and acknowledges) until nothing more comes for
    `settle` seconds: (subject, fields) each, in stream order."""
    import nats

    async def read() -> list[tuple[str, dict]]:
        nc = await nats.connect(url)
        try:
            subscription = await nc.jetstream().pull_subscribe(subject, durable=durable, stream=STREAM_NAME)
            got = []
            while True:
                try:
                    messages = await subscription.fetch(100, timeout=settle)
                except TimeoutError:  # nats.errors.TimeoutError, or asyncio's bare one that
                    return got  # nats-py 2.16's fetch raises on some paths (both are this)
                for message in messages:
                    got.append((message.subject, json.loads(message.data)))
                    await message.ack()
        finally:
            await nc.close()

    return asyncio.run(read())


def pending(db) -> list[dict]:
    """The events the relay has yet to publish, as it reads them."""
    return db.execute(PENDING_EVENTS, {"limit": 10_000}).fetchall()


def test_an_account_becomes_one_subject_token_whatever_it_holds():
    assert account_token("4242") == "4242"
    assert account_token("acme-eu_1") == "acme-eu_1"
    assert account_token("") == "~"
    assert account_token("a.b c") == "a~2Eb~20c"
    assert account_token("*>~") == "~2A~3E~7E"  # a literal ~ is encoded too: "~" alone stays the empty account
    assert account_token("é") == "~C3~A9"
    assert subject_for("zendesk", "acme.zendesk.com") == "ingestion.tickets.zendesk.acme~2Ezendesk~2Ecom"


def test_each_event_is_one_message_on_its_vendors_and_accounts_subject(make_app, db, nats_server, relay_to):
    client = make_app().test_client()
    for n in range(3):
        assert post(client, "freshdesk", {"id": n, "subject": "v1"}).status_code == 201
    assert post(client, "freshdesk", {"id": 0, "subject": "v2"}).status_code == 200
    assert post(client, "zendesk", {"ticket_id": "9"}, **{"X-Zendesk-Account-Id": "4242"}).status_code == 201
    relay = relay_to(nats_server.url())
    rows = pending(db)
    assert relay.publish_batch() == 5
    assert relay.publish_batch() == 0 and relay.backlog() == 0

    got = consume(nats_server.url(), "everything")
    assert [fields for _, fields in got] == [stream_fields(row) for row in rows]
    assert [subject for subject, _ in got] == ["ingestion.tickets.freshdesk.~"] * 4 + ["ingestion.tickets.zendesk.4242"]
    assert [f["change"] for _, f in got] == ["created", "created", "created", "updated", "created"]
    only = consume(nats_server.url(), "one-tenant", subject="ingestion.tickets.zendesk.4242")
    assert [(f["source"], f["account"], f["external_id"]) for _, f in only] == [("zendesk", "4242", "9")]
    assert consume(nats_server.url(), "everything") == []  # a durable consumer resumes where it stopped


def test_a_batch_published_again_reaches_a_consumer_once(make_app, db, nats_server, relay_to, database_url):
    """The relay died after JetStream took the batch, before it marked it published: the
    next relay publishes it again, and JetStream drops the copies by message id."""
    client = make_app().test_client()
    for n in range(10):
        assert post(client, "freshdesk", {"id": n}).status_code == 201
    relay = relay_to(nats_server.url())
    rows = pending(db)
    relay.transport.publish(rows[:6])  # published, never marked
    assert relay.publish_batch() == 10
    assert relay.transport.duplicates == 6
    got = consume(nats_server.url(), "once")
    assert [f["event_id"] for _, f in got] == [str(row["id"]) for row in rows]


def test_while_nats_is_away_events_wait_in_the_outbox(make_app, db, nats_server, relay_to):
    client = make_app().test_client()
    relay = relay_to(nats_server.url())
    nats_server.stop()
    for n in range(5):
        assert post(client, "freshdesk", {"id": n}).status_code == 201  # the webhooks never need NATS
    started = time.monotonic()
    with pytest.raises(StreamUnavailable):
        relay.publish_batch()
    assert time.monotonic() - started < 3  # the connection gives up in 2 s (nats-py alone kept trying)
    assert relay.backlog() == 5
    nats_server.start()
    assert relay.publish_batch() == 5
    assert len(consume(nats_server.url(), "after")) == 5


def test_a_server_killed_mid_publish_loses_and_duplicates_nothing_for_a_consumer(make_app, db, nats_server, relay_to):
    client = make_app().test_client()
    tickets = 20
    for round_ in range(15):
        for n in range(tickets):
            assert post(client, "freshdesk", {"id": n, "subject": f"round {round_}"}).status_code in (200, 201)
    total = db.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
    assert total == 300
    relay = relay_to(nats_server.url())

    def backlog() -> int:  # (the relay's own connection is busy publishing)
        return db.execute("SELECT count(*) AS n FROM events WHERE published_at IS NULL").fetchone()["n"]

    # A batch whose acknowledgements all arrived before the kill is still marked after it,
    # so the count is taken once the relay has failed a batch: it publishes one batch at a
    # time, so by then the one in flight at the kill is committed or rolled back.
    failed_since_kill = threading.Event()
    publish_batch = relay.publish_batch

    def watched(*args, **kwargs):
        try:
            return publish_batch(*args, **kwargs)
        except StreamUnavailable:
            failed_since_kill.set()
            raise

    relay.publish_batch = watched
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, kwargs={
        "idle_sleep": 0.05, "prune_every": 1e9, "should_stop": stop.is_set, "batch": 10})
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while backlog() > total - 60:
            assert time.monotonic() < deadline, "the relay did not start publishing"
            time.sleep(0.005)
        nats_server.kill()  # mid-run: a batch may be on the wire
        assert failed_since_kill.wait(15), "the relay never noticed NATS was gone"
        published_while_down = total - backlog()
        assert published_while_down < total
        time.sleep(1.0)
        assert total - backlog() == published_while_down  # nothing marked without NATS
        nats_server.start()
        while backlog():
            assert time.monotonic() < deadline + 30, "the backlog did not drain"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
    got = consume(nats_server.url(), "after-the-crash")
    ids = [int(f["event_id"]) for _, f in got]
    assert sorted(ids) == [row["id"] for row in db.execute("SELECT id FROM events ORDER BY id")]
    assert len(ids) == len(set(ids)) == total
    by_ticket: dict[str, list[int]] = {}
    for _, fields in got:
        by_ticket.setdefault(fields["external_id"], []).append(int(fields["revision"]))
    assert all(revisions == sorted(revisions) for revisions in by_ticket.values())  # each ticket in commit order


def test_the_relay_command_publishes_to_jetstream(make_app, db, nats_server, database_url):
    client = make_app().test_client()
    for n in range(3):
        assert post(client, "freshdesk", {"id": n}).status_code == 201
    env = {**make_env(database_url, STREAM_TRANSPORT="nats", NATS_URL=nats_server.url()), "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    import os

    relay = subprocess.Popen([sys.executable, "-m", "ingestion", "relay"], cwd=ROOT, env={**os.environ, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while db.execute("SELECT count(*) AS n FROM events WHERE published_at IS NULL").fetchone()["n"]:
            assert time.monotonic() < deadline, relay.stdout.read1().decode() if relay.poll() is not None else ""
            time.sleep(0.1)
    finally:
        relay.terminate()
        relay.wait(20)
    assert len(consume(nats_server.url(), "command")) == 3


@pytest.mark.parametrize("env, variable", [
    ({"STREAM_TRANSPORT": "kafka"}, "STREAM_TRANSPORT"),
    ({"STREAM_TRANSPORT": "nats"}, "NATS_URL"),
    ({"STREAM_TRANSPORT": "nats", "NATS_URL": "http://127.0.0.1:4222"}, "NATS_URL"),
])
def test_a_transport_without_what_it_needs_stops_the_start(database_url, env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(make_env(database_url, **env))
    assert caught.value.variable == variable


def test_the_console_says_where_the_stream_is_when_it_is_jetstream(make_app, db, nats_server):
    from test_console_overview import TOKEN, element, page, signed_in, words

    app = make_app(STREAM_TRANSPORT="nats", NATS_URL=nats_server.url(), API_TOKENS=TOKEN)
    text = words(element(page(signed_in(app)), "stream"))
    assert "NATS JetStream" in text and "INGESTION_TICKETS" in text

"""The outbox relay: every created or updated ticket reaches the stream, at least once, in
order per ticket, and nothing is lost while Redis is away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import redis as redis_py

from conftest import make_env
from ingestion.vendors import load_settings
from ingestion.jobs.relay import STREAM, Relay
from ingestion.errors import StreamUnavailable
from ingestion.redis_guard import GuardedRedis
from ingestion.storage import Storage
from processes import ROOT
from signing import post


def entries(url):
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in redis_py.Redis.from_url(url).xrange(STREAM)]


@pytest.fixture
def relay_for(database_url):
    made = []

    def build(redis_url, guarded_class=GuardedRedis, **env):
        settings = load_settings(make_env(database_url, REDIS_URL=redis_url, **env))
        storage = Storage(settings)
        made.append(storage)
        return Relay(settings, storage, guarded_class(settings))

    yield build
    for storage in made:
        storage.close()


def test_each_created_updated_or_recorded_event_becomes_one_stream_entry(make_app, db, redis_url, relay_for):
    client = make_app(REDIS_URL=redis_url).test_client()
    created = [post(client, "freshdesk", {"id": n, "subject": "v1"}) for n in range(5)]
    post(client, "freshdesk", {"id": 0, "subject": "v2"})                     # updated
    post(client, "freshdesk", {"id": 1, "subject": "v1"})                     # already_exists: no event
    post(client, "freshdesk", {"id": 1, "comment": "hi"})                     # recorded
    post(client, "freshdesk", {"id": 2, "updated_at": "2000-01-01T00:00:00Z"})  # sets its timestamp: updated
    post(client, "freshdesk", {"id": 2, "updated_at": "1999-01-01T00:00:00Z"})  # stale: history only
    post(client, "zendesk", {"type": "zen:event-type:user.created", "id": "e"})  # ignored: no event
    post(client, "zendesk", {"ticket_id": "9"}, **{"X-Zendesk-Account-Id": "4242"})  # another account

    relay = relay_for(redis_url)
    assert relay.publish_batch() == 9
    assert relay.publish_batch() == 0
    assert relay.backlog() == 0

    stream = entries(redis_url)
    assert [(e["source"], e["account"], e["external_id"], e["change"], e["revision"]) for e in stream] == [
        ("freshdesk", "", "0", "created", "1"), ("freshdesk", "", "1", "created", "1"),
        ("freshdesk", "", "2", "created", "1"), ("freshdesk", "", "3", "created", "1"),
        ("freshdesk", "", "4", "created", "1"), ("freshdesk", "", "0", "updated", "2"),
        ("freshdesk", "", "1", "recorded", "1"), ("freshdesk", "", "2", "updated", "2"),
        ("zendesk", "4242", "9", "created", "1")]
    assert [e["ticket_id"] for e in stream[:5]] == [r.json["ticket_id"] for r in created]
    assert [e["event_id"] for e in stream[:5]] == [r.json["event_id"] for r in created]
    assert stream[6]["event_type"] == "ticket.comment_added"
    assert all(e["event_type"] and e["occurred_at"] for e in stream)


def test_a_vendor_deletion_reaches_the_stream_as_a_deleted_change_saying_which(make_app, db, redis_url, relay_for):
    client = make_app(REDIS_URL=redis_url).test_client()
    for ticket in ("1", "2"):
        post(client, "zendesk", {"type": "zen:event-type:ticket.created", "id": f"new-{ticket}",
                                 "detail": {"id": ticket, "subject": "hello"}})
    post(client, "zendesk", {"type": "zen:event-type:ticket.soft_deleted", "id": "soft-1", "detail": {"id": "1"}})
    post(client, "zendesk", {"type": "zen:event-type:ticket.undeleted", "id": "back-1", "detail": {"id": "1"}})
    post(client, "zendesk", {"type": "zen:event-type:ticket.permanently_deleted", "id": "gone-2",
                             "detail": {"id": "2"}})
    assert relay_for(redis_url).publish_batch() == 6
    assert [(e["external_id"], e["change"], e.get("deletion")) for e in entries(redis_url)] == [
        ("1", "created", None), ("2", "created", None), ("1", "deleted", "soft"), ("1", "updated", "restored"),
        ("2", "deleted", "permanent"), ("2", "forget", None)]


def test_what_each_deletion_did_reaches_the_stream_however_late_the_relay_publishes_it(make_app, db, redis_url,
                                                                                      relay_for):
    """The relay away (a Redis outage) while a ticket is deleted, restored, deleted again,
    then purged: each entry says what its own event did, not what the ticket is by the
    time the relay gets to it (the soft deletes went out as `permanent`, the restore as a
    plain update)."""
    client = make_app(REDIS_URL=redis_url).test_client()
    for n, kind in enumerate(("created", "soft_deleted", "undeleted", "soft_deleted", "permanently_deleted")):
        answer = post(client, "zendesk", {"type": f"zen:event-type:ticket.{kind}", "id": f"del-{n}",
                                          "detail": {"id": "del1", "subject": "hello",
                                                     "updated_at": f"2025-01-08T10:0{n}:00Z"}})
        assert answer.status_code in (200, 201), answer.json
    assert relay_for(redis_url).publish_batch() == 6
    assert [(e["change"], e.get("deletion")) for e in entries(redis_url)] == [
        ("created", None), ("deleted", "soft"), ("updated", "restored"), ("deleted", "soft"),
        ("deleted", "permanent"), ("forget", None)]


def test_events_wait_in_the_outbox_while_redis_is_away_and_none_is_lost(make_app, db, own_redis, relay_for):
    client = make_app(REDIS_URL=own_redis.url(), CIRCUIT_BREAKER_THRESHOLD="2").test_client()
    relay = relay_for(own_redis.url(), CIRCUIT_BREAKER_THRESHOLD="1", CIRCUIT_BREAKER_TIMEOUT="1")
    post(client, "freshdesk", {"id": "before"})
    assert relay.publish_batch() == 1

    own_redis.stop()
    for n in range(20):
        assert post(client, "freshdesk", {"id": f"during-{n}"}).status_code == 201
    with pytest.raises(StreamUnavailable):
        relay.publish_batch()
    assert relay.backlog() == 20

    own_redis.start()
    time.sleep(1.1)
    assert relay.publish_batch() == 20
    ids = [e["external_id"] for e in entries(own_redis.url())]
    assert ids == ["before"] + [f"during-{n}" for n in range(20)]


class InterruptedAfterAppend(GuardedRedis):
    """A real fault at the worst moment: the stream took the batch, then the relay's
    database connection is killed before it could mark the rows published (once)."""

    database_url = ""
    killed = False

    def call(self, operation, work):
        result = super().call(operation, work)
        if operation == "stream_publish" and not InterruptedAfterAppend.killed:
            InterruptedAfterAppend.killed = True
            with psycopg.connect(self.database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'ingestion' AND pid <> pg_backend_pid()")
        return result


def test_an_interrupted_publish_is_repeated_not_lost(make_app, db, redis_url, relay_for, database_url):
    client = make_app(REDIS_URL=redis_url).test_client()
    for n in range(3):
        post(client, "freshdesk", {"id": f"int-{n}"})
    InterruptedAfterAppend.database_url, InterruptedAfterAppend.killed = database_url, False
    # The batch is read again on a fresh connection and published again (storage retries
    # a connection that broke), then marked: nothing is lost, nothing left pending.
    assert relay_for(redis_url, guarded_class=InterruptedAfterAppend).publish_batch() == 3
    assert InterruptedAfterAppend.killed and relay_for(redis_url).publish_batch() == 0
    ids = [e["external_id"] for e in entries(redis_url)]
    assert ids == ["int-0", "int-1", "int-2"] * 2  # at least once: the batch came twice, in order


def test_the_stream_is_capped_near_stream_maxlen(make_app, db, redis_url, relay_for):
    client = make_app(REDIS_URL=redis_url).test_client()
    for n in range(300):
        post(client, "freshdesk", {"id": f"cap-{n}"})
    relay_for(redis_url, STREAM_MAXLEN="100").publish_batch()
    assert 100 <= redis_py.Redis.from_url(redis_url).xlen(STREAM) < 300  # approximate trimming


def test_old_delivery_rows_are_pruned_and_events_are_kept(make_app, db, redis_url, relay_for):
    client = make_app(REDIS_URL=redis_url).test_client()
    for n in range(4):
        post(client, "freshdesk", {"id": f"old-{n}"})
        post(client, "freshdesk", {"id": f"old-{n}"})  # a redelivery: a delivery row
    post(client, "freshdesk", {"id": "recent"})
    post(client, "freshdesk", {"id": "recent"})
    db.execute("UPDATE deliveries SET received_at = now() - interval '40 days' WHERE external_id LIKE 'old-%'")
    db.execute("UPDATE events SET received_at = now() - interval '40 days'")
    assert relay_for(redis_url).storage.prune_deliveries(retention_days=30) == 4
    assert [r["external_id"] for r in db.execute("SELECT external_id FROM deliveries")] == ["recent"]
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 5  # history is kept


def test_the_relay_command_drains_the_backlog_after_an_outage(make_app, db, database_url, own_redis):
    client = make_app(REDIS_URL=own_redis.url()).test_client()
    env = {**os.environ, **make_env(database_url, REDIS_URL=own_redis.url(), CIRCUIT_BREAKER_TIMEOUT="1")}
    relay = subprocess.Popen([sys.executable, "-m", "ingestion", "relay"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for n in range(5):
            post(client, "zendesk", {"id": f"cmd-{n}"})
        wait_for(lambda: len(entries(own_redis.url())) == 5)
        own_redis.stop()
        for n in range(5, 15):
            assert post(client, "zendesk", {"id": f"cmd-{n}"}).status_code == 201
        time.sleep(1)
        own_redis.start()
        wait_for(lambda: len(entries(own_redis.url())) >= 15, timeout=20)
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(15) == 0
    assert [e["external_id"] for e in entries(own_redis.url())] == [f"cmd-{n}" for n in range(15)]


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_relay_runs_with_an_empty_metrics_directory_setting_and_writes_no_files(
        make_app, db, database_url, redis_url, tmp_path):
    """compose and Kubernetes wrote PROMETHEUS_MULTIPROC_DIR: "" for "none".
    prometheus_client took the empty value for multiprocess mode and wrote its *.db files
    into the working directory: /app in the image, not writable, so the relay crash-looped
    (and, run from the repository, left the files committed at its top level)."""
    from devserver import free_port

    client = make_app(REDIS_URL=redis_url).test_client()
    assert post(client, "zendesk", {"id": "empty-dir"}).status_code == 201
    port = free_port()
    env = {**os.environ, **make_env(database_url, REDIS_URL=redis_url, RELAY_METRICS_PORT=str(port)),
           "PROMETHEUS_MULTIPROC_DIR": "", "PYTHONPATH": str(ROOT)}
    os.chmod(tmp_path, 0o555)  # like /app for the image's user: nothing may be written here
    relay = subprocess.Popen([sys.executable, "-m", "ingestion", "relay"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(entries(redis_url)) == 1)
        import requests

        wait_for(lambda: "ingestion_events_published_total 1.0" in _get(requests, f"http://127.0.0.1:{port}/metrics"))
    finally:
        relay.send_signal(signal.SIGTERM)
        code = relay.wait(15)
        os.chmod(tmp_path, 0o755)
    assert code == 0, relay.stderr.read().decode()[-2000:]
    assert list(tmp_path.iterdir()) == []


def _get(requests, url: str) -> str:
    try:
        return requests.get(url, timeout=2).text
    except requests.ConnectionError:
        return ""


def test_a_redaction_tells_consumers_to_forget_and_never_says_the_address(make_app, db, redis_url, relay_for):
    """Redactions never reached the stream: downstream copies kept the data. A forget
    entry names the ticket and the fields to drop (and how many events were masked)."""
    from ingestion.jobs.redact import redact_email

    app = make_app(REDIS_URL=redis_url)
    client = app.test_client()
    post(client, "freshdesk", {"ticket": {"id": "f1", "subject": "Refund", "requester": "Ana Perez <ana@example.com>",
                                          "latest_comment": "Thanks, Ana Perez"}})
    relay = relay_for(redis_url)
    relay.publish_batch()
    redact_email(app.extensions["ingestion"].storage, "ana@example.com")
    assert relay.publish_batch() == 1
    forget = entries(redis_url)[-1]
    assert (forget["change"], forget["forgotten"], forget["external_id"], forget["events"]) == (
        "forget", "person", "f1", "1")
    assert set(forget["fields"].split(",")) == {"requester_name", "requester_email"}
    assert forget["event_type"] == "ticket.redacted"
    assert not any("ana" in value.lower() for entry in entries(redis_url) for value in entry.values()
                   if entry["change"] == "forget")


def test_a_permanent_deletion_is_deleted_then_forget_on_the_stream(make_app, db, redis_url, relay_for):
    client = make_app(REDIS_URL=redis_url).test_client()
    post(client, "zendesk", {"ticket": {"id": "77", "subject": "Gone soon"}}, **{"X-Zendesk-Account-Id": "5"})
    post(client, "zendesk", {"type": "zen:event-type:ticket.permanently_deleted", "id": "perm-77", "account_id": 5,
                             "detail": {"id": "77"}, "event": {}})
    relay_for(redis_url).publish_batch()
    stream = [(e["change"], e.get("deletion"), e.get("forgotten")) for e in entries(redis_url)]
    assert stream == [("created", None, None), ("deleted", "permanent", None), ("forget", None, "ticket")]
    # What was forgotten, as the README's stream table says: the two events emptied (the
    # deletion's own with them) were counted 0.
    assert entries(redis_url)[-1]["events"] == "2"


def test_a_redacted_tickets_forget_entry_names_the_fields_emptied_at_its_new_revision(
        make_app, db, redis_url, relay_for):
    """`redact --ticket` emptied the ticket's subject and people while its forget entry said
    `fields: ""` at the revision before, and the ticket's revision did not move."""
    from ingestion.jobs.redact import redact_ticket

    app = make_app(REDIS_URL=redis_url)
    post(app.test_client(), "freshdesk", {"ticket": {"id": "r1", "subject": "Refund", "tags": ["vip"],
                                                     "requester": "Ana Perez <ana@example.com>"}})
    assert redact_ticket(app.extensions["ingestion"].storage, "freshdesk", "", "r1")["tickets"] == 1
    relay_for(redis_url).publish_batch()
    forget = entries(redis_url)[-1]
    assert (forget["change"], forget["forgotten"], forget["events"], forget["revision"]) == ("forget", "ticket", "1", "2")
    assert {"subject", "requester_name", "requester_email", "tags"} <= set(forget["fields"].split(","))
    assert db.execute("SELECT revision FROM tickets").fetchone()["revision"] == 2


def test_a_failing_retention_pass_never_holds_the_stream(make_app, db, redis_url, relay_for, monkeypatch):
    """A retention pass that failed (a new month's partition behind a long reader) stopped
    the relay publishing, and was tried again every few seconds: now publishing goes on
    and the pass waits minutes for its next try."""
    from ingestion.errors import DatabaseUnavailable
    from ingestion.jobs import relay as relaying

    post(make_app(REDIS_URL=redis_url).test_client(), "freshdesk", {"id": "during-retention"})
    tries = []

    def failing(storage, settings):
        tries.append(1)
        raise DatabaseUnavailable("canceling statement due to lock timeout")

    monkeypatch.setattr(relaying, "prune", failing)
    loops = iter(range(30))
    relay_for(redis_url).run_forever(idle_sleep=0.01, should_stop=lambda: next(loops, None) is None)
    assert [e["external_id"] for e in entries(redis_url)] == ["during-retention"] and tries == [1]


def test_a_relay_frozen_in_its_transaction_lets_another_publish(make_app, db, redis_url, relay_for, monkeypatch):
    """A relay stopped inside its publishing transaction (SIGSTOP, a paused container) held
    the relay lock, and every other relay published nothing until it woke. PostgreSQL now
    ends such a session (30 s; 1 s here), and the next relay publishes the batch."""
    import threading

    from ingestion.errors import DatabaseUnavailable
    from ingestion.storage import outbox

    monkeypatch.setattr(outbox, "RELAY_IDLE_LIMIT", "SET LOCAL idle_in_transaction_session_timeout = '1s'")
    post(make_app(REDIS_URL=redis_url).test_client(), "freshdesk", {"id": "frozen-relay"})
    frozen, other = relay_for(redis_url), relay_for(redis_url)
    outcome = []

    def freeze(rows):
        time.sleep(3)  # idle in its transaction, holding the lock

    def run_frozen():
        try:
            outcome.append(frozen.storage.publish_pending(10, freeze))
        except DatabaseUnavailable:
            outcome.append("ended by the server")

    thread = threading.Thread(target=run_frozen)
    thread.start()
    time.sleep(0.3)
    assert other.publish_batch() == 0  # the frozen one holds the lock
    time.sleep(1.5)
    assert other.publish_batch() == 1
    thread.join(10)
    assert outcome == ["ended by the server"]
    assert [e["external_id"] for e in entries(redis_url)] == ["frozen-relay"]

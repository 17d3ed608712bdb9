"""Quarantine: an authentic delivery that cannot be read is kept, shown, bounded and
replayed, against the real PostgreSQL (and Redis for the stream)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
import redis as redis_py
from prometheus_client import REGISTRY

from conftest import make_env
from ingestion import replaying
from ingestion.vendors import load_settings
from ingestion.config import Settings
from ingestion.normalize import ticket_fields
from ingestion.jobs.relay import STREAM, Relay
from ingestion.jobs.retention import prune
from ingestion.redis_guard import GuardedRedis
from ingestion.vendors import VENDORS
from signing import AUTH_ENV, SECRET_VALUES, credential_of, hmac_headers, post, signed, url_for, zendesk_signature

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "quarantine-api-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: A shape today's normalizer refuses (no id it knows) and the tests teach it.
LEARNABLE = {"ticket": {"caseNumber": 77, "subject": "Learned later", "status": "open"}}


def removed(reason: str) -> float:
    return REGISTRY.get_sample_value("ingestion_quarantine_removed_total", {"reason": reason}) or 0.0


def quarantined(vendor: str, reason: str) -> float:
    return REGISTRY.get_sample_value("ingestion_quarantined_total", {"vendor": vendor, "reason": reason}) or 0.0


@pytest.fixture
def learned(monkeypatch):
    """The normalizer after an upgrade that reads `caseNumber` as the ticket id."""
    monkeypatch.setattr(ticket_fields, "ID", (*ticket_fields.ID, "casenumber"))


def normalizers(settings: Settings) -> dict:
    return {vendor.name: vendor.normalizer(settings) for vendor in VENDORS}


def test_an_unreadable_authentic_delivery_is_kept_with_its_identifying_headers_only(client, db):
    body = b'{"detail": {"subject": "no id anywhere"}, "type": "zen:event-type:ticket.created"}'
    headers = {**zendesk_signature(body), "X-Zendesk-Webhook-Invocation-Id": "inv-123",
               "X-Zendesk-Account-Id": "4242", "X-Zendesk-Webhook-Id": "wh-9", "Content-Type": "application/json",
               "Cookie": "session=abc"}
    before = quarantined("zendesk", "invalid_field")
    response = client.post(url_for("zendesk"), data=body, headers=headers)
    assert response.status_code == 422 and "quarantine_id" in response.json
    [entry] = db.execute("SELECT * FROM quarantine").fetchall()
    assert bytes(entry["body"]) == body and entry["reason"] == "invalid_field" and entry["auth_method"]
    assert entry["headers"] == {"x-zendesk-webhook-invocation-id": "inv-123", "x-zendesk-account-id": "4242",
                                "x-zendesk-webhook-id": "wh-9", "content-type": "application/json",
                                "user-agent": "Werkzeug/3.1.9"}
    stored = json.dumps({k: str(v) for k, v in entry.items() if k != "body"})
    for secret in [*SECRET_VALUES, headers["X-Zendesk-Webhook-Signature"], "session=abc"]:
        assert secret not in stored
    assert quarantined("zendesk", "invalid_field") == before + 1


def test_without_a_credential_nothing_is_kept(make_app, db):
    """Development with no webhook credentials accepts unauthenticated calls: those are
    never stored, so nobody on the network can fill the quarantine."""
    client = make_app(APP_ENV="development", **{name: None for name in AUTH_ENV}).test_client()
    response = client.post(url_for("freshdesk"), data=b'{"ticket": {"subject": "no id"}}')
    assert response.status_code == 422 and "quarantine_id" not in response.json
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 0


def test_the_quarantine_keeps_the_newest_entries_up_to_its_bound(make_app, db):
    client = make_app(QUARANTINE_MAX_ENTRIES="3").test_client()
    before = removed("bound")
    ids = [post(client, "freshdesk", {"ticket": {"subject": f"no id {n}"}}).json["quarantine_id"] for n in range(5)]
    kept = [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id").fetchall()]
    assert kept == ids[-3:]
    assert removed("bound") == before + 2


def test_one_account_flooding_the_quarantine_evicts_its_own_entries_not_another_accounts(make_app, db):
    """Before: the bound was global, oldest first, so three bad deliveries signed with
    acme's own credential erased the victim's waiting entry."""
    app = make_app(QUARANTINE_MAX_ENTRIES="3")
    client = app.test_client()
    storage = app.extensions["ingestion"].storage
    for account, method, secret in (("victim", "hmac", "victim-hmac-5b8e2c7a1f3d"), ("acme", "hmac", "acme-hmac-9d4f1e6b2a7c")):
        sealed = app.extensions["ingestion"].sources.box.seal(secret)
        assert storage.add_credential("freshdesk", account, method, "default", sealed)

    def bad(account: str, secret: str, n: int) -> int:
        body = json.dumps({"ticket": {"subject": f"no id {n}"}}).encode()
        response = client.post(url_for("freshdesk", account), data=body, headers={
            "Content-Type": "application/json", **hmac_headers(credential_of("freshdesk", "hmac"), body, secret)})
        assert response.status_code == 422, response.json
        return response.json["quarantine_id"]

    victim = bad("victim", "victim-hmac-5b8e2c7a1f3d", 0)
    flood = [bad("acme", "acme-hmac-9d4f1e6b2a7c", n) for n in range(1, 6)]
    kept = [(r["id"], r["account"]) for r in db.execute("SELECT id, account FROM quarantine ORDER BY id").fetchall()]
    assert kept == [(victim, "victim"), (flood[-2], "acme"), (flood[-1], "acme")]


def test_retention_removes_only_entries_older_than_its_days(app, client, db):
    old, new = (post(client, "freshdesk", b"[]").json["quarantine_id"] for _ in range(2))
    db.execute("UPDATE quarantine SET received_at = now() - interval '31 days' WHERE id = %s", (old,))
    db.execute("UPDATE quarantine SET received_at = now() - interval '29 days' WHERE id = %s", (new,))
    before = removed("retention")
    services = app.extensions["ingestion"]
    assert prune(services.storage, services.settings) == {"deliveries": 0, "event_payloads": 0, "quarantine": 1}
    assert [r["id"] for r in db.execute("SELECT id FROM quarantine").fetchall()] == [new]
    assert removed("retention") == before + 1


def test_a_delivery_the_database_cannot_quarantine_is_a_503_so_the_vendor_retries(make_app, db, postgres):
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute("ALTER DATABASE ingestion_test SET default_transaction_read_only = on")
        try:
            response = post(make_app().test_client(), "freshdesk", {"ticket": {"subject": "no id"}})
        finally:
            admin.execute("ALTER DATABASE ingestion_test RESET default_transaction_read_only")
    assert response.status_code == 503 and 1 <= int(response.headers["Retry-After"]) <= 59
    assert "quarantine_id" not in response.json


def test_the_read_api_lists_filters_pages_and_shows_entries(make_app, db):
    client = make_app(API_TOKENS=TOKEN).test_client()
    fresh = post(client, "freshdesk", b'{"x": "\xff not utf-8"}').json["quarantine_id"]
    zen = post(client, "zendesk", {"ticket": {"subject": "no id"}}).json["quarantine_id"]
    assert client.get("/api/v1/quarantine").status_code == 401
    page = client.get("/api/v1/quarantine?limit=1", headers=BEARER).json
    assert [e["quarantine_id"] for e in page["entries"]] == [fresh] and page["next_cursor"] == str(fresh)
    page = client.get(f"/api/v1/quarantine?limit=1&cursor={page['next_cursor']}", headers=BEARER).json
    assert [e["quarantine_id"] for e in page["entries"]] == [zen] and page["next_cursor"] is None
    only = client.get("/api/v1/quarantine?vendor=zendesk", headers=BEARER).json["entries"]
    assert [e["quarantine_id"] for e in only] == [zen]
    entry = client.get(f"/api/v1/quarantine/{fresh}", headers=BEARER).json
    assert (entry["body"], entry["status"], entry["reason"]) == (None, 400, "not_utf8")
    assert entry["body_base64"] == "eyJ4IjogIv8gbm90IHV0Zi04In0="
    assert client.get(f"/api/v1/quarantine/{zen}", headers=BEARER).json["body"] == '{"ticket": {"subject": "no id"}}'
    for missing in ("999999", "abc", "0", "-1", "1" * 5000):  # (5000 digits: past int()'s limit, a 500 before)
        response = client.get(f"/api/v1/quarantine/{missing}", headers=BEARER)
        assert (response.status_code, response.json) == (404, {"error": "Quarantine entry not found"})
    assert client.get("/api/v1/quarantine?vendor=nobody", headers=BEARER).status_code == 400
    assert client.get("/api/v1/quarantine?cursor=" + "1" * 5000, headers=BEARER).status_code == 400


def test_a_page_of_large_entries_stops_at_the_byte_budget(make_app, db):
    """Six refused bodies of 900 KB (not UTF-8, so shown as base64): the first page stops
    once they pass PAGE_BUDGET_BYTES instead of holding up to 200 of them at once."""
    client = make_app(API_TOKENS=TOKEN).test_client()
    ids = [post(client, "freshdesk", b"\xff" + bytes([n]) * 900_000).json["quarantine_id"] for n in range(6)]
    first = client.get("/api/v1/quarantine", headers=BEARER).json
    shown = [entry["quarantine_id"] for entry in first["entries"]]
    assert 1 <= len(shown) < 6 and shown == ids[:len(shown)]
    assert first["next_cursor"] == str(shown[-1])
    rest = client.get(f"/api/v1/quarantine?cursor={first['next_cursor']}", headers=BEARER).json
    assert [entry["quarantine_id"] for entry in rest["entries"]] == ids[len(shown):]


def test_a_page_counts_each_entry_as_its_json_answer_weighs(make_app, db):
    """Bodies of control characters are text, each character six bytes once escaped:
    counted as base64, three entries of 900 KB made an 18 MB page."""
    client = make_app(API_TOKENS=TOKEN).test_client()
    ids = [post(client, "freshdesk", bytes([n + 1]) * 900_000).json["quarantine_id"] for n in range(3)]
    first = client.get("/api/v1/quarantine", headers=BEARER)
    assert [entry["quarantine_id"] for entry in first.json["entries"]] == ids[:1]
    assert len(first.data) < 6 * 1024 * 1024 and first.json["next_cursor"] == str(ids[0])


def test_a_scrape_reports_the_entries_waiting_and_the_oldest_age(client, db):
    post(client, "freshdesk", b"[]")
    db.execute("UPDATE quarantine SET received_at = now() - interval '2 hours'")
    text = client.get("/metrics").get_data(as_text=True)
    assert "ingestion_quarantine_entries 1.0" in text
    age = float(next(line.split()[1] for line in text.splitlines()
                     if line.startswith("ingestion_quarantine_oldest_age_seconds ")))
    assert 7200 <= age < 7300


def test_replay_ingests_what_the_normalizer_now_reads_once_with_its_stream_event(
        make_app, db, database_url, redis_url, monkeypatch):
    app = make_app(REDIS_URL=redis_url)
    services = app.extensions["ingestion"]
    refused = post(app.test_client(), "freshdesk", LEARNABLE)
    assert refused.status_code == 422

    still = replaying.replay(services, normalizers(services.settings), replaying.Selection())
    assert still.as_json()["failed"] == 1  # the normalizer has not learned yet: it stays
    [entry] = db.execute("SELECT attempts, last_attempt FROM quarantine").fetchall()
    assert entry["attempts"] == 1 and entry["last_attempt"] is not None

    monkeypatch.setattr(ticket_fields, "ID", (*ticket_fields.ID, "casenumber"))
    dry = replaying.replay(services, normalizers(services.settings), replaying.Selection(), dry_run=True)
    assert dry.outcomes == {"would_ingest": 1}
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 0

    done = replaying.replay(services, normalizers(services.settings), replaying.Selection())
    assert done.outcomes == {"created": 1}
    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["external_id"], ticket["subject"], ticket["status"], ticket["revision"]) == (
        "77", "Learned later", "open", 1)
    [event] = db.execute("SELECT * FROM events").fetchall()
    assert event["outcome"] == "created" and event["request_id"] == f"replay-{refused.json['quarantine_id']}"
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 0

    relay = Relay(load_settings(make_env(database_url, REDIS_URL=redis_url)), services.storage,
                  GuardedRedis(services.settings))
    relay.publish_batch()
    mine = [fields for _, fields in redis_py.Redis.from_url(redis_url).xrange(STREAM)
            if fields[b"event_id"] == str(event["id"]).encode()]
    assert [(f[b"external_id"], f[b"change"]) for f in mine] == [(b"77", b"created")]

    # Twice: nothing left to replay. An interrupted replay (the entry stored, not yet
    # removed) repeats the delivery, which is a redelivery: nothing changes.
    assert replaying.replay(services, normalizers(services.settings), replaying.Selection()).outcomes == {}
    db.execute("INSERT INTO quarantine (vendor, account, status, reason, error, body) "
               "VALUES ('freshdesk', '', 422, 'invalid_field', 'x', %s)", (signed("freshdesk", LEARNABLE)[0],))
    again = replaying.replay(services, normalizers(services.settings), replaying.Selection())
    assert again.outcomes == {"already_exists": 1}
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 1
    assert db.execute("SELECT revision FROM tickets").fetchone()["revision"] == 1


def test_replay_selects_by_vendor_id_and_time(app, db, learned):
    services = app.extensions["ingestion"]
    rows = []
    for n, vendor in enumerate(("freshdesk", "zendesk", "freshdesk")):
        rows.append(db.execute(
            "INSERT INTO quarantine (vendor, status, reason, error, body, received_at) "
            "VALUES (%s, 422, 'invalid_field', 'x', %s, now() - make_interval(hours => %s)) RETURNING id",
            (vendor, json.dumps({"ticket": {"caseNumber": f"sel-{n}"}}).encode(), 3 - n)).fetchone()["id"])
    select = replaying.Selection
    assert [r["id"] for r in replaying.selected(services, select(vendor="freshdesk"))] == [rows[0], rows[2]]
    assert [r["id"] for r in replaying.selected(services, select(entry_id=rows[1]))] == [rows[1]]
    since = db.execute("SELECT now() - interval '150 minutes' AS t").fetchone()["t"]
    assert [r["id"] for r in replaying.selected(services, select(since=since))] == [rows[1], rows[2]]
    assert [r["id"] for r in replaying.selected(services, select(until=since))] == [rows[0]]
    summary = replaying.replay(services, normalizers(services.settings), select(vendor="zendesk"))
    assert summary.outcomes == {"created": 1}
    assert [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id").fetchall()] == [rows[0], rows[2]]


def test_the_replay_command_prints_a_summary_and_fails_while_something_stays(database_url, db):
    readable = json.dumps({"ticketId": "cli-1", "title": "Read by today's normalizer"}).encode()
    for body in (readable, b'{"ticket": {"subject": "still no id"}}'):
        db.execute("INSERT INTO quarantine (vendor, status, reason, error, body) "
                   "VALUES ('freshdesk', 422, 'invalid_field', 'older normalizer', %s)", (body,))
    env = {**os.environ, **make_env(database_url)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ingestion", "replay", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    dry = run("--dry-run")
    lines = [json.loads(line) for line in dry.stdout.splitlines()]
    assert [line.get("outcome") for line in lines[:2]] == ["would_ingest", "failed"]
    assert lines[-1] == {"replayed": 2, "ingested": 0, "failed": 1, "dry_run": True,
                         "outcomes": {"failed": 1, "would_ingest": 1}}
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 2

    result = run("--vendor", "freshdesk")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "replayed": 2, "ingested": 1, "failed": 1, "dry_run": False, "outcomes": {"created": 1, "failed": 1}}
    assert db.execute("SELECT subject FROM tickets WHERE external_id = 'cli-1'").fetchone()["subject"] == \
        "Read by today's normalizer"
    assert run("--vendor", "nobody").returncode != 0

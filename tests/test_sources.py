"""Sources: every credential belongs to one vendor account, and nothing else writes there.

The review's attacks, each of which succeeded before sources: a credential writing into
another account (and purging its ticket so that the genuine update was dropped as
stale), an account named by a header or the body, an unsigned header turning an update
into a deletion. Then what an operator does with the CLI (two webhooks of one account,
rotation, disabling, removal), scoped read tokens, and the upgrade of a deployment that
ran on environment secrets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg.rows import dict_row

from ingestion.vendors import VENDORS
from processes import Gunicorn
from signing import (AUTH_ENV, SOURCES_KEY, basic, fixture, hmac_headers, post, credential_of, timestamped_headers,
                     url_for)

ROOT = Path(__file__).resolve().parent.parent
ACME_PASSWORD, VICTIM_PASSWORD = "acme-rule-9Xq2Lw7PzK4m", "victim-rule-3Rt8Vn1QsJ6y"
TRIGGER_SECRET, EVENTS_SECRET = "zd-trigger-webhook-5c1e8f2a9b7d", "zd-events-webhook-8d3a6b0e4f21"


def freshdesk_basic(payload: dict, user: str, password: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", **basic(user, password)}


def zendesk_signed(payload: dict, secret: str, **headers: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json",
                  **timestamped_headers(credential_of("zendesk", "timestamped"), body, secret), **headers}


def rows(db, query: str, *params) -> list[dict]:
    return db.execute(query, params).fetchall()


# --- the review's attacks ---------------------------------------------------------------------


def test_one_accounts_credential_cannot_write_into_or_purge_another_account(client, db, add_source):
    """Before: with one shared Freshdesk password the reviewer wrote into another account's
    ticket, then purged it (onTicketDelete), and that account's genuine update was
    answered `stale` and dropped for good."""
    add_source("freshdesk", "acme", "basic", f"acme:{ACME_PASSWORD}")
    add_source("freshdesk", "victim", "basic", f"victim:{VICTIM_PASSWORD}")
    body, headers = freshdesk_basic({"ticket": {"id": 5, "subject": "victim's own", "updated_at": "2025-03-01T10:00:00Z"}},
                                    "victim", VICTIM_PASSWORD)
    assert client.post(url_for("freshdesk", "victim"), data=body, headers=headers).status_code == 201

    # acme's credential on the victim's URL: refused, nothing stored or purged
    purge = {"event": "onTicketDelete", "data": {"ticket": {"id": 5}}}
    body, headers = freshdesk_basic(purge, "acme", ACME_PASSWORD)
    refused = client.post(url_for("freshdesk", "victim"), data=body, headers=headers)
    assert (refused.status_code, "error" in refused.json) == (401, True)
    # on its own URL the purge only ever reaches acme's ticket 5 (none), never the victim's
    assert client.post(url_for("freshdesk", "acme"), data=body, headers=headers).status_code in (200, 201)
    # the environment's shared password cannot write there either, and no other account exists
    env_body, env_headers = freshdesk_basic({"ticket": {"id": 5}}, *AUTH_ENV["FRESHDESK_WEBHOOK_AUTH"].split(":", 1))
    assert client.post(url_for("freshdesk", "victim"), data=env_body, headers=env_headers).status_code == 401
    unknown = client.post(url_for("freshdesk", "nobody"), data=env_body, headers=env_headers)
    assert (unknown.status_code, unknown.json["error"].startswith("No source freshdesk/nobody")) == (404, True)

    victim = rows(db, "SELECT subject, deleted_at, purged_at FROM tickets WHERE account = 'victim'")
    assert victim == [{"subject": "victim's own", "deleted_at": None, "purged_at": None}]
    body, headers = freshdesk_basic({"ticket": {"id": 5, "subject": "later", "updated_at": "2025-03-02T10:00:00Z"}},
                                    "victim", VICTIM_PASSWORD)
    later = client.post(url_for("freshdesk", "victim"), data=body, headers=headers)
    assert later.json["status"] == "updated"


def test_a_zendesk_delivery_naming_another_account_is_refused_and_nothing_is_stored(client, db, add_source):
    add_source("zendesk", "1001", "signing", TRIGGER_SECRET, name="trigger")
    for claim in ({"X-Zendesk-Account-Id": "2002"}, {}):
        payload = {"type": "zen:event-type:ticket.created", "id": f"e-{len(claim)}", "account_id": 2002,
                   "detail": {"id": "9", "subject": "hijack"}}
        body, headers = zendesk_signed(payload, TRIGGER_SECRET, **claim)
        response = client.post(url_for("zendesk", "1001"), data=body, headers=headers)
        assert response.status_code == 403 and "2002" in response.json["error"], response.json
    assert rows(db, "SELECT count(*) AS n FROM tickets")[0]["n"] == 0
    assert rows(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0
    # naming its own account is fine, in the header and in the body
    body, headers = zendesk_signed({"type": "zen:event-type:ticket.created", "id": "e-ok", "account_id": 1001,
                                    "detail": {"id": "9"}}, TRIGGER_SECRET, **{"X-Zendesk-Account-Id": "1001"})
    assert client.post(url_for("zendesk", "1001"), data=body, headers=headers).status_code == 201
    assert rows(db, "SELECT account, credential FROM tickets t JOIN events e ON e.ticket_id = t.id") == [
        {"account": "1001", "credential": "signing:trigger"}]


def test_the_environments_secret_cannot_claim_an_account_that_has_its_own_source(client, db, add_source):
    """On the bare URL the header picks the account's source: its credentials decide."""
    add_source("zendesk", "1001", "signing", TRIGGER_SECRET)
    payload = {"ticket": {"id": "9", "subject": "x"}}
    body, headers = zendesk_signed(payload, AUTH_ENV["ZENDESK_SIGNING_SECRET"], **{"X-Zendesk-Account-Id": "1001"})
    assert client.post(url_for("zendesk"), data=body, headers=headers).status_code == 401
    body, headers = zendesk_signed(payload, TRIGGER_SECRET, **{"X-Zendesk-Account-Id": "1001"})
    assert client.post(url_for("zendesk"), data=body, headers=headers).status_code == 201
    # an event's body account_id naming it, with no header: refused, not adopted
    event = {"type": "zen:event-type:ticket.created", "id": "e1", "account_id": 1001, "detail": {"id": "10"}}
    body, headers = zendesk_signed(event, AUTH_ENV["ZENDESK_SIGNING_SECRET"])
    assert client.post(url_for("zendesk"), data=body, headers=headers).status_code == 403


def test_a_zendesk_source_named_by_subdomain_binds_to_the_signed_account_id_and_refuses_others(
        client, db, add_source, database_url):
    """Before sources, `/zendesk/<name>` was documented as overriding the header: a source
    named `acme` while Zendesk sends account 1234567 is one account under two names. Its
    trigger deliveries (the account in the unsigned header only) keep working whatever
    the header says, and a forged header binds nothing; the first event whose signed body
    names an account_id binds it, and another id is then refused, in the header or the
    body. `sources unbind` lets the next signed body bind again."""
    add_source("zendesk", "acme", "signing", TRIGGER_SECRET, name="trigger")

    def trigger(ticket: str, header_id: str) -> int:
        body, headers = zendesk_signed({"ticket": {"id": ticket, "subject": "s"}}, TRIGGER_SECRET,
                                       **{"X-Zendesk-Account-Id": header_id})
        return client.post(url_for("zendesk", "acme"), data=body, headers=headers).status_code

    def event(ticket: str, account_id: int) -> int:
        payload = {"type": "zen:event-type:ticket.created", "id": f"e-{ticket}", "account_id": account_id,
                   "detail": {"id": ticket, "subject": "s"}}
        body, headers = zendesk_signed(payload, TRIGGER_SECRET, **{"X-Zendesk-Account-Id": str(account_id)})
        return client.post(url_for("zendesk", "acme"), data=body, headers=headers).status_code

    assert trigger("1", "666") == 201  # a forged header: accepted under acme, binds nothing
    assert rows(db, "SELECT count(*) AS n FROM account_ids")[0]["n"] == 0
    assert event("2", 1234567) == 201  # the signed body binds
    assert trigger("3", "1234567") == 201
    assert trigger("4", "666") == 403 and event("5", 7654321) == 403
    assert sorted((r["account"], r["external_id"]) for r in rows(db, "SELECT account, external_id FROM tickets")) == [
        ("acme", "1"), ("acme", "2"), ("acme", "3")]
    listed = json.loads(cli(database_url, "list").stdout)["sources"]
    assert [(s["account"], s["vendor_account_id"]) for s in listed] == [("acme", "1234567")]
    unbound = cli(database_url, "unbind", "zendesk", "acme")
    assert unbound.returncode == 0 and json.loads(unbound.stdout) == {"unbound": {"vendor": "zendesk", "account": "acme"}}
    assert cli(database_url, "unbind", "zendesk", "acme").returncode == 1
    time.sleep(2.1)  # SOURCES_CACHE_SECONDS: the workers' cached binding expires
    assert event("6", 7654321) == 201  # bound again, to the new id
    assert rows(db, "SELECT vendor_account_id FROM account_ids") == [{"vendor_account_id": "7654321"}]


def test_a_header_that_is_no_account_id_makes_no_account(client, db):
    """Before: on the bare URL, 5,000 digits in X-Zendesk-Account-Id made an account of
    that name, 9,000 made the database's index error the answer, and `01234` an account
    beside `1234`. Only an account id (no leading zero, at most 19 digits) is a claim."""
    for header in ("9" * 5000, "01234", "-5", "12 34"):
        response = post(client, "zendesk", {"ticket": {"id": "7", "subject": "s"}}, **{"X-Zendesk-Account-Id": header})
        assert response.status_code in (200, 201), (header, response.json)
    assert {r["account"] for r in rows(db, "SELECT account FROM tickets")} == {""}
    huge = {"type": "zen:event-type:ticket.created", "id": "e-huge", "account_id": int("9" * 30),
            "detail": {"id": "8", "subject": "s"}}
    assert post(client, "zendesk", huge).status_code == 201
    assert {r["account"] for r in rows(db, "SELECT account FROM tickets")} == {""}


def test_a_pinned_default_source_refuses_a_delivery_naming_another_account(make_app, db):
    client = make_app(ZENDESK_ACCOUNT="1001").test_client()
    assert post(client, "zendesk", {"ticket": {"id": "1"}}, **{"X-Zendesk-Account-Id": "1001"}).status_code == 201
    assert post(client, "zendesk", {"ticket": {"id": "2"}}).status_code == 201  # no claim: the pinned account
    assert post(client, "zendesk", {"ticket": {"id": "3"}}, **{"X-Zendesk-Account-Id": "2002"}).status_code == 403
    assert sorted(r["account"] for r in rows(db, "SELECT account FROM tickets")) == ["1001", "1001"]


def test_a_help_scout_header_that_contradicts_the_body_is_quarantined_and_deletes_nothing(client, db):
    """Before: a captured conversation re-sent with X-HelpScout-Event: convo.deleted marked
    the ticket deleted (the signature covers the body, not that header)."""
    conversation = fixture("helpscout", "v2_convo_status_closed")
    assert post(client, "helpscout", conversation, **{"X-HelpScout-Event": "convo.status"}).status_code == 201
    replay = post(client, "helpscout", conversation, **{"X-HelpScout-Event": "convo.deleted"})
    assert replay.status_code == 422 and "X-HelpScout-Event" in replay.json["error"]
    assert replay.json["quarantine_id"]
    assert rows(db, "SELECT deleted_at FROM tickets") == [{"deleted_at": None}]
    # and the deletion's own body (an id alone) is not an update under another name
    deleted = fixture("helpscout", "convo_deleted")
    assert post(client, "helpscout", deleted, **{"X-HelpScout-Event": "convo.status"}).status_code == 422
    assert post(client, "helpscout", deleted, **{"X-HelpScout-Event": "convo.deleted"}).status_code in (200, 201)


def test_no_other_help_scout_body_resent_as_convo_deleted_deletes_a_conversation(client, db):
    """A customer, a satisfaction rating (naming the conversation in `conversationId`) or
    a conversation that is not deleted, each re-sent with X-HelpScout-Event: convo.deleted."""
    conversation = fixture("helpscout", "v2_convo_created")
    assert post(client, "helpscout", conversation, **{"X-HelpScout-Event": "convo.created"}).status_code == 201
    number = json.loads(conversation)["id"]
    for body in (fixture("helpscout", "legacy_customer_created"),
                 {"id": number, "firstName": "Ann", "emails": [{"value": "ann@example.com"}]},
                 {"id": 77, "conversationId": number, "rating": "great", "comments": ""},
                 {"id": number, "state": "published"}):
        response = post(client, "helpscout", body, **{"X-HelpScout-Event": "convo.deleted"})
        assert response.status_code == 422 and response.json["quarantine_id"], (body, response.json)
    assert rows(db, "SELECT deleted_at FROM tickets") == [{"deleted_at": None}]


# --- what an operator does ----------------------------------------------------------------------


def test_two_zendesk_webhooks_of_one_account_each_sign_with_their_own_secret(client, db, add_source):
    add_source("zendesk", "1001", "signing", TRIGGER_SECRET, name="trigger")
    add_source("zendesk", "1001", "signing", EVENTS_SECRET, name="events")
    trigger, headers = zendesk_signed({"ticket": {"id": "7", "status": "open"}}, TRIGGER_SECRET)
    assert client.post(url_for("zendesk", "1001"), data=trigger, headers=headers).status_code == 201
    event, headers = zendesk_signed({"type": "zen:event-type:ticket.comment_added", "id": "c1", "account_id": 1001,
                                     "detail": {"id": "7"}, "event": {"comment": {"body": "hi"}}}, EVENTS_SECRET)
    assert client.post(url_for("zendesk", "1001"), data=event, headers=headers).status_code == 200
    other, headers = zendesk_signed({"ticket": {"id": "8"}}, "not-one-of-its-secrets-at-all")
    assert client.post(url_for("zendesk", "1001"), data=other, headers=headers).status_code == 401
    assert [r["credential"] for r in rows(db, "SELECT credential FROM events ORDER BY id")] == [
        "signing:trigger", "signing:events"]


def test_a_disabled_source_is_refused_and_a_removed_one_unknown_its_tickets_kept(app, client, db, add_source):
    add_source("freshdesk", "acme", "basic", f"acme:{ACME_PASSWORD}")
    storage = app.extensions["ingestion"].storage
    body, headers = freshdesk_basic({"ticket": {"id": 1}}, "acme", ACME_PASSWORD)
    assert client.post(url_for("freshdesk", "acme"), data=body, headers=headers).status_code == 201
    storage.set_source_enabled("freshdesk", "acme", False)
    time.sleep(app.extensions["ingestion"].settings.sources_cache_seconds + 0.1)
    disabled = client.post(url_for("freshdesk", "acme"), data=body, headers=headers)
    assert (disabled.status_code, disabled.json["error"]) == (401, "Source freshdesk/acme is disabled")
    storage.remove_source("freshdesk", "acme")
    time.sleep(app.extensions["ingestion"].settings.sources_cache_seconds + 0.1)
    assert client.post(url_for("freshdesk", "acme"), data=body, headers=headers).status_code == 404
    assert rows(db, "SELECT account FROM tickets") == [{"account": "acme"}]


def test_the_seeds_bare_urls_work_with_environment_secrets_as_before(client, db):
    own = {"helpscout": fixture("helpscout", "v2_convo_created"), "front": fixture("front", "rule_inbound_message_full"),
           "intercom": fixture("intercom", "ticket_created"), "jira": fixture("jira", "cloud_issue_created"),
           "hubspot": fixture("hubspot", "life_01_creation")}  # (HubSpot's event names portal 62515)
    for vendor in VENDORS:
        payload = own.get(vendor.name, {"ticket": {"id": 31}})
        extra = {"X-HelpScout-Event": "convo.created"} if vendor.name == "helpscout" else {}
        response = post(client, vendor.name, payload, **extra)
        assert response.status_code == 201, (vendor.name, response.json)
    zendesk = post(client, "zendesk", {"ticket": {"id": 32}}, **{"X-Zendesk-Account-Id": "4242"})
    assert zendesk.status_code == 201  # the header names the account, as it did
    accounts = rows(db, "SELECT vendor, account, e.credential FROM tickets t JOIN events e ON e.ticket_id = t.id "
                        "ORDER BY e.id")
    # an Intercom notification names its workspace (app_id), HubSpot's event its portal:
    # the bare URL stores each there
    named = {"hubspot": "62515", "intercom": "abc123def"}
    assert [(a["vendor"], a["account"]) for a in accounts] == [
        *((vendor.name, named.get(vendor.name, "")) for vendor in VENDORS), ("zendesk", "4242")]
    assert {a["credential"] for a in accounts} == {"hmac:env", "signing:env"}


def test_scoped_api_tokens_read_their_own_account_only(make_app, db):
    scoped, everything = "scoped-read-token-4f9a2c7e1b", "unscoped-read-token-8b3d6e0a5c"
    client = make_app(API_TOKENS=f"{scoped}@zendesk/1001 {everything}").test_client()
    for account in ("1001", "2002"):
        assert post(client, "zendesk", {"ticket": {"id": "7"}}, **{"X-Zendesk-Account-Id": account}).status_code == 201
        post(client, "zendesk", b'{"ticket": {"subject": "no id"}}', **{"X-Zendesk-Account-Id": account})

    def get(token: str, path: str):
        return client.get(path, headers={"Authorization": f"Bearer {token}"})

    assert get(scoped, "/api/v1/tickets/zendesk/7?account=1001").status_code == 200
    assert get(scoped, "/api/v1/tickets/zendesk/7?account=2002").status_code == 404
    assert get(scoped, "/api/v1/tickets/zendesk/7/events?account=2002").status_code == 404
    assert get(scoped, "/api/v1/tickets/freshdesk/7").status_code == 404
    assert get(everything, "/api/v1/tickets/zendesk/7?account=2002").status_code == 200
    listed = get(scoped, "/api/v1/quarantine").json["entries"]
    assert [e["account"] for e in listed] == ["1001"]
    assert len(get(everything, "/api/v1/quarantine").json["entries"]) == 2
    other = next(e for e in get(everything, "/api/v1/quarantine").json["entries"] if e["account"] == "2002")
    assert get(scoped, f"/api/v1/quarantine/{other['quarantine_id']}").status_code == 404


# --- the command line -------------------------------------------------------------------------


def cli(database_url: str, *args: str, secret: str | None = None, **env: str) -> subprocess.CompletedProcess:
    import os

    environment = {**os.environ, "APP_ENV": "production", "DATABASE_URL": database_url,
                   "SOURCES_ENCRYPTION_KEY": SOURCES_KEY, **env}
    return subprocess.run([sys.executable, "-m", "ingestion", "sources", *args], cwd=ROOT, env=environment,
                          input=(secret + "\n") if secret is not None else "", capture_output=True, text=True,
                          timeout=60)


def test_the_cli_adds_lists_rotates_and_retires_without_ever_printing_a_secret(database_url, db):
    added = cli(database_url, "add", "zendesk", "1001", "--method", "signing", "--name", "trigger",
                secret=TRIGGER_SECRET)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"added": {"vendor": "zendesk", "account": "1001", "method": "signing",
                                                  "name": "trigger"},
                                        "webhook_path": "/api/v1/ingest/webhook/zendesk/1001"}
    rotated = cli(database_url, "rotate", "zendesk", "1001", "--method", "signing", "--name", "trigger",
                  secret=EVENTS_SECRET)
    listed = cli(database_url, "list")
    [source] = json.loads(listed.stdout)["sources"]
    assert source["credentials"] == [{"method": "signing", "name": "trigger", "value": "stored", "rotating": True,
                                      "updated_at": source["credentials"][0]["updated_at"]}]
    retired = cli(database_url, "retire", "zendesk", "1001", "--method", "signing", "--name", "trigger")
    assert json.loads(retired.stdout)["what"] == "previous"
    weak = cli(database_url, "add", "zendesk", "1001", "--method", "basic", secret="agent:password1234")
    assert weak.returncode == 1 and "guessable" in weak.stderr
    duplicate = cli(database_url, "add", "zendesk", "1001", "--method", "signing", "--name", "trigger",
                    secret=TRIGGER_SECRET)
    assert duplicate.returncode == 1 and "rotate" in duplicate.stderr
    for result in (added, rotated, listed, retired, weak, duplicate):
        for secret in (TRIGGER_SECRET, EVENTS_SECRET, "password1234"):
            assert secret not in result.stdout + result.stderr
    stored = rows(db, "SELECT current, previous FROM source_credentials")
    assert stored[0]["previous"] is None
    assert TRIGGER_SECRET.encode() not in bytes(stored[0]["current"]) and EVENTS_SECRET.encode() not in bytes(
        stored[0]["current"])


def test_retire_without_a_rotation_changes_nothing_unless_told_to_retire_the_credential(database_url, db,
                                                                                         make_app):
    """Before: `retire` with no rotation under way deleted the live credential (a retried
    script locked the source's webhooks out). And a source left with no credential is
    refused even in development, which accepts unauthenticated calls only where nothing
    is configured at all."""
    assert cli(database_url, "add", "freshdesk", "acme", "--method", "hmac", secret="acme-hmac-7c2e9f1a4b8d").returncode == 0
    refused = cli(database_url, "retire", "freshdesk", "acme", "--method", "hmac")
    assert refused.returncode == 1 and "--credential" in refused.stderr
    assert rows(db, "SELECT count(*) AS n FROM source_credentials")[0]["n"] == 1
    retired = cli(database_url, "retire", "freshdesk", "acme", "--method", "hmac", "--credential")
    assert retired.returncode == 0 and json.loads(retired.stdout)["what"] == "credential"
    for environment in ("production", "development"):
        client = make_app(APP_ENV=environment).test_client()
        response = client.post(url_for("freshdesk", "acme"), json={"ticket": {"id": 1}})
        assert response.status_code == 401 and response.json["error"] == "Source freshdesk/acme has no credentials"
    assert rows(db, "SELECT count(*) AS n FROM tickets")[0]["n"] == 0


def test_the_cli_refuses_to_store_a_secret_without_the_key(database_url, db):
    result = cli(database_url, "add", "freshdesk", "acme", "--method", "hmac", secret="acme-hmac-7c2e9f1a4b8d",
                 SOURCES_ENCRYPTION_KEY="")
    assert result.returncode == 1 and "SOURCES_ENCRYPTION_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert rows(db, "SELECT count(*) AS n FROM sources")[0]["n"] == 0


def test_a_wrong_encryption_key_stops_start_up_with_one_line(database_url, db, tmp_path):
    assert cli(database_url, "add", "freshdesk", "acme", "--method", "hmac", secret="acme-hmac-7c2e9f1a4b8d").returncode == 0
    wrong = "d3JvbmctdGVzdC1rZXktdGhhdC1pcy0zMi1ieXRlcyE="
    server = Gunicorn({"APP_ENV": "production", "DATABASE_URL": database_url, "SOURCES_ENCRYPTION_KEY": wrong,
                       **AUTH_ENV}, workers=1, log_dir=tmp_path)
    with pytest.raises(RuntimeError) as caught:
        server.start(timeout=20)
    assert "configuration error: SOURCES_ENCRYPTION_KEY: cannot decrypt the stored secret of freshdesk/acme" \
        in str(caught.value)
    assert "Traceback" not in server.log()
    malformed = cli(database_url, "list", SOURCES_ENCRYPTION_KEY="not-a-key")
    assert malformed.returncode == 1 and "is not a Fernet key" in malformed.stderr and "Traceback" not in malformed.stderr


def test_a_secret_stored_under_another_key_is_a_503_to_retry_never_a_500(make_app, db, database_url):
    """The CLI run with another SOURCES_ENCRYPTION_KEY than the running service (or with one
    while the service has none): the vendor is told to retry until the operator fixes the
    key, and the log says which source, never a secret."""
    other_key = "b3RoZXItdGVzdC1rZXktb2YtMzItYnl0ZXMtbG9uZyE="
    assert cli(database_url, "add", "freshdesk", "acme", "--method", "hmac", secret="acme-hmac-7c2e9f1a4b8d",
               SOURCES_ENCRYPTION_KEY=other_key).returncode == 0
    for key in (SOURCES_KEY, ""):
        client = make_app(SOURCES_ENCRYPTION_KEY=key).test_client()
        response = post(client, "freshdesk", {"ticket": {"id": 1}}, account="acme")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5", response.json
        assert "SOURCES_ENCRYPTION_KEY" in response.json["error"] and "acme-hmac" not in response.get_data(as_text=True)
    assert rows(db, "SELECT count(*) AS n FROM tickets")[0]["n"] == 0


def test_a_rotation_with_the_cli_reaches_every_gunicorn_worker_within_five_seconds(database_url, db, tmp_path):
    """Three workers, no restart: the new secret is accepted and the old one stays valid
    until retired, on every worker (each request is a new connection: the kernel spreads
    them), each change within SOURCES_CACHE_SECONDS."""
    first, second = "acme-first-secret-2b7e1c9d4f", "acme-second-secret-6a0f3e8c1d"
    server = Gunicorn({"APP_ENV": "production", "DATABASE_URL": database_url, "SOURCES_ENCRYPTION_KEY": SOURCES_KEY,
                       "RATE_LIMIT_PER_MINUTE": "1000000", **AUTH_ENV}, workers=3, log_dir=tmp_path).start()
    hmac_credential = credential_of("freshdesk", "hmac")
    counter = iter(range(10**6))

    def status(secret: str) -> int:
        body = json.dumps({"ticket": {"id": next(counter)}}).encode()
        headers = {"Content-Type": "application/json", **hmac_headers(hmac_credential, body, secret)}
        return requests.post(server.url + url_for("freshdesk", "acme"), data=body, headers=headers, timeout=10).status_code

    def settles(secret: str, expected: int) -> float:
        """Seconds until 20 requests in a row (spread over the workers) answer `expected`."""
        started = time.monotonic()
        streak = 0
        while streak < 20:
            assert time.monotonic() - started < 8, f"not settled on {expected} after 8 s"
            streak = streak + 1 if status(secret) == expected else 0
        return time.monotonic() - started

    try:
        assert status(first) == 404  # no source yet (and every worker has looked it up)
        assert cli(database_url, "add", "freshdesk", "acme", "--method", "hmac", secret=first).returncode == 0
        assert settles(first, 201) < 5
        assert cli(database_url, "rotate", "freshdesk", "acme", "--method", "hmac", secret=second).returncode == 0
        assert settles(second, 201) < 5
        assert status(first) == 201  # still valid as the previous value
        assert cli(database_url, "retire", "freshdesk", "acme", "--method", "hmac").returncode == 0
        assert settles(first, 401) < 5
        assert status(second) == 201
        log = server.log()
        assert first not in log and second not in log
    finally:
        server.stop()
    credentials = {r["credential"] for r in rows(db, "SELECT DISTINCT credential FROM events")}
    assert credentials == {"hmac:default", "hmac:default (previous)"}


# --- upgrading --------------------------------------------------------------------------------


def test_an_upgrade_keeps_the_accounts_in_use_working_with_the_environments_secrets(postgres, make_app, tmp_path):
    """Each vendor account that had tickets before sources becomes a source linked to the
    environment's credentials: its URL and secrets keep working; a new account needs one."""
    import shutil
    import uuid

    from ingestion.storage.migrate import DIRECTORY, migrate

    url = postgres.create_database(f"upgrade_{uuid.uuid4().hex[:10]}")
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(DIRECTORY.glob("*.sql"))[:8]:
        shutil.copy(path, before)
    empty = tmp_path / "functions.sql"
    empty.write_text("SELECT 1;\n")
    migrate(url, directory=before, functions=empty)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tickets (vendor, account, external_id) VALUES ('freshdesk', 'acme.freshdesk.com', "
                     "'1'), ('zendesk', '4242', '2'), ('helpscout', '', '3'), ('zendesk', 'acme', '4')")
        conn.execute("INSERT INTO quarantine (vendor, account, status, reason, error, body) VALUES "
                     "('helpscout', 'only-quarantined', 422, 'invalid_field', 'e', '\\x7b7d')")
    migrate(url)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        linked = conn.execute("SELECT vendor, account, method, name FROM source_credentials ORDER BY 1, 2, 3").fetchall()
    assert [(r["vendor"], r["account"], r["method"], r["name"]) for r in linked] == [
        ("freshdesk", "acme.freshdesk.com", "basic", "env"), ("freshdesk", "acme.freshdesk.com", "hmac", "env"),
        ("helpscout", "only-quarantined", "hmac", "env"),
        ("zendesk", "4242", "basic", "env"), ("zendesk", "4242", "signing", "env"),
        ("zendesk", "acme", "basic", "env"), ("zendesk", "acme", "signing", "env")]

    app = make_app(DATABASE_URL=url)
    client = app.test_client()
    assert post(client, "freshdesk", {"ticket": {"id": 1, "subject": "s"}}, account="acme.freshdesk.com").status_code == 200
    assert post(client, "zendesk", {"ticket": {"id": 2, "subject": "s"}}, **{"X-Zendesk-Account-Id": "4242"}).json[
        "status"] == "updated"
    assert post(client, "freshdesk", {"ticket": {"id": 1}}, account="new.freshdesk.com").status_code == 404
    # `/zendesk/acme`, with the header Zendesk always sends, as before the upgrade
    assert post(client, "zendesk", {"ticket": {"id": 4, "subject": "s"}}, account="acme",
                **{"X-Zendesk-Account-Id": "4343"}).json["status"] == "updated"

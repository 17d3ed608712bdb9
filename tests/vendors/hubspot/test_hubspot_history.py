"""HubSpot through the whole service (real PostgreSQL): its v3 signature, its portal as
the account, and the same outcomes, idempotency and history as the other vendors for one
ticket's life (the life_* fixtures, in order), each event posted on its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from signing import AUTH_ENV, TEST_CLIENT_BASE, fixture, post, url_for

from ingestion.vendors import hubspot
from ingestion.verifiers import Target, TimestampedSignature

LIFE = ["life_01_creation", "life_02_subject", "life_03_content", "life_04_priority_high", "life_05_owner",
        "life_06_category", "life_07_stage_waiting_on_contact", "life_08_custom_property",
        "life_09_association_contact", "life_10_stage_closed", "life_11_owner_cleared", "life_12_deletion",
        "life_13_restore"]
SECRET = AUTH_ENV["HUBSPOT_CLIENT_SECRET"]
SIGNATURE, STAMP = "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"


def deliver(client, case: str, account: str | None = None):
    return post(client, "hubspot", fixture("hubspot", case), account)


def hubspot_v3(body: bytes, uri: str, secret: str = SECRET, stamp: str | None = None,
               method: str = "POST") -> dict[str, str]:
    """What HubSpot's documentation computes: base64(HMAC-SHA256(client secret,
    method + URI + body + timestamp)), the timestamp in milliseconds."""
    stamp = stamp or str(int(time.time() * 1000))
    message = method.encode() + uri.encode() + body + stamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return {SIGNATURE: base64.b64encode(digest).decode(), STAMP: stamp, "Content-Type": "application/json"}


def test_a_tickets_life_is_one_ticket_and_every_event_in_order(client, db):
    outcomes = [deliver(client, case).json["status"] for case in LIFE]
    assert outcomes == ["created"] + ["updated"] * 10 + ["deleted", "updated"], outcomes

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["account"], ticket["external_id"], ticket["revision"]) == (
        "hubspot", "62515", "17395620143", len(LIFE))
    assert {name: ticket[name] for name in ("subject", "description", "status", "priority", "type", "assignee_id",
                                            "custom_fields", "deleted_at")} == {
        "subject": "Invoice PDF will not download",
        "description": "Clicking \u201cDownload PDF\u201d on invoice INV-2207 shows a blank page.\n"
                       "Tried Firefox and Chrome.",
        "status": "closed", "priority": "high", "type": "product_issue", "assignee_id": None,
        "custom_fields": {"hs_pipeline": "0"}, "deleted_at": None}
    assert (ticket["vendor_created_at"].isoformat(), ticket["vendor_updated_at"].isoformat()) == (
        "2026-03-02T09:00:00+00:00", "2026-03-02T10:01:00+00:00")

    events = db.execute("SELECT event_type, vendor_event_id, changes FROM events ORDER BY id").fetchall()
    assert [e["vendor_event_id"] for e in events] == [str(4100000000 + n) for n in range(1, 14)]
    assert events[9]["changes"] == {"status": {"previous": None, "current": "closed"}}
    assert events[8]["changes"] == {"associations": {"added": [{"type": "TICKET_TO_CONTACT", "id": "316126906049"}],
                                                     "removed": []}}


def test_every_redelivery_is_answered_as_one_and_stores_nothing_new(client, db):
    """A retry carries the same eventId (and a higher attemptNumber, which changes the
    body): the event id, not the bytes, identifies it."""
    for case in LIFE:
        deliver(client, case)
    again = [post(client, "hubspot", json.dumps({**json.loads(fixture("hubspot", case)), "attemptNumber": 3}))
             for case in LIFE]
    assert {(r.status_code, r.json["status"]) for r in again} == {(200, "already_exists")}
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == len(LIFE)


def test_a_late_event_older_than_the_ticket_is_kept_and_changes_nothing(client, db):
    """HubSpot does not keep order ("Use the occurredAt property")."""
    deliver(client, "life_10_stage_closed")
    late = deliver(client, "life_07_stage_waiting_on_contact")
    assert late.json["status"] == "stale"
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "closed"


def test_a_deleted_ticket_keeps_its_fields_and_is_restored(client, db):
    for case in ("life_02_subject", "life_12_deletion"):
        deliver(client, case)
    ticket = db.execute("SELECT subject, deleted_at, purged_at FROM tickets").fetchone()
    assert ticket["subject"] == "Invoice PDF will not download" and ticket["deleted_at"] is not None
    assert ticket["purged_at"] is None  # the recycle bin keeps it 90 days: never forgotten here
    assert deliver(client, "life_13_restore").json["status"] == "updated"
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is None


@pytest.mark.parametrize("case", ["sim_deal_creation", "sim_conversation_newmessage",
                                  "sesam_company_deletion_attempt5"])
def test_events_not_about_a_ticket_are_ignored_and_audited(client, db, case):
    response = deliver(client, case)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0
    assert [r["vendor"] for r in db.execute("SELECT vendor FROM deliveries")] == ["hubspot"]


def test_the_portals_own_stage_names_come_from_the_environment(make_app, db):
    client = make_app(HUBSPOT_STATUS_NAMES="4=resolved, 2=awaiting customer").test_client()
    deliver(client, "life_07_stage_waiting_on_contact")
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "awaiting customer"
    deliver(client, "life_10_stage_closed")
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "resolved"


# --- the signature --------------------------------------------------------------------------
@pytest.mark.parametrize("body, uri, stamp, signature", [
    # HubSpot's own vector: hubspot-api-python tests/spec/utils/test_signature.py @a2a528a9
    (b"{'example_field':'example_value'}", "https://www.example.com/webhook_uri", "1693657560000",
     "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="),
    # the docs' v1 example body, signed v3 (issue 23's facts, recomputed)
    (fixture("hubspot", "hubspot_docs_v1_signature_example_contact_creation"), "https://www.example.com/webhook_uri",
     "1564113600000", "DxmVAjFNa2xfF3YgQjdZP6TNcok9k1oaH7UXombPtvw="),
])
def test_the_verifier_computes_hubspots_published_signatures(body, uri, stamp, signature):
    scheme, host, path = uri.partition("://")[0], *uri.partition("://")[2].split("/", 1)
    verifier = TimestampedSignature(SIGNATURE, STAMP, (("signing:env", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"),),
                                    300, clock=lambda: int(stamp) / 1000, layout="method+uri+body+stamp")
    assert scheme == "https"
    assert verifier.check({SIGNATURE: signature, STAMP: stamp}, body, Target("POST", host, "/" + path)) == "signing:env"
    assert verifier.check({SIGNATURE: signature, STAMP: stamp}, body, Target("GET", host, "/" + path)) != "signing:env"


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_hubspots_signature_over_the_public_url_is_accepted(client, db, scheme):
    """HubSpot signs the URL it was given (https); behind a proxy the service sees http."""
    body = fixture("hubspot", "life_01_creation")
    uri = f"{scheme}://localhost{url_for('hubspot')}"
    response = client.post(url_for("hubspot"), data=body, headers=hubspot_v3(body, uri))
    assert (response.status_code, response.json["status"]) == (201, "created")
    assert db.execute("SELECT account FROM tickets").fetchone()["account"] == "62515"


@pytest.mark.parametrize("headers", [
    pytest.param(lambda body, uri: hubspot_v3(body, uri, secret="another-secret-of-some-length"), id="wrong secret"),
    pytest.param(lambda body, uri: hubspot_v3(body + b" ", uri), id="another body"),
    pytest.param(lambda body, uri: hubspot_v3(body, uri + "?x=1"), id="another URI"),
    pytest.param(lambda body, uri: hubspot_v3(body, uri, method="PUT"), id="another method"),
    pytest.param(lambda body, uri: hubspot_v3(body, uri, stamp=str(int(time.time() * 1000) - 301_000)),
                 id="older than 5 minutes"),
    pytest.param(lambda body, uri: hubspot_v3(body, uri, stamp=str(int(time.time()))), id="seconds, not ms"),
    pytest.param(lambda body, uri: {"X-HubSpot-Signature": hashlib.sha256(SECRET.encode() + body).hexdigest(),
                                    "X-HubSpot-Signature-Version": "v1"}, id="v1 only"),
    pytest.param(lambda body, uri: {}, id="missing"),
])
def test_a_call_without_a_valid_v3_signature_is_a_401_and_stores_nothing(client, db, headers):
    body = fixture("hubspot", "life_01_creation")
    response = client.post(url_for("hubspot"), data=body, headers=headers(body, TEST_CLIENT_BASE + url_for("hubspot")))
    assert response.status_code == 401 and "error" in response.json
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM deliveries) AS n"
                      ).fetchone()["n"] == 0


# --- the account: the portal ----------------------------------------------------------------
def test_a_source_named_by_its_portal_id_takes_that_portal_only(client, db, add_source):
    own = "portal-62515-client-secret-8c1d"
    add_source("hubspot", "62515", "signing", own)
    body = fixture("hubspot", "life_01_creation")
    url = url_for("hubspot", "62515")
    assert client.post(url, data=body, headers=hubspot_v3(body, TEST_CLIENT_BASE + url, own)).status_code == 201
    other = fixture("hubspot", "sim_ticket_creation")  # portal 244315265
    refused = client.post(url, data=other, headers=hubspot_v3(other, TEST_CLIENT_BASE + url, own))
    assert refused.status_code == 403
    assert [r["account"] for r in db.execute("SELECT account FROM tickets")] == ["62515"]


def test_a_source_named_otherwise_is_bound_to_the_first_portal_it_hears_from(client, db, add_source):
    own = "acme-hubspot-client-secret-4b7e"
    add_source("hubspot", "acme", "signing", own)
    url = url_for("hubspot", "acme")
    first, other = fixture("hubspot", "life_01_creation"), fixture("hubspot", "sim_ticket_creation")
    assert client.post(url, data=first, headers=hubspot_v3(first, TEST_CLIENT_BASE + url, own)).status_code == 201
    assert client.post(url, data=other, headers=hubspot_v3(other, TEST_CLIENT_BASE + url, own)).status_code == 403
    assert [r["account"] for r in db.execute("SELECT account FROM tickets")] == ["acme"]


def test_the_vendor_declares_portal_claims():
    assert hubspot.VENDOR.claimed_accounts is hubspot.claimed_accounts
    assert hubspot.VENDOR.is_account_id("62515") and not hubspot.VENDOR.is_account_id("acme")

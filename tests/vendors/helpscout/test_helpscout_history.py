"""Help Scout through the whole service (real PostgreSQL): its signature, and the same
outcomes, idempotency and history as the other vendors, for one conversation's life
(the v2_convo_* fixtures, in order; HEADERS in test_helpscout.py names each one's event)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from signing import AUTH_ENV, fixture, post, url_for

EVENT = "X-HelpScout-Event"
LIFE = [  # (fixture, the event Help Scout names in its header)
    ("v2_convo_created", "convo.created"),
    ("v2_convo_assigned", "convo.assigned"),
    ("v2_convo_agent_reply", "convo.agent.reply.created"),
    ("v2_convo_customer_reply", "convo.customer.reply.created"),
    ("v2_convo_note_created", "convo.note.created"),
    ("v2_convo_status_closed", "convo.status"),
    ("v2_convo_tags", "convo.tags"),
    ("v2_convo_custom_fields", "convo.custom-fields"),
    ("v2_convo_assigned_to_anyone", "convo.assigned"),
    ("v2_convo_moved", "convo.moved"),
    ("v2_convo_tags_cleared", "convo.tags"),
]
SECRET = AUTH_ENV["HELPSCOUT_WEBHOOK_SECRET"]


def deliver(client, case: str, event: str, **headers: str):
    return post(client, "helpscout", fixture("helpscout", case), **{EVENT: event}, **headers)


def help_scout_signature(body: bytes, secret: str = SECRET) -> str:
    """What Help Scout's documentation computes: base64(HMAC-SHA1(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def test_a_conversations_life_is_one_ticket_and_every_event_in_order(client, db):
    outcomes = [deliver(client, case, event).json["status"] for case, event in LIFE]
    assert outcomes[0] == "created" and set(outcomes[1:]) == {"updated"}, outcomes

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["external_id"], ticket["revision"]) == ("helpscout", "2391938111", len(LIFE))
    assert {name: ticket[name] for name in ("subject", "status", "tags", "group_name", "custom_fields",
                                             "requester_email", "assignee_id", "assignee_name")} == {
        "subject": "I need help!", "status": "closed", "tags": [], "group_name": "86",
        "custom_fields": {"Account Type": "Pro"}, "requester_email": "vbear@example.com",
        "assignee_id": None, "assignee_name": None}
    assert ticket["vendor_updated_at"].isoformat() == "2026-03-02T10:12:00+00:00"

    events = db.execute("SELECT event_type, comment_body, comment_author, comment_public FROM events ORDER BY id").fetchall()
    assert [e["event_type"] for e in events] == [event for _, event in LIFE]
    assert [(e["comment_author"], e["comment_public"]) for e in events if e["comment_body"] is not None] == [
        ("Vernon Bear", True), ("Jack Sprout", True), ("Vernon Bear", True), ("Jack Sprout", False)]


def test_every_redelivery_is_answered_as_one_and_stores_nothing_new(client, db):
    for case, event in LIFE:
        deliver(client, case, event)
    again = [deliver(client, case, event) for case, event in LIFE]
    assert {(r.status_code, r.json["status"]) for r in again} == {(200, "already_exists")}
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == len(LIFE)


def test_two_events_fired_with_one_body_are_two_events(client, db):
    """Help Scout sends one call per event: a conversation created already assigned fires
    convo.created and convo.assigned with the same body."""
    first = deliver(client, "v2_convo_assigned", "convo.created")
    second = deliver(client, "v2_convo_assigned", "convo.assigned")
    assert (first.json["status"], second.json["status"]) == ("created", "recorded")
    assert [r["event_type"] for r in db.execute("SELECT event_type FROM events ORDER BY id")] == [
        "convo.created", "convo.assigned"]


def test_a_late_retry_of_an_older_event_is_kept_and_changes_nothing(client, db):
    deliver(client, "v2_convo_status_closed", "convo.status")
    late = deliver(client, "v2_convo_agent_reply", "convo.agent.reply.created")
    assert late.json["status"] == "stale"
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "closed"
    stale = db.execute("SELECT outcome, comment_body FROM events WHERE event_type = 'convo.agent.reply.created'").fetchone()
    assert stale["outcome"] == "stale" and "fresh link" in stale["comment_body"]


def test_a_customer_reply_is_newer_than_the_agent_reply_before_it(client, db):
    """userUpdatedAt does not move when a customer replies: the new thread's time orders it."""
    deliver(client, "v2_convo_customer_reply", "convo.customer.reply.created")
    late = deliver(client, "v2_convo_agent_reply", "convo.agent.reply.created")
    assert late.json["status"] == "stale"
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "active"


def test_a_deleted_conversation_is_marked_deleted_and_keeps_every_field(client, db):
    deliver(client, "v2_convo_status_closed", "convo.status")
    response = post(client, "helpscout", json.dumps({"id": 2391938111}), **{EVENT: "convo.deleted"})
    assert (response.status_code, response.json["status"]) == (200, "deleted")
    ticket = db.execute("SELECT subject, status, deleted_at, purged_at, revision FROM tickets").fetchone()
    assert (ticket["subject"], ticket["status"], ticket["purged_at"], ticket["revision"]) == (
        "I need help!", "closed", None, 2)
    assert ticket["deleted_at"] is not None
    assert [r["event_type"] for r in db.execute("SELECT event_type FROM events ORDER BY id")] == [
        "convo.status", "convo.deleted"]


@pytest.mark.parametrize("case, event", [("legacy_customer_created", "customer.created"),
                                         ("helpscout_test", "helpscout.test"),
                                         ("v2_convo_created", "satisfaction.ratings")])
def test_events_not_about_a_conversation_are_ignored_and_audited(client, db, case, event):
    response = deliver(client, case, event)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0
    assert [r["vendor"] for r in db.execute("SELECT vendor FROM deliveries")] == ["helpscout"]


def test_the_account_comes_from_the_url_and_its_source_signs(client, db, add_source):
    """Help Scout sends no account: the URL names the source, whose own secret signs."""
    own = "acme-helpscout-app-secret-7f3a9c2e51"
    add_source("helpscout", "acme", "hmac", own)
    body = fixture("helpscout", "v2_convo_created")
    headers = {EVENT: "convo.created", "Content-Type": "application/json"}
    response = client.post(url_for("helpscout", "acme"), data=body,
                           headers={**headers, "X-HelpScout-Signature": help_scout_signature(body, own)})
    assert response.status_code == 201
    assert db.execute("SELECT account, credential FROM events JOIN tickets t ON t.id = ticket_id").fetchone() == {
        "account": "acme", "credential": "hmac:default"}
    # the environment's secret does not write there, and an account without a source is unknown
    assert post(client, "helpscout", body, account="acme", **{EVENT: "convo.created"}).status_code == 401
    assert post(client, "helpscout", body, account="other", **{EVENT: "convo.created"}).status_code == 404


def test_help_scouts_own_signature_is_accepted_and_the_rotated_secret_too(client, db):
    body = fixture("helpscout", "v2_convo_created")
    for secret in (SECRET, AUTH_ENV["HELPSCOUT_WEBHOOK_SECRET_PREVIOUS"]):
        response = client.post(url_for("helpscout"), data=body, headers={
            "X-HelpScout-Signature": help_scout_signature(body, secret), EVENT: "convo.created",
            "Content-Type": "application/json"})
        assert response.status_code in (200, 201), response.json


@pytest.mark.parametrize("signature", [
    pytest.param(lambda body: help_scout_signature(body, "another-secret-of-some-length"), id="wrong secret"),
    pytest.param(lambda body: help_scout_signature(body + b" "), id="another body"),
    pytest.param(lambda body: hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest(), id="hex, not base64"),
    pytest.param(lambda body: base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode(),
                 id="sha256, not sha1"),
    pytest.param(lambda body: None, id="missing"),
])
def test_a_call_without_a_valid_help_scout_signature_is_a_401_and_stores_nothing(client, db, signature):
    body = fixture("helpscout", "v2_convo_created")
    value = signature(body)
    headers = {EVENT: "convo.created", **({"X-HelpScout-Signature": value} if value else {})}
    response = client.post(url_for("helpscout"), data=body, headers=headers)
    assert response.status_code == 401 and "error" in response.json
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM deliveries) AS n"
                      ).fetchone()["n"] == 0


def test_a_relay_that_drops_the_event_header_still_stores_the_conversation(client, db):
    response = post(client, "helpscout", fixture("helpscout", "relay_customer_reply"))
    assert response.status_code == 201
    assert db.execute("SELECT event_type FROM events").fetchone()["event_type"] == "ticket.snapshot"


def test_a_conversation_dated_by_user_modified_at_orders_a_late_retry_as_stale(client, db):
    """developer.helpscout.com/webhooks/objects/conversation names the time "modifiedAt or
    userModifiedAt": the second spelling was not read, so a conversation's time came from
    its threads, which a status change does not move, and a late retry of an older status
    overwrote the newer one."""
    def convo(status: str, moment: str) -> dict:
        return {"id": 9191, "number": 77, "subject": "Shipping", "status": status, "mailboxId": 85,
                "userModifiedAt": moment, "threads": []}

    for status, moment in (("active", "2025-03-01T09:00:00Z"), ("pending", "2025-03-01T11:00:00Z")):
        post(client, "helpscout", convo(status, moment), **{EVENT: "convo.status"})
    late = post(client, "helpscout", convo("active", "2025-03-01T10:00:00Z"), **{EVENT: "convo.status"})
    assert late.json["status"] == "stale"
    ticket = db.execute("SELECT status, vendor_updated_at FROM tickets").fetchone()
    assert (ticket["status"], ticket["vendor_updated_at"].isoformat()) == ("pending", "2025-03-01T11:00:00+00:00")

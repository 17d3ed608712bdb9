"""Intercom through the whole service (real PostgreSQL): its signature as Intercom sends
it, the URL check, the workspace as the account, and one ticket's life (the ticket_*
fixtures of ticket 215472629311235, in the order Intercom sent them)."""

from __future__ import annotations

import hashlib
import hmac
import json

from signing import AUTH_ENV, fixture, post, url_for

LIFE = ["ticket_created", "ticket_state_updated", "ticket_admin_assigned", "ticket_team_assigned",
        "ticket_admin_replied", "ticket_attribute_updated", "ticket_closed"]
SECRET = AUTH_ENV["INTERCOM_WEBHOOK_SECRET"]
WORKSPACE = "abc123def"


def deliver(client, case: str, **headers: str):
    return post(client, "intercom", fixture("intercom", case), **headers)


def intercom_signature(body: bytes, secret: str = SECRET) -> str:
    """What Intercom's documentation computes: `sha1=` + hex HMAC-SHA1(client secret, raw body)."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_a_tickets_life_is_one_ticket_and_every_event_in_order(client, db):
    outcomes = [deliver(client, case).json["status"] for case in LIFE]
    # ticket.state.updated was made a second before ticket.created was: kept, changes nothing
    assert outcomes == ["created", "stale", "updated", "updated", "updated", "updated", "updated"]
    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["account"], ticket["external_id"]) == (
        "intercom", WORKSPACE, "ticket:215472629311235")
    assert {name: ticket[name] for name in ("subject", "status", "type", "requester_id", "assignee_id",
                                             "group_name", "custom_fields")} == {
        "subject": "Unclear user message 'erf' with pending email response", "status": "resolved",
        "type": "tickets", "requester_id": "696346bbaebb5a479d3851a3", "assignee_id": "9608799", "group_name": None,
        "custom_fields": {"Platforms": "rewg", "Root cause": None, "ticket_id": "66040342"}}
    assert ticket["vendor_updated_at"].isoformat() == "2026-01-11T07:41:07+00:00"

    events = db.execute("SELECT event_type, vendor_event_id, comment_body, comment_author, comment_public, changes "
                        "FROM events ORDER BY id").fetchall()
    assert [e["event_type"] for e in events] == [
        "ticket.created", "ticket.state.updated", "ticket.admin.assigned", "ticket.team.assigned",
        "ticket.admin.replied", "ticket.attribute.updated", "ticket.closed"]
    assert all(e["vendor_event_id"].startswith("notif_") for e in events)
    assert [(e["comment_body"], e["comment_author"], e["comment_public"]) for e in events
            if e["comment_body"] is not None] == [('<p class="no-margin">mathew</p>', "John Doe", True)]
    assert [e["changes"] for e in events if e["changes"]] == [
        {"custom_fields": {"Platforms": {"previous": "", "current": "rewg"}}},
        {"status": {"previous": "submitted", "current": "resolved"}}]


def test_a_redelivered_notification_is_one_delivery_even_resent_with_another_attempt_count(client, db):
    for case in LIFE:
        deliver(client, case)
    again = [deliver(client, case) for case in LIFE]
    assert {(r.status_code, r.json["status"]) for r in again} == {(200, "already_exists")}
    retried = json.loads(fixture("intercom", "ticket_closed"))
    retried["delivery_attempts"] = 2  # Intercom's one retry, a minute later: the same notif_ id
    assert post(client, "intercom", retried).json["status"] == "already_exists"
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == len(LIFE)


def test_a_ticket_and_a_conversation_with_one_number_are_two_tickets(client, db):
    deliver(client, "ticket_closed")
    conversation = json.loads(fixture("intercom", "conversation_priority_updated"))
    conversation["data"]["item"]["id"] = "215472629311235"
    assert post(client, "intercom", conversation).json["status"] == "created"
    assert [r["external_id"] for r in db.execute("SELECT external_id FROM tickets ORDER BY external_id")] == [
        "conversation:215472629311235", "ticket:215472629311235"]


def test_a_deleted_conversation_is_marked_deleted_and_keeps_its_fields(client, db):
    deleted = json.loads(fixture("intercom", "conversation_deleted"))
    deleted["data"]["item"]["conversation_id"] = "215472621202693"
    deleted["created_at"] = 1768040000  # after the conversation's last event
    assert deliver(client, "conversation_priority_updated").json["status"] == "created"
    response = post(client, "intercom", deleted)
    assert (response.status_code, response.json["status"]) == (200, "deleted")
    ticket = db.execute("SELECT status, priority, deleted_at, purged_at FROM tickets").fetchone()
    assert (ticket["status"], ticket["priority"], ticket["purged_at"]) == ("open", "priority", None)
    assert ticket["deleted_at"] is not None


def test_topics_not_about_a_ticket_are_ignored_and_audited(client, db):
    for case in ("ping", "contact_user_created", "company_created", "intercom_docs_signed_user_created"):
        response = deliver(client, case)
        assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0


def test_intercoms_own_signature_is_accepted_with_or_without_its_prefix_and_rotated(client, db):
    body = fixture("intercom", "ticket_closed")
    for signature in (intercom_signature(body), intercom_signature(body).removeprefix("sha1="),
                      intercom_signature(body, AUTH_ENV["INTERCOM_WEBHOOK_SECRET_PREVIOUS"])):
        response = client.post(url_for("intercom"), data=body, headers={
            "X-Hub-Signature": signature, "Content-Type": "application/json"})
        assert response.status_code in (200, 201), response.json
    forged = client.post(url_for("intercom"), data=body.replace(b"resolved", b"submitted"), headers={
        "X-Hub-Signature": intercom_signature(body), "Content-Type": "application/json"})
    assert forged.status_code == 401
    unsigned = client.post(url_for("intercom"), data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401


def test_the_test_signer_sends_what_intercom_sends():
    from signing import signed

    body, headers = signed("intercom", fixture("intercom", "ping"))
    assert headers["X-Hub-Signature"] == intercom_signature(body)


def test_the_url_check_is_answered_with_no_body_and_no_credentials(client, db):
    for url in (url_for("intercom"), url_for("intercom", "abc123def")):
        response = client.head(url)
        assert (response.status_code, response.data) == (200, b"")
        assert response.headers["Content-Type"] == "application/json"  # (was text/html)
    assert client.head(url_for("freshdesk")).status_code == 405  # only vendors that check their URL
    assert db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"] == 0


def test_a_workspace_with_a_source_of_its_own_takes_its_notifications_only(client, db, add_source):
    own = "acme-intercom-client-secret-5d1e7b93"
    add_source("intercom", WORKSPACE, "hmac", own)
    body = fixture("intercom", "ticket_closed")
    headers = {"X-Hub-Signature": intercom_signature(body, own), "Content-Type": "application/json"}
    assert client.post(url_for("intercom", WORKSPACE), data=body, headers=headers).status_code == 201
    other = json.loads(body)
    other["app_id"] = "zz99yy88"
    other_body = json.dumps(other).encode()
    refused = client.post(url_for("intercom", WORKSPACE), data=other_body, headers={
        **headers, "X-Hub-Signature": intercom_signature(other_body, own)})
    assert refused.status_code == 403
    assert [r["account"] for r in db.execute("SELECT account FROM tickets")] == [WORKSPACE]


def test_a_conversations_contact_attached_notification_is_an_event_of_its_ticket(client, db):
    """`conversation.contact.attached` carries `{conversation: {parts, model}, contact}` with
    no `id` of its own: it was a 422, quarantined, and Intercom dropped it after its retry.
    Then the assignment names its admin, whom only the part's author says who they are."""
    assert deliver(client, "conversation_operator_replied").json["status"] == "created"
    response = deliver(client, "conversation_admin_open_assigned")
    assert (response.status_code, response.json["status"]) == (200, "updated")
    response = deliver(client, "conversation_contact_attached")
    assert response.status_code == 200 and response.json["status"] in ("updated", "recorded"), response.json
    tickets = db.execute("SELECT external_id, assignee_id, assignee_name, assignee_email FROM tickets").fetchall()
    assert [tuple(t.values()) for t in tickets] == [
        ("conversation:215472621202693", "9608799", "John Doe", "admin@example.com")]
    assert [e["event_type"] for e in db.execute("SELECT event_type FROM events ORDER BY id")] == [
        "conversation.operator.replied", "conversation.admin.open.assigned", "conversation.contact.attached"]
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 0

"""Jira through the whole service (real PostgreSQL): its signature, and the same outcomes,
idempotency and history as the other vendors, for one issue's life.

The life is KAN-22's, captured on Jira Cloud (created, then its description edited), and
continued from those bodies the way Jira would: a customer's comment and an agent's
internal note (comment_created, with the slim issue Jira attaches), the transition to
Done, the deletion, and the Secondary-flow comment_deleted that follows a deletion."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest
from signing import AUTH_ENV, basic, basic_pair, fixture, post, url_for

from ingestion.errors import ConfigError
from ingestion.jobs import rebuild as rebuilding
from ingestion.vendors import VENDORS, jira, load_settings

SECRET = AUTH_ENV["JIRA_WEBHOOK_SECRET"]
#: KAN-22 was created at 1735441883659 and edited at 1735442025214 (ms): the rest follows.
COMMENTED, NOTED, DONE, DELETED, COMMENT_DELETED = (1735442400000 + minute * 60_000 for minute in range(5))
SLIM = ("summary", "issuetype", "project", "assignee", "priority", "status")


def captured(case: str) -> dict:
    return json.loads(fixture("jira", case))


def edited() -> dict:
    return captured("cloud_issue_updated_description")


def comment(fired: int, body: str, author: str, public: bool) -> dict:
    """A comment_created as Jira sends it: the comment, and a slim issue (FACTS: summary,
    issuetype, project, assignee, priority and status only)."""
    event = captured("comment_created")
    issue = edited()["issue"]
    event["timestamp"] = fired
    event["issue"] = {"id": issue["id"], "self": issue["self"], "key": issue["key"],
                      "fields": {name: issue["fields"][name] for name in SLIM}}
    event["comment"].update(body=body, jsdPublic=public)
    event["comment"]["author"]["displayName"] = author
    return event


def done() -> dict:
    event = edited()
    event["timestamp"] = DONE
    fields = event["issue"]["fields"]
    fields["status"].update(name="Done", id="10002")
    fields["status"]["statusCategory"].update(key="done", name="Done", id=3)
    fields["resolution"] = {"self": "https://helloworld-test.atlassian.net/rest/api/2/resolution/10000",
                            "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"}
    fields["updated"] = "2024-12-29T08:47:00.000+0530"
    event["issue_event_type_name"] = "issue_generic"
    event["changelog"] = {"id": "10027", "items": [
        {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution", "from": None, "fromString": None,
         "to": "10000", "toString": "Done"},
        {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10000", "fromString": "To Do",
         "to": "10002", "toString": "Done"}]}
    return event


def deleted() -> dict:
    event = done()
    del event["changelog"]
    event.update(timestamp=DELETED, webhookEvent="jira:issue_deleted", issue_event_type_name="issue_deleted")
    return event


def comment_deleted() -> dict:
    event = comment(COMMENT_DELETED, "Customer called back: the back button works.", "Sirajudheen MK", True)
    event["webhookEvent"] = "comment_deleted"
    return event


LIFE = [
    ("created", captured("cloud_issue_created")),
    ("description edited", edited()),
    ("customer comment", comment(COMMENTED, "Customer called back: the back button works.", "Ana Perez", True)),
    ("internal note", comment(NOTED, "Checked with the mobile team first.", "Sirajudheen MK", False)),
    ("done", done()),
]


def deliver(client, payload: dict | bytes, **headers: str):
    return post(client, "jira", payload, **headers)


def jira_signature(body: bytes, secret: str = SECRET, method: str = "sha256") -> str:
    """What Atlassian documents: `method=signature`, the HMAC of the raw body in lower-case hex."""
    return f"{method}=" + hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


def test_the_documented_test_vector():
    """developer.atlassian.com/cloud/jira/platform/webhooks/, "Secure admin webhooks"."""
    assert jira_signature(b"Hello World!", "It's a Secret to Everybody") == (
        "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9")


def test_an_issues_life_is_one_ticket_and_every_event_in_order(client, db):
    outcomes = [deliver(client, body).json["status"] for _, body in LIFE]
    assert outcomes == ["created", "updated", "updated", "updated", "updated"], outcomes

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["external_id"], ticket["revision"]) == ("jira", "KAN-22", len(LIFE))
    assert {name: ticket[name] for name in ("subject", "status", "priority", "type", "group_name", "requester_name",
                                             "assignee_id")} == {
        "subject": "Add back button to pages", "status": "done", "priority": "medium", "type": "task",
        "group_name": "My Kanban Project", "requester_name": "Sirajudheen MK",
        "assignee_id": "712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4"}
    assert ticket["description"].endswith("on the create pages as well.")  # the comments' slim issue kept it
    assert {name: ticket["custom_fields"][name] for name in ("issue_id", "status_category", "resolution")} == {
        "issue_id": "10021", "status_category": "done", "resolution": "Done"}
    assert ticket["vendor_updated_at"].isoformat() == "2024-12-29T03:22:00+00:00"  # DONE, when Jira fired it

    events = db.execute("SELECT event_type, comment_body, comment_author, comment_public, changes FROM events "
                        "ORDER BY id").fetchall()
    assert [e["event_type"] for e in events] == ["jira:issue_created", "jira:issue_updated", "comment_created",
                                                 "comment_created", "jira:issue_updated"]
    assert [(e["comment_author"], e["comment_public"]) for e in events if e["comment_body"]] == [
        ("Ana Perez", True), ("Sirajudheen MK", False)]
    assert events[-1]["changes"] == {"status": {"previous": "to do", "current": "done"}}


def test_a_deleted_issue_is_forgotten_and_what_jira_sends_after_it_stays_empty(client, db):
    for _, body in LIFE:
        deliver(client, body)
    response = deliver(client, deleted())
    assert (response.status_code, response.json["status"]) == (200, "deleted")
    ticket = db.execute("SELECT subject, description, requester_name, status, purged_at, deleted_at FROM tickets"
                        ).fetchone()
    assert (ticket["subject"], ticket["description"], ticket["requester_name"], ticket["status"]) == (
        None, None, None, "done")
    assert ticket["purged_at"] is not None and ticket["deleted_at"] is not None
    # Jira then deletes the issue's comments (Secondary flow): nothing brings the content back
    after = deliver(client, comment_deleted(), **{"X-Atlassian-Webhook-Flow": "Secondary"})
    assert (after.status_code, after.json["status"]) == (200, "stale")
    assert db.execute("SELECT count(*) AS n FROM events WHERE payload IS NOT NULL OR comment_body IS NOT NULL"
                      ).fetchone()["n"] == 0


def test_every_redelivery_is_answered_as_one_even_with_another_delivery_identifier(client, db):
    """Jira's X-Atlassian-Webhook-Identifier is the same across retries but not signed: a
    captured body re-sent with another identifier is the same delivery, not a new event."""
    for number, (_, body) in enumerate(LIFE):
        deliver(client, body, **{"X-Atlassian-Webhook-Identifier": f"delivery-{number}"})
    again = [deliver(client, body, **{"X-Atlassian-Webhook-Identifier": f"delivery-{number}",
                                      "X-Atlassian-Webhook-Retry": "1"}) for number, (_, body) in enumerate(LIFE)]
    replayed = [deliver(client, body, **{"X-Atlassian-Webhook-Identifier": f"forged-{number}"})
                for number, (_, body) in enumerate(LIFE)]
    assert {(r.status_code, r.json["status"]) for r in again + replayed} == {(200, "already_exists")}
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == len(LIFE)
    assert {r["vendor_event_id"] for r in db.execute("SELECT vendor_event_id FROM events")} == {None}


def test_a_rebuild_from_the_stored_history_gives_the_same_ticket(app, client, db):
    """Jira names its events in the body: a rebuild reads back what the webhooks stored."""
    for _, body in LIFE:
        deliver(client, body)
    deliver(client, edited())  # a late retry: stale, kept in the history
    before = db.execute("SELECT * FROM tickets").fetchone()
    settings = app.extensions["ingestion"].settings
    summary = rebuilding.rebuild(app.extensions["ingestion"].storage, {v.name: v for v in VENDORS},
                                 {v.name: v.normalizer(settings) for v in VENDORS},
                                 rebuilding.Scope("jira", "", "KAN-22"))
    assert summary.changed == 0
    assert db.execute("SELECT * FROM tickets").fetchone() == before


def test_a_late_retry_of_an_older_event_is_kept_and_changes_nothing(client, db):
    deliver(client, done())
    late = deliver(client, edited())
    assert late.json["status"] == "stale"
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "done"


def test_a_moved_issue_continues_under_its_new_key(client, db):
    moved = captured("relay_issue_moved")
    before = copy.deepcopy(moved)
    before.update(webhookEvent="jira:issue_created", issue_event_type_name="issue_created", timestamp=1545654267105)
    before["issue"]["key"] = "TCP-2"
    del before["changelog"]
    assert deliver(client, before).status_code == 201
    assert deliver(client, moved).status_code == 201  # a ticket of its own: the key is the ticket's id
    rows = db.execute("SELECT external_id, custom_fields->>'issue_id' AS issue_id FROM tickets ORDER BY id").fetchall()
    assert [(r["external_id"], r["issue_id"]) for r in rows] == [("TCP-2", "12490"), ("INDEV-130", "12490")]
    change = db.execute("SELECT changes FROM events ORDER BY id DESC").fetchone()["changes"]
    assert change["external_id"] == {"previous": "TCP-2", "current": "INDEV-130"}


@pytest.mark.parametrize("case", ["worklog_created", "docs_project_created", "relay_issuelink_created"])
def test_events_not_about_an_issue_are_ignored_and_audited(client, db, case):
    response = deliver(client, fixture("jira", case))
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0
    assert [r["vendor"] for r in db.execute("SELECT vendor FROM deliveries")] == ["jira"]


def test_jiras_own_signature_is_accepted_and_the_rotated_secret_too(client, db):
    body = fixture("jira", "cloud_issue_created")
    for number, secret in enumerate((SECRET, AUTH_ENV["JIRA_WEBHOOK_SECRET_PREVIOUS"])):
        response = client.post(url_for("jira"), data=body, headers={
            "X-Hub-Signature": jira_signature(body, secret), "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": f"b7e{number}", "X-Atlassian-Webhook-Flow": "Primary"})
        assert response.status_code in (200, 201), response.json


@pytest.mark.parametrize("signature", [
    pytest.param(lambda body: jira_signature(body, "another-secret-of-some-length"), id="wrong secret"),
    pytest.param(lambda body: jira_signature(body + b" "), id="another body"),
    pytest.param(lambda body: jira_signature(body, method="sha1"), id="sha1, not the method Jira uses"),
    pytest.param(lambda body: jira_signature(body, method="sha512"), id="a method Jira may adopt: fails closed"),
    pytest.param(lambda body: "sha1=" + jira_signature(body).removeprefix("sha256="), id="sha256 labelled sha1"),
    pytest.param(lambda body: None, id="missing"),
])
def test_a_call_without_a_valid_jira_signature_is_a_401_and_stores_nothing(client, db, signature):
    body = fixture("jira", "cloud_issue_created")
    value = signature(body)
    headers = {"Content-Type": "application/json", **({"X-Hub-Signature": value} if value else {})}
    response = client.post(url_for("jira"), data=body, headers=headers)
    assert response.status_code == 401 and "error" in response.json
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM deliveries) AS n"
                      ).fetchone()["n"] == 0


def test_basic_auth_from_data_center_or_a_proxy_is_accepted(client, db):
    body = fixture("jira", "comment_created")
    response = client.post(url_for("jira"), data=body, headers={"Content-Type": "application/json",
                                                               **basic(*basic_pair("jira"))})
    assert response.status_code == 201, response.json
    assert db.execute("SELECT credential FROM events").fetchone()["credential"] == "basic:env"


def test_the_account_comes_from_the_url_and_its_source_signs(client, db, add_source):
    """Jira names its site only in the body's `self` URLs: a source per site keeps SUP-1 of
    two sites apart."""
    own = "acme-jira-webhook-secret-5c1e9a7f42"
    add_source("jira", "acme.atlassian.net", "hmac", own)
    body = fixture("jira", "comment_created")
    response = client.post(url_for("jira", "acme.atlassian.net"), data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature": jira_signature(body, own)})
    assert response.status_code == 201
    assert db.execute("SELECT account, credential FROM events JOIN tickets t ON t.id = ticket_id").fetchone() == {
        "account": "acme.atlassian.net", "credential": "hmac:default"}
    assert deliver(client, body).status_code == 201  # the bare URL's ZUL-1 is another ticket
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE external_id = 'ZUL-1'").fetchone()["n"] == 2


def test_production_refuses_the_documented_test_secret():
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": "postgresql://u:p@127.0.0.1/db", "JIRA_WEBHOOK_SECRET": jira.PUBLIC_TEST_SECRET})
    assert caught.value.variable == "JIRA_WEBHOOK_SECRET"


def test_an_unreadable_jira_delivery_is_quarantined_with_jiras_delivery_headers(client, db):
    """The identifier is no delivery identity, but it is what Jira's webhook log shows: a
    quarantined delivery keeps it (and its retry count and flow) to be found there."""
    body = fixture("jira", "issue_id_as_key")
    response = deliver(client, body, **{"X-Atlassian-Webhook-Identifier": "6a1f0c2e-delivery",
                                        "X-Atlassian-Webhook-Retry": "2", "X-Atlassian-Webhook-Flow": "Primary"})
    assert response.status_code == 422 and "'issue.key'" in response.json["error"]
    [entry] = db.execute("SELECT headers, reason FROM quarantine").fetchall()
    assert entry["reason"] == "invalid_field"
    assert {name: value for name, value in entry["headers"].items() if name.startswith("x-atlassian")} == {
        "x-atlassian-webhook-identifier": "6a1f0c2e-delivery", "x-atlassian-webhook-retry": "2",
        "x-atlassian-webhook-flow": "Primary"}
    assert "x-hub-signature" not in entry["headers"]


def test_another_assignee_without_an_address_does_not_keep_the_previous_ones(client, db):
    """Jira Cloud leaves `emailAddress` out for a user who hides it. When the issue passes
    from a person whose address was known to such a user, the ticket named the new
    assignee with the old one's address. The same person without an address keeps it."""
    first = captured("cloud_issue_created")
    first["issue"]["fields"]["assignee"] = {
        "accountId": "99:27935d01-92a7-4687-8272-a9b8d3b2ae2e", "emailAddress": "othello@example.com",
        "displayName": "Leo Franchi", "active": True}
    assert deliver(client, first).json["status"] == "created"
    same = edited()
    same["issue"]["fields"]["assignee"] = {key: value for key, value in first["issue"]["fields"]["assignee"].items()
                                           if key != "emailAddress"}
    assert deliver(client, same).json["status"] in ("updated", "recorded")
    ticket = db.execute("SELECT assignee_name, assignee_email, assignee_id FROM tickets").fetchone()
    assert tuple(ticket.values()) == ("Leo Franchi", "othello@example.com", "99:27935d01-92a7-4687-8272-a9b8d3b2ae2e")

    reassigned = done()
    assert "emailAddress" not in reassigned["issue"]["fields"]["assignee"]
    assert deliver(client, reassigned).json["status"] == "updated"
    ticket = db.execute("SELECT assignee_name, assignee_email, assignee_id FROM tickets").fetchone()
    assert tuple(ticket.values()) == ("Sirajudheen MK", None, "712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4")


def test_one_comment_through_both_subscriptions_is_stored_once_and_its_edit_again(client, db):
    """The README asks for Issue and Comment events; Jira then fires comment_created and a
    jira:issue_updated ("issue_commented") carrying the same comment (mattermost-plugin-jira
    #118 and #1254: "Cloud fires jira:issue_updated and comment webhooks"). Both are
    deliveries and are kept, the comment once; an edit (a new `updated`) is a new comment."""
    assert deliver(client, captured("cloud_issue_created")).json["status"] == "created"
    created = comment(COMMENTED, "Customer called back: the back button works.", "Ana Perez", True)
    commented = edited()
    commented.update(timestamp=COMMENTED + 1, issue_event_type_name="issue_commented", comment=created["comment"])
    commented.pop("changelog", None)
    assert deliver(client, created).status_code == 200
    assert deliver(client, commented).status_code == 200
    edit = copy.deepcopy(created)
    edit.update(webhookEvent="comment_updated", timestamp=NOTED)
    edit["comment"].update(body="Customer called back twice.", updated="2024-12-29T08:45:00.000+0530")
    assert deliver(client, edit).status_code == 200
    history = db.execute("SELECT event_type, comment_body FROM events ORDER BY id").fetchall()
    assert [(e["event_type"], e["comment_body"]) for e in history] == [
        ("jira:issue_created", None), ("comment_created", "Customer called back: the back button works."),
        ("jira:issue_updated", None), ("comment_updated", "Customer called back twice.")]

"""Vendor deletions against the real PostgreSQL: a soft delete marks the ticket deleted
(the read API says so) and a restore clears it; a permanent delete forgets the ticket's
content, leaving no name, email, comment or raw payload of it in any column of any table,
while ids, types, times and outcomes stay; whatever arrives after it stays content-free."""

from __future__ import annotations

import json
import threading

import pytest

from ingestion.normalize.events import deletion
from ingestion.tickets import Deletion
from signing import fixture, post
from stored_text import mentions

NAME, EMAIL, COMMENT = "Zoltan Purgeme", "zoltan.purge@example.org", "my card number is in this note"
TOKEN = "deletions-read-token-0123456789"
READER = {"Authorization": f"Bearer {TOKEN}"}
ACCOUNT = {"X-Zendesk-Account-Id": "99"}  # the trigger bodies' account, as the events' account_id


@pytest.fixture
def client(make_app, db):
    return make_app(API_TOKENS=TOKEN).test_client()


def zendesk_event(kind: str, ticket: str = "777", event_id: str | None = None, **detail) -> dict:
    return {"type": f"zen:event-type:ticket.{kind}", "id": event_id or f"{kind}-{ticket}", "account_id": 99,
            "subject": f"zen:ticket:{ticket}", "detail": {"id": ticket, **detail}, "event": {}}


def seed_personal_ticket(client, ticket: str = "777") -> None:
    """A Zendesk ticket whose people, comments, tags and custom fields carry personal data."""
    post(client, "zendesk", {"ticket": {"id": ticket, "subject": f"Refund for {NAME}", "requester": f"{NAME} <{EMAIL}>",
                                        "assignee": "Agent Smith <agent@example.com>", "tags": f"vip {EMAIL}",
                                        "latest_comment": COMMENT, "organization": f"{NAME} Ltd",
                                        "updated_at": "2025-01-08T10:00:00Z"}}, **ACCOUNT)
    post(client, "zendesk", {"type": "zen:event-type:ticket.comment_added", "id": f"c-{ticket}", "account_id": 99,
                             "detail": {"id": ticket, "updated_at": "2025-01-08T11:00:00Z"},
                             "event": {"comment": {"body": f"{COMMENT} (again, {NAME})", "is_public": True,
                                                   "author": {"name": NAME, "is_staff": False}}}})


@pytest.mark.parametrize("name, expected", [
    ("zen:event-type:ticket.undeleted", Deletion.RESTORED), ("convo.deleted", Deletion.SOFT),
    ("ticket.deleted", Deletion.SOFT), ("Ticket Deleted", Deletion.SOFT), ("ticket_restored", Deletion.RESTORED),
    ("Ticket moved to trash", Deletion.SOFT),
    # Free text never purges: only the vendors' own permanent events do (their folders say so).
    ("TICKET_PURGED", Deletion.SOFT), ("ticketPermanentlyDeleted", Deletion.SOFT),
    ("zen:event-type:ticket.permanently_deleted", Deletion.SOFT),
    # About a part of the ticket, or something else: not a deletion of the ticket.
    ("zen:event-type:ticket.comment_redacted", None), ("ticket_comment_deleted", None),
    ("onConversationDelete", None), ("note deleted", None), ("zen:event-type:ticket.status_changed", None),
    ("ticket.created", None), (None, None), ("", None)])
def test_an_events_name_says_whether_it_deletes_the_ticket(name, expected):
    assert deletion(name) == expected


def test_a_soft_delete_marks_the_ticket_deleted_keeps_its_content_and_a_restore_clears_it(client, db):
    seed_personal_ticket(client)
    response = post(client, "zendesk", zendesk_event("soft_deleted", updated_at="2025-01-09T08:00:00Z"))
    assert (response.status_code, response.json["status"]) == (200, "deleted")

    shown = client.get("/api/v1/tickets/zendesk/777?account=99", headers=READER).json
    assert shown["deleted_at"] == "2025-01-09T08:00:00+00:00" and shown["purged_at"] is None
    assert (shown["subject"], shown["requester"]["email"], shown["revision"]) == (f"Refund for {NAME}", EMAIL, 3)

    again = post(client, "zendesk", zendesk_event("soft_deleted", event_id="another-soft-delete"))
    assert again.json["status"] == "recorded"  # already deleted: a new event, nothing changes

    restored = post(client, "zendesk", zendesk_event("undeleted", updated_at="2025-01-09T09:00:00Z"))
    assert restored.json["status"] == "updated"
    shown = client.get("/api/v1/tickets/zendesk/777?account=99", headers=READER).json
    assert (shown["deleted_at"], shown["purged_at"], shown["revision"]) == (None, None, 4)
    assert [e["outcome"] for e in client.get("/api/v1/tickets/zendesk/777/events?account=99", headers=READER).json["events"]
            ] == ["created", "updated", "deleted", "recorded", "updated"]


def test_a_soft_delete_older_than_the_stored_ticket_is_stale(client, db):
    seed_personal_ticket(client)
    response = post(client, "zendesk", zendesk_event("soft_deleted", updated_at="2024-12-31T00:00:00Z"))
    assert response.json["status"] == "stale"
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is None


@pytest.mark.parametrize("vendor, body", [
    ("zendesk", zendesk_event("permanently_deleted", updated_at="2025-01-01T00:00:00Z")),  # older: applies anyway
    ("zendesk", zendesk_event("permanently_deleted")),
    ("freshdesk", None)])
def test_a_permanent_delete_leaves_nothing_personal_of_the_ticket_in_any_column(client, db, vendor, body):
    if vendor == "zendesk":
        seed_personal_ticket(client)
        post(client, "zendesk", zendesk_event("soft_deleted"))
        other = post(client, "zendesk", {"ticket": {"id": "888", "subject": "keep", "requester": "Kept <kept@x.org>"}},
                     **ACCOUNT)
    else:
        post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "777", "ticket_subject": f"Refund for {NAME}",
                                                         "ticket_contact_name": NAME, "ticket_contact_email": EMAIL,
                                                         "ticket_latest_public_comment": COMMENT}})
        other = post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "888", "ticket_subject": "keep",
                                                                 "ticket_contact_email": "kept@x.org"}})
        body = json.loads(fixture("freshdesk", "product_ticket_delete"))
        body["data"]["ticket"].update(id=777, subject=f"Refund for {NAME}")
        body["data"]["requester"].update(name=NAME, email=EMAIL)
    assert mentions(db, NAME, EMAIL, COMMENT)  # the seed did store them

    response = post(client, vendor, body)
    assert (response.status_code, response.json["status"]) == (200, "deleted")
    assert mentions(db, NAME, EMAIL, COMMENT) == []

    ticket = db.execute("SELECT * FROM tickets WHERE external_id = '777'").fetchone()
    assert ticket["deleted_at"] is not None and ticket["purged_at"] is not None
    assert (ticket["subject"], ticket["requester_email"], ticket["tags"], ticket["custom_fields"]) == (None, None, [], {})
    history = db.execute("SELECT outcome, event_type, received_at, revision, payload, comment_body, changes "
                         "FROM events WHERE ticket_id = %s ORDER BY id", (ticket["id"],)).fetchall()
    *earlier, deletion, forget = history
    assert all(e["received_at"] and e["event_type"] for e in history)
    # The deletion, then the record that tells the stream's consumers to forget (field names only).
    assert (deletion["outcome"], forget["outcome"], forget["event_type"]) == ("deleted", "forget", "ticket.forgotten")
    assert forget["changes"]["forgotten"] == "ticket" and forget["payload"] is None
    assert all(e["payload"] is None and e["comment_body"] is None and e["changes"] is None for e in [*earlier, deletion])
    # The other ticket is untouched.
    kept = db.execute("SELECT subject, requester_email FROM tickets WHERE id = %s", (other.json["ticket_id"],))
    assert kept.fetchone() == {"subject": "keep", "requester_email": "kept@x.org"}
    shown = client.get(f"/api/v1/tickets/{vendor}/777?account={ticket['account']}",
                       headers=READER).json
    assert shown["purged_at"] is not None and shown["requester"] == {"name": None, "email": None, "id": None}


def test_after_a_permanent_delete_late_deliveries_stay_content_free(client, db):
    seed_personal_ticket(client)
    assert post(client, "zendesk", zendesk_event("permanently_deleted")).json["status"] == "deleted"

    # A vendor retry of the deletion: the same delivery.
    assert post(client, "zendesk", zendesk_event("permanently_deleted")).json["status"] == "already_exists"
    # A late retry of an older delivery full of personal data: kept as a content-free stale event.
    late = post(client, "zendesk", {"ticket": {"id": "777", "requester": f"{NAME} <{EMAIL}>", "latest_comment": COMMENT,
                                               "updated_at": "2030-01-01T00:00:00Z"}}, **ACCOUNT)
    assert late.json["status"] == "stale"
    assert mentions(db, NAME, EMAIL, COMMENT) == []
    assert db.execute("SELECT requester_email, purged_at IS NOT NULL AS purged FROM tickets").fetchone() == {
        "requester_email": None, "purged": True}


def test_a_permanent_delete_of_a_ticket_never_seen_records_it_purged(client, db):
    response = post(client, "zendesk", json.loads(fixture("zendesk", "event_ticket_permanently_deleted")))
    assert (response.status_code, response.json["status"]) == (200, "deleted")
    ticket = db.execute("SELECT subject, description, deleted_at, purged_at FROM tickets").fetchone()
    assert (ticket["subject"], ticket["description"]) == (None, None)
    assert ticket["deleted_at"] is not None and ticket["purged_at"] is not None
    assert mentions(db, "Cannot login to mobile app", "login issues") == []


@pytest.mark.parametrize("flag, outcome, deleted", [(True, "deleted", True), (False, "updated", False)])
def test_a_freshworks_update_that_moves_a_ticket_to_the_trash_or_back(client, db, flag, outcome, deleted):
    body = json.loads(fixture("freshdesk", "product_ticket_update_changes"))
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "11", "ticket_subject": "before"}})
    if not flag:
        db.execute("UPDATE tickets SET deleted_at = '2017-01-01T00:00:00Z'")  # before the fixture's update
    body["data"]["ticket"]["changes"] = {"deleted": [not flag, flag]}
    assert post(client, "freshdesk", body).json["status"] == outcome
    assert (db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is not None) is deleted


def test_a_permanent_delete_while_webhooks_arrive_for_the_ticket_leaves_nothing(make_app, db):
    """Deliveries of the ticket race the deletion: each one is stored either before it (and
    forgotten by it) or after it (content-free); none brings the data back."""
    app = make_app()
    client = app.test_client()
    seed_personal_ticket(client)
    answers, stop = [], threading.Event()

    def webhooks():
        live = make_app().test_client()
        n = 0
        while not stop.is_set() and n < 400:
            n += 1
            answers.append(post(live, "zendesk", {"ticket": {"id": "777", "requester": f"{NAME} <{EMAIL}>",
                                                             "latest_comment": f"{COMMENT} #{n}"}},
                                 **ACCOUNT).json["status"])

    sender = threading.Thread(target=webhooks)
    sender.start()
    try:
        while len(answers) < 5:
            threading.Event().wait(0.01)
        assert post(client, "zendesk", zendesk_event("permanently_deleted")).json["status"] == "deleted"
        seen = len(answers)
        while len(answers) < seen + 5:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        sender.join(30)
    assert "stale" in answers and set(answers) <= {"updated", "recorded", "stale"}
    assert mentions(db, NAME, EMAIL, COMMENT) == []


def test_deletions_are_ordered_by_their_own_clock(client, db):
    """Deleted at T1, updated at T3, restored at T2 arriving last: the restore is older
    than the stored version but newer than the deletion, so it clears the mark. A
    snapshot older than the deletion does not. An older permanent delete forgets
    without moving the ticket's fields back."""
    seed_personal_ticket(client)  # updated_at 2025-01-08T11:00
    post(client, "zendesk", zendesk_event("soft_deleted", updated_at="2025-01-09T00:00:00Z"))
    post(client, "zendesk", zendesk_event("status_changed", event_id="t3", status="solved",
                                          updated_at="2025-01-11T00:00:00Z"))
    older = post(client, "zendesk", zendesk_event("undeleted", event_id="too-old", updated_at="2025-01-08T12:00:00Z"))
    assert older.json["status"] == "stale"
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is not None
    restored = post(client, "zendesk", zendesk_event("undeleted", updated_at="2025-01-10T00:00:00Z"))
    assert restored.json["status"] == "updated"
    assert db.execute("SELECT deleted_at, status FROM tickets").fetchone() == {"deleted_at": None, "status": "solved"}

    purged = post(client, "zendesk", zendesk_event("permanently_deleted", status="open",
                                                   updated_at="2025-01-10T12:00:00Z"))
    assert purged.json["status"] == "deleted"
    ticket = db.execute("SELECT status, vendor_updated_at, deleted_at, purged_at FROM tickets").fetchone()
    assert ticket["status"] == "solved" and ticket["vendor_updated_at"].isoformat() == "2025-01-11T00:00:00+00:00"
    assert ticket["deleted_at"] is not None and ticket["purged_at"] is not None
    assert mentions(db, NAME, EMAIL, COMMENT) == []


def test_a_free_text_rule_name_never_purges(client, db):
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "5", "ticket_contact_email": EMAIL}})
    response = post(client, "freshdesk", {"ticket_id": "5", "event": "Ticket permanently deleted"})
    assert response.json["status"] == "deleted"
    ticket = db.execute("SELECT requester_email, purged_at FROM tickets").fetchone()
    assert ticket == {"requester_email": EMAIL, "purged_at": None}  # marked deleted, content kept


@pytest.mark.parametrize("triggered, outcome, deleted", [
    ("{ticket_action:deleted}", "deleted", True), ("{deleted:true}", "deleted", True),
    ("{ticket_action:restored}", "updated", False), ("{deleted:false}", "updated", False)])
def test_a_freshdesk_rule_says_deletion_in_its_triggered_event(client, db, triggered, outcome, deleted):
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "9", "ticket_subject": "Refund"}})
    if not deleted:
        db.execute("UPDATE tickets SET deleted_at = now() - interval '1 day'")
    response = post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "9", "triggered_event": triggered}})
    assert response.json["status"] == outcome
    assert (db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is not None) is deleted


def test_deleted_again_after_a_missed_restore_the_mark_moves_and_a_late_restore_stays_stale(client, db):
    seed_personal_ticket(client)
    post(client, "zendesk", zendesk_event("soft_deleted", event_id="d1", updated_at="2025-01-09T00:00:00Z"))
    # (the restore at 2025-01-10 is missed) deleted again at 2025-01-11:
    again = post(client, "zendesk", zendesk_event("soft_deleted", event_id="d2", updated_at="2025-01-11T00:00:00Z"))
    assert again.json["status"] == "updated"
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"].isoformat() == \
        "2025-01-11T00:00:00+00:00"
    late = post(client, "zendesk", zendesk_event("undeleted", updated_at="2025-01-10T00:00:00Z"))
    assert late.json["status"] == "stale"
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is not None


def test_a_vendors_own_deleted_flag_change_is_not_taken_for_a_restore(client, db):
    body = json.loads(fixture("freshdesk", "product_ticket_update_changes"))  # updated 2017-06-02
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "11", "ticket_subject": "before"}})
    db.execute("UPDATE tickets SET deleted_at = '2020-01-01T00:00:00Z'")  # deleted after that update
    body["data"]["ticket"]["changes"] = {"deleted": [True, False], "status": [2, 4]}
    post(client, "freshdesk", body)
    event = db.execute("SELECT changes FROM events ORDER BY id DESC LIMIT 1").fetchone()
    assert "deleted" not in event["changes"] and "status" in event["changes"]
    assert db.execute("SELECT deleted_at FROM tickets").fetchone()["deleted_at"] is not None

"""Every row of the webhook status table, driven the way vendors call: real bytes, real
signatures, and a look at what PostgreSQL holds afterwards."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from signing import (
    FRESHDESK_HMAC_OLD, FRESHDESK_PASSWORD, FRESHDESK_URL, FRESHDESK_USER, ZENDESK_PASSWORD,
    ZENDESK_SIGNING_OLD, ZENDESK_USER, basic, body_of, fixture, freshdesk_hmac, post, signed, url_for,
    zendesk_signature,
)

ALREADY = "Ticket already processed (idempotent)"


def tickets(db):
    return db.execute("SELECT * FROM tickets ORDER BY created_at, external_id").fetchall()


def events(db):
    return db.execute("SELECT * FROM events ORDER BY id").fetchall()


def deliveries(db):
    return db.execute("SELECT * FROM deliveries ORDER BY id").fetchall()


@pytest.mark.parametrize("vendor, case", [
    ("freshdesk", "legacy_automation"), ("freshdesk", "api_ticket"), ("freshdesk", "flat"),
    ("zendesk", "event_ticket_created"), ("zendesk", "trigger_nested"), ("zendesk", "trigger_flat"),
    ("zendesk", "flat"),
])
def test_a_new_ticket_is_created_with_its_first_event_and_raw_payload(client, db, vendor, case):
    body = fixture(vendor, case)
    response = post(client, vendor, body)

    assert response.status_code == 201
    assert response.json == {"status": "created", "ticket_id": response.json["ticket_id"],
                             "event_id": response.json["event_id"]}
    uuid.UUID(response.json["ticket_id"])
    [row] = tickets(db)
    assert (str(row["id"]), row["vendor"], row["revision"]) == (response.json["ticket_id"], vendor, 1)
    [event] = events(db)
    assert (str(event["id"]), str(event["ticket_id"]), event["outcome"]) == (
        response.json["event_id"], response.json["ticket_id"], "created")
    assert event["payload"] == json.loads(body)
    assert event["published_at"] is None  # waiting in the outbox
    assert deliveries(db) == []  # the event row is this request's audit


def test_the_normalized_fields_land_in_their_columns(client, db):
    post(client, "freshdesk", fixture("freshdesk", "legacy_automation"))
    [row] = tickets(db)
    assert {k: row[k] for k in ("external_id", "subject", "status", "priority", "requester_name",
                                "requester_email", "tags", "custom_fields")} == {
        "external_id": "11", "subject": "Printer on fire", "status": "pending", "priority": "high",
        "requester_name": "Ada Lovelace", "requester_email": "ada@example.com", "tags": ["printer", "urgent"],
        "custom_fields": {"region": "EMEA", "contract_number": "C-2041"},
    }
    assert row["vendor_updated_at"].isoformat() == "2025-02-03T10:15:00+00:00"
    [event] = events(db)
    assert event["payload"]["freshdesk_webhook"]["triggered_event"] == "{status:{from:4,to:6}}"
    assert (event["event_type"], event["changes"]) == (
        "ticket.status_changed", {"status": {"previous": "resolved", "current": "waiting on customer"}})


# --- idempotency is by delivery ---------------------------------------------------


def test_the_same_delivery_three_times_is_stored_once(client, db):
    first = post(client, "freshdesk", fixture("freshdesk", "api_ticket"))
    again = [post(client, "freshdesk", fixture("freshdesk", "api_ticket")) for _ in range(2)]

    for response in again:
        assert (response.status_code, response.json) == (200, {
            "status": "already_exists", "ticket_id": first.json["ticket_id"],
            "event_id": first.json["event_id"], "message": ALREADY})
    assert len(tickets(db)) == 1 and len(events(db)) == 1
    assert [(d["outcome"], str(d["event_id"])) for d in deliveries(db)] == [
        ("already_exists", first.json["event_id"])] * 2


def test_a_zendesk_event_redelivered_is_known_by_its_event_id_even_resigned(client, db):
    """A retry has a new signature timestamp, the same event id."""
    first = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    again = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    assert again.json["status"] == "already_exists" and again.json["event_id"] == first.json["event_id"]
    assert [e["vendor_event_id"] for e in events(db)] == ["cbe4028c-7239-495d-b020-f22348516046"]


def test_a_trigger_body_resent_with_a_new_invocation_id_is_already_exists(client, db):
    """X-Zendesk-Webhook-Invocation-Id is not signed: a review re-sent a captured request
    with a new one and a second event was stored. A trigger body has no signed id, so
    within REDELIVERY_WINDOW the same body is the same delivery, whatever the header."""
    body = {"ticket_id": "7", "status": "Open"}
    first = post(client, "zendesk", body, **{"X-Zendesk-Webhook-Invocation-Id": "inv-1"})
    retry = post(client, "zendesk", body, **{"X-Zendesk-Webhook-Invocation-Id": "inv-1"})
    replay = post(client, "zendesk", body, **{"X-Zendesk-Webhook-Invocation-Id": "inv-2"})
    assert [r.json["status"] for r in (first, retry, replay)] == ["created", "already_exists", "already_exists"]
    assert first.json["event_id"] == retry.json["event_id"] == replay.json["event_id"]
    assert len(events(db)) == 1 and events(db)[0]["vendor_event_id"] is None


def test_two_zendesk_events_about_an_unchanged_ticket_are_two_events(client, db):
    """Before: the comment event was answered already_exists and the comment was lost."""
    created = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    comment = post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))

    assert (comment.status_code, comment.json["status"]) == (200, "recorded")
    assert comment.json["ticket_id"] == created.json["ticket_id"]
    stored = events(db)
    assert [e["event_type"] for e in stored] == ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added"]
    assert (stored[1]["comment_body"], stored[1]["comment_author"], stored[1]["comment_public"]) == (
        "Any update?", "Jane Doe", True)
    assert stored[1]["payload"] == json.loads(fixture("zendesk", "event_ticket_comment_added"))


def test_a_public_note_after_a_private_note_is_two_events(client, db):
    private = {"freshdesk_webhook": {"ticket_id": 11, "ticket_latest_private_comment": "Called the customer"}}
    public = {"freshdesk_webhook": {"ticket_id": 11, "ticket_latest_public_comment": "We called you"}}
    post(client, "freshdesk", fixture("freshdesk", "legacy_automation"))
    assert post(client, "freshdesk", private).json["status"] == "recorded"
    assert post(client, "freshdesk", public).json["status"] == "recorded"
    assert [(e["comment_body"], e["comment_public"]) for e in events(db)[1:]] == [
        ("Called the customer", False), ("We called you", True)]


def test_an_identical_body_past_the_redelivery_window_is_a_new_event(make_app, db):
    """A rule may send the same body twice in a day; only within the vendors' retry
    horizon is an identical body (without an event id) a redelivery."""
    client = make_app(REDELIVERY_WINDOW="600").test_client()
    body = {"freshdesk_webhook": {"ticket_id": 30, "ticket_status": "Open"}}
    first = post(client, "freshdesk", body)
    assert post(client, "freshdesk", body).json["status"] == "already_exists"
    db.execute("UPDATE events SET received_at = received_at - interval '601 seconds'")
    later = post(client, "freshdesk", body)
    assert later.json["status"] == "recorded" and later.json["event_id"] != first.json["event_id"]
    assert post(client, "freshdesk", body).json == {  # and now that one is the one redelivered
        "status": "already_exists", "ticket_id": first.json["ticket_id"], "event_id": later.json["event_id"],
        "message": ALREADY}


# --- merge, never wipe ------------------------------------------------------------


def test_a_partial_body_keeps_every_field_it_does_not_mention(client, db):
    """Before: a comment rule's body (an id and a comment) wiped subject, status, priority
    and requester, because every absent field was stored as null."""
    post(client, "freshdesk", fixture("freshdesk", "legacy_automation"))
    note = post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": 11, "ticket_latest_public_comment": "Done"}})
    status = post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": 11, "ticket_status": "Resolved"}})

    assert (note.json["status"], status.json["status"]) == ("recorded", "updated")
    [row] = tickets(db)
    assert (row["subject"], row["status"], row["priority"], row["requester_name"], row["tags"], row["revision"]) == (
        "Printer on fire", "resolved", "high", "Ada Lovelace", ["printer", "urgent"], 2)


def test_a_field_sent_empty_is_emptied(client, db):
    post(client, "zendesk", {"ticket": {"id": "60", "subject": "s", "priority": "High", "tags": "a b"}})
    assert post(client, "zendesk", {"ticket": {"id": "60", "priority": "", "tags": ""}}).json["status"] == "updated"
    [row] = tickets(db)
    assert (row["subject"], row["priority"], row["tags"]) == ("s", None, [])


def test_custom_fields_merge_one_by_one_and_the_event_keeps_its_payload(client, db):
    """Before: ticket_cf_region EU -> US was already_exists and the stored payload said EU."""
    eu = {"freshdesk_webhook": {"ticket_id": 61, "ticket_cf_region": "EU", "ticket_cf_tier": "gold"}}
    us = {"freshdesk_webhook": {"ticket_id": 61, "ticket_cf_region": "US"}}
    post(client, "freshdesk", eu)
    assert post(client, "freshdesk", us).json["status"] == "updated"
    [row] = tickets(db)
    assert row["custom_fields"] == {"region": "US", "tier": "gold"}
    assert events(db)[-1]["payload"]["freshdesk_webhook"]["ticket_cf_region"] == "US"


def test_an_older_event_arriving_late_is_kept_and_changes_nothing(client, db):
    first = post(client, "freshdesk", {"ticket": {"id": 52, "subject": "new", "updated_at": "2025-01-02T00:00:00Z"}})
    late = post(client, "freshdesk", {"ticket": {"id": 52, "subject": "old", "updated_at": "2025-01-01T00:00:00Z"}})

    assert (late.status_code, late.json["status"], late.json["ticket_id"]) == (200, "stale", first.json["ticket_id"])
    [row] = tickets(db)
    assert (row["subject"], row["revision"]) == ("new", 1)
    assert [(e["outcome"], e["payload"]["ticket"]["subject"]) for e in events(db)] == [("created", "new"),
                                                                                       ("stale", "old")]


def test_a_date_the_service_cannot_read_keeps_the_stored_time_so_a_late_retry_stays_stale(client, db):
    """A Zendesk trigger renders {{ticket.updated_at}} as "February 3, 2025" (Zulip's
    fixture). Unreadable, it must not wipe the stored time: the late retry of an older
    delivery after it would then pass for newer and roll the status back."""
    post(client, "zendesk", {"ticket_id": "8", "ticket_status": "New", "updated_at": "2025-02-03T19:59:00Z"})
    post(client, "zendesk", {"ticket_id": "8", "ticket_status": "Pending", "updated_at": "2025-02-03T20:10:00Z"})
    trigger = json.loads(fixture("zendesk", "trigger_full_name_keys")) | {"ticket_id": "8", "ticket_status": "Pending"}
    assert post(client, "zendesk", trigger).json["status"] in ("updated", "recorded")
    [row] = tickets(db)
    assert row["vendor_updated_at"] == datetime(2025, 2, 3, 20, 10, tzinfo=UTC)
    late = post(client, "zendesk", {"ticket_id": "8", "ticket_status": "Open", "updated_at": "2025-02-03T20:05:00Z"})
    assert late.json["status"] == "stale"
    assert tickets(db)[0]["status"] == "pending"


def test_a_change_a_freshdesk_trigger_states_is_applied_to_the_stored_ticket(client, db):
    post(client, "freshdesk", {"ticket": {"id": 7801, "subject": "x", "status": "Open"}})
    changed = post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "7801",
                                                               "triggered_event": "{status:{from:2,to:4}}"}})
    assert changed.json["status"] == "updated"
    assert tickets(db)[0]["status"] == "resolved"


def test_changed_fields_with_the_same_updated_at_are_not_older_so_they_apply(client, db):
    post(client, "freshdesk", {"ticket": {"id": 51, "subject": "v1", "updated_at": "2025-01-01T00:00:00Z"}})
    same_time = post(client, "freshdesk", {"ticket": {"id": 51, "subject": "v2", "updated_at": "2025-01-01T00:00:00Z"}})
    assert same_time.json["status"] == "updated"


def test_a_zendesk_status_change_then_a_comment_with_equal_fields(client, db):
    post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    status = json.loads(fixture("zendesk", "event_ticket_created"))
    status.update(type="zen:event-type:ticket.status_changed", id="status-1", event={"previous": "OPEN", "current": "PENDING"})
    status["detail"].update(status="PENDING", updated_at="2025-01-08T11:00:00Z")
    comment = json.loads(fixture("zendesk", "event_ticket_comment_added"))
    comment["detail"].update(status="PENDING", updated_at="2025-01-08T11:00:00Z")

    assert post(client, "zendesk", status).json["status"] == "updated"
    assert post(client, "zendesk", comment).json["status"] == "recorded"
    [row] = tickets(db)
    assert (row["status"], row["revision"]) == ("pending", 2)
    assert events(db)[1]["changes"] == {"status": {"previous": "open", "current": "pending"}}


def test_a_product_events_changes_are_newer_than_the_snapshot_beside_them(client, db):
    post(client, "freshdesk", fixture("freshdesk", "product_ticket_create"))
    update = post(client, "freshdesk", fixture("freshdesk", "product_ticket_update_changes"))
    assert update.json["status"] == "updated"
    [row] = tickets(db)
    assert (row["status"], row["priority"]) == ("resolved", "medium")  # the snapshot itself says open / low


def test_numeric_and_string_ids_of_one_vendor_are_one_ticket(client, db):
    first = post(client, "zendesk", {"id": 123, "subject": "Test"})
    second = post(client, "zendesk", {"id": "123", "subject": "Test"})
    assert (second.json["ticket_id"], second.json["status"]) == (first.json["ticket_id"], "recorded")


# --- vendors and accounts -------------------------------------------------------------


def test_the_same_id_at_two_vendors_is_two_tickets(client, db):
    assert post(client, "freshdesk", {"id": 7}).status_code == 201
    assert post(client, "zendesk", {"id": 7}).status_code == 201
    assert len(tickets(db)) == 2


def test_the_same_id_in_two_zendesk_accounts_is_two_tickets(client, db):
    """A sandbox and a production account both have ticket 7."""
    sandbox = post(client, "zendesk", {"ticket_id": "7"}, **{"X-Zendesk-Account-Id": "1001"})
    production = post(client, "zendesk", {"ticket_id": "7"}, **{"X-Zendesk-Account-Id": "1002"})
    assert (sandbox.status_code, production.status_code) == (201, 201)
    assert sorted(r["account"] for r in tickets(db)) == ["1001", "1002"]


def test_freshdesk_accounts_come_from_the_url_and_the_plain_url_keeps_working(client, db, add_source):
    add_source("freshdesk", "acme.freshdesk.com", "hmac")  # the environment's secret writes there too
    plain = post(client, "freshdesk", {"id": 8})
    acme = post(client, "freshdesk", {"id": 8}, account="acme.freshdesk.com")
    again = post(client, "freshdesk", {"id": 8, "subject": "s"}, account="acme.freshdesk.com")
    assert (plain.status_code, acme.status_code) == (201, 201)
    assert again.json["ticket_id"] == acme.json["ticket_id"] != plain.json["ticket_id"]
    assert sorted(r["account"] for r in tickets(db)) == ["", "acme.freshdesk.com"]
    assert client.post(FRESHDESK_URL + "/bad%20account", data=b"{}").status_code == 404


def test_an_authentic_event_that_is_not_about_a_ticket_is_ignored_and_audited(client, db):
    response = post(client, "zendesk", fixture("zendesk", "event_user_created"))
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert tickets(db) == [] and events(db) == []
    [delivery] = deliveries(db)
    assert (delivery["outcome"], delivery["ticket_id"]) == ("ignored", None)


# --- the request ----------------------------------------------------------------------


@pytest.mark.parametrize("vendor, auth", [
    ("freshdesk", lambda body: freshdesk_hmac(body)),
    ("freshdesk", lambda body: freshdesk_hmac(body, prefix="sha256=")),
    ("freshdesk", lambda body: freshdesk_hmac(body, secret=FRESHDESK_HMAC_OLD)),
    ("freshdesk", lambda body: {"X-Freshdesk-Signature": freshdesk_hmac(body)["X-Freshdesk-Signature"].upper()}),
    ("freshdesk", lambda body: basic(FRESHDESK_USER, FRESHDESK_PASSWORD)),
    ("zendesk", lambda body: zendesk_signature(body)),
    ("zendesk", lambda body: zendesk_signature(body, secret=ZENDESK_SIGNING_OLD)),
    ("zendesk", lambda body: basic(ZENDESK_USER, ZENDESK_PASSWORD)),
], ids=["fd-hmac", "fd-hmac-prefixed", "fd-hmac-rotated", "fd-hmac-uppercase", "fd-basic",
        "zd-signature", "zd-signature-rotated", "zd-basic"])
def test_every_configured_authentication_method_is_accepted(client, db, vendor, auth):
    body = body_of({"id": 900, "subject": "auth"})
    response = client.post(url_for(vendor), data=body, headers=auth(body))
    assert response.status_code == 201, response.json


@pytest.mark.parametrize("content_type", [
    "application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None,
])
def test_the_body_is_json_whatever_the_content_type_says(client, db, content_type):
    body, auth = signed("freshdesk", {"id": 901, "subject": "labelled as form data"})
    headers = {**auth, "Content-Type": content_type} if content_type else freshdesk_hmac(body)
    response = client.post(FRESHDESK_URL, data=body, headers=headers)
    assert response.status_code == 201, response.json


def test_a_request_id_is_echoed_or_generated_and_stored_with_the_event(client, db):
    given = post(client, "freshdesk", {"id": 902}, **{"X-Request-ID": "abc-123"})
    generated = post(client, "freshdesk", {"id": 903})
    hostile = post(client, "freshdesk", {"id": 904}, **{"X-Request-ID": "x" * 500})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert hostile.headers["X-Request-ID"] != "x" * 500
    assert events(db)[0]["request_id"] == "abc-123"


def test_unknown_paths_and_wrong_methods_answer_json(client):
    assert (client.get("/nowhere").status_code, client.get("/nowhere").json) == (404, {"error": "Not found"})
    wrong = client.get(FRESHDESK_URL)
    assert (wrong.status_code, wrong.json) == (405, {"error": "Method not allowed"})
    assert "POST" in wrong.headers["Allow"]
    assert client.post(FRESHDESK_URL + "/").status_code == 404


def test_a_database_refusing_writes_is_a_503_not_a_500(make_app, db, postgres):
    """A standby during a failover refuses writes (SQLSTATE 25006). The vendor must retry."""
    import psycopg

    with psycopg.connect(postgres.url(), autocommit=True) as admin:  # from another database
        admin.execute("ALTER DATABASE ingestion_test SET default_transaction_read_only = on")
        try:
            client = make_app().test_client()  # new connections pick the setting up
            response = post(client, "freshdesk", {"id": "read-only"})
        finally:
            admin.execute("ALTER DATABASE ingestion_test RESET default_transaction_read_only")
    assert (response.status_code, response.json) == (503, {"error": "Database unavailable, please retry later"})
    assert 1 <= int(response.headers["Retry-After"]) <= 59


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_at_the_edge_of_the_calendar_is_stored_as_null_not_a_500(client, db, moment):
    response = post(client, "freshdesk", {"ticket": {"id": "edge", "updated_at": moment}})
    assert response.status_code == 201, response.json
    [row] = tickets(db)
    assert row["vendor_updated_at"] is None and events(db)[0]["payload"]["ticket"]["updated_at"] == moment


def test_a_body_that_names_people_without_ids_never_leaves_another_persons_id(client, db):
    """A review's cases, ids from an API-shaped body or an event subscription, names from
    a trigger or rule body: an unassigned ticket (Zendesk renders `  <>`, a Freshdesk rule
    empty agent fields) kept the last assignee's id, and another requester address kept
    the previous requester's id beside the new person's name."""
    def people(external_id):
        return db.execute("SELECT requester_name, requester_email, requester_id, assignee_name, assignee_email, "
                          "assignee_id FROM tickets WHERE external_id = %s", (external_id,)).fetchone()

    post(client, "freshdesk", {"ticket": {"id": "ids-1", "responder_id": 320, "requester_id": 6001,
                                          "requester": {"name": "Grace Hopper", "email": "grace@example.com"}}})
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "ids-1", "ticket_agent_name": "",
                                                     "ticket_agent_email": ""}})
    assert (people("ids-1")["assignee_id"], people("ids-1")["requester_id"]) == (None, "6001")  # same requester
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "ids-1", "ticket_requester_name": "Halit Okumus",
                                                     "ticket_requester_email": "halit@example.com"}})
    assert people("ids-1") == {"requester_name": "Halit Okumus", "requester_email": "halit@example.com",
                               "requester_id": None, "assignee_name": None, "assignee_email": None,
                               "assignee_id": None}
    post(client, "zendesk", {"ticket": {"id": "ids-2", "assignee": "Agent Smith <smith@example.com>",
                                        "assignee_id": "8447388090496"}})
    post(client, "zendesk", {"ticket": {"id": "ids-2", "status": "Open", "assignee": "  <>"}})
    assert (people("ids-2")["assignee_name"], people("ids-2")["assignee_id"]) == (None, None)
    post(client, "freshdesk", {"ticket": {"id": "ids-3", "requester_id": 7, "requester": {"name": "Ada",
                                                                                       "email": "ada@example.com"}}})
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "ids-3", "ticket_requester_name": "Ada Lovelace",
                                                     "ticket_requester_email": "ADA@example.com"}})
    assert people("ids-3")["requester_id"] == "7"  # the same address (in another case) is the same person
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": "ids-3",
                                                     "ticket_requester_email": " ada@example.com "}})
    assert people("ids-3")["requester_id"] == "7"  # and with spaces around it (a hand-written template)

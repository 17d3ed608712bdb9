"""Every row of the SPEC 2.1 table, driven the way vendors call: real bytes, real
signatures, and a look at what PostgreSQL holds afterwards."""

from __future__ import annotations

import json
import uuid

import pytest

from signing import (
    FRESHDESK_HMAC_OLD, FRESHDESK_PASSWORD, FRESHDESK_URL, FRESHDESK_USER, ZENDESK_PASSWORD,
    ZENDESK_SIGNING_OLD, ZENDESK_URL, ZENDESK_USER, basic, body_of, fixture, freshdesk_hmac, signed,
    zendesk_signature,
)

URLS = {"freshdesk": FRESHDESK_URL, "zendesk": ZENDESK_URL}


def post(client, vendor, payload, **headers):
    body, auth = signed(vendor, payload)
    return client.post(URLS[vendor], data=body, headers={**auth, **headers})


def tickets(db):
    return db.execute("SELECT * FROM tickets ORDER BY created_at, external_id").fetchall()


def deliveries(db):
    return db.execute("SELECT * FROM deliveries ORDER BY id").fetchall()


@pytest.mark.parametrize("vendor, case", [
    ("freshdesk", "legacy_automation"), ("freshdesk", "api_ticket"), ("freshdesk", "flat"),
    ("zendesk", "event_ticket_created"), ("zendesk", "trigger_nested"), ("zendesk", "trigger_flat"),
    ("zendesk", "flat"),
])
def test_a_new_ticket_is_created_and_stored_with_its_raw_payload(client, db, vendor, case):
    body = fixture(vendor, case)
    response = post(client, vendor, body)

    assert response.status_code == 201
    assert response.json == {"status": "created", "ticket_id": response.json["ticket_id"]}
    uuid.UUID(response.json["ticket_id"])
    [row] = tickets(db)
    assert str(row["id"]) == response.json["ticket_id"]
    assert row["external_source"] == vendor
    assert row["raw_payload"] == json.loads(body)
    [delivery] = deliveries(db)
    assert (delivery["outcome"], str(delivery["ticket_id"])) == ("created", response.json["ticket_id"])
    assert delivery["published_at"] is None  # waiting in the outbox


def test_the_normalized_fields_land_in_their_columns(client, db):
    post(client, "freshdesk", fixture("freshdesk", "legacy_automation"))
    [row] = tickets(db)
    assert {k: row[k] for k in ("external_id", "subject", "status", "priority", "requester_name",
                                "requester_email", "tags")} == {
        "external_id": "11", "subject": "Printer on fire", "status": "pending", "priority": "high",
        "requester_name": "Ada Lovelace", "requester_email": "ada@example.com", "tags": ["printer", "urgent"],
    }
    assert row["vendor_updated_at"].isoformat() == "2025-02-03T10:15:00+00:00"
    assert row["raw_payload"]["freshdesk_webhook"]["triggered_event"] == "{status:{from:4,to:6}}"


def test_a_redelivery_of_the_same_content_is_already_exists_with_the_same_id(client, db):
    first = post(client, "freshdesk", fixture("freshdesk", "api_ticket"))
    again = post(client, "freshdesk", fixture("freshdesk", "api_ticket"))

    assert again.status_code == 200
    assert again.json == {"status": "already_exists", "ticket_id": first.json["ticket_id"],
                          "message": "Ticket already processed (idempotent)"}
    assert len(tickets(db)) == 1
    assert [d["outcome"] for d in deliveries(db)] == ["created", "already_exists"]


def test_two_zendesk_events_about_an_unchanged_ticket_are_one_ticket(client, db):
    created = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    comment = post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))

    assert comment.status_code == 200
    assert comment.json["status"] == "already_exists"
    assert comment.json["ticket_id"] == created.json["ticket_id"]
    assert [d["vendor_delivery_id"] for d in deliveries(db)] == [
        "cbe4028c-7239-495d-b020-f22348516046", "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"]


def test_changed_content_updates_the_ticket(client, db):
    first = post(client, "freshdesk", {"ticket": {"id": 50, "subject": "v1", "updated_at": "2025-01-01T00:00:00Z"}})
    changed = post(client, "freshdesk", {"ticket": {"id": 50, "subject": "v2", "updated_at": "2025-01-02T00:00:00Z"}})

    assert changed.status_code == 200
    assert changed.json == {"status": "updated", "ticket_id": first.json["ticket_id"]}
    [row] = tickets(db)
    assert (row["subject"], row["revision"]) == ("v2", 2)
    assert row["raw_payload"]["ticket"]["subject"] == "v2"


def test_changed_content_with_the_same_updated_at_is_not_older_so_it_updates(client, db):
    post(client, "freshdesk", {"ticket": {"id": 51, "subject": "v1", "updated_at": "2025-01-01T00:00:00Z"}})
    same_time = post(client, "freshdesk", {"ticket": {"id": 51, "subject": "v2", "updated_at": "2025-01-01T00:00:00Z"}})
    assert same_time.json["status"] == "updated"


def test_an_older_version_arriving_late_is_stale_and_overwrites_nothing(client, db):
    first = post(client, "freshdesk", {"ticket": {"id": 52, "subject": "new", "updated_at": "2025-01-02T00:00:00Z"}})
    late = post(client, "freshdesk", {"ticket": {"id": 52, "subject": "old", "updated_at": "2025-01-01T00:00:00Z"}})

    assert late.status_code == 200
    assert late.json == {"status": "stale", "ticket_id": first.json["ticket_id"]}
    [row] = tickets(db)
    assert (row["subject"], row["revision"], row["raw_payload"]["ticket"]["subject"]) == ("new", 1, "new")
    assert [d["outcome"] for d in deliveries(db)] == ["created", "stale"]


def test_numeric_and_string_ids_of_one_vendor_are_one_ticket(client, db):
    first = post(client, "zendesk", {"id": 123, "subject": "Test"})
    second = post(client, "zendesk", {"id": "123", "subject": "Test"})
    assert second.json == {**first.json, "status": "already_exists", "message": "Ticket already processed (idempotent)"}


def test_the_same_id_at_two_vendors_is_two_tickets(client, db):
    assert post(client, "freshdesk", {"id": 7}).status_code == 201
    assert post(client, "zendesk", {"id": 7}).status_code == 201
    assert len(tickets(db)) == 2


def test_an_authentic_event_that_is_not_about_a_ticket_is_ignored_and_audited(client, db):
    response = post(client, "zendesk", fixture("zendesk", "event_user_created"))
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert tickets(db) == []
    [delivery] = deliveries(db)
    assert (delivery["outcome"], delivery["ticket_id"]) == ("ignored", None)


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
    response = client.post(URLS[vendor], data=body, headers=auth(body))
    assert response.status_code == 201, response.json


@pytest.mark.parametrize("content_type", [
    "application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None,
])
def test_the_body_is_json_whatever_the_content_type_says(client, db, content_type):
    body, auth = signed("freshdesk", {"id": 901, "subject": "labelled as form data"})
    headers = {**auth, "Content-Type": content_type} if content_type else freshdesk_hmac(body)
    response = client.post(FRESHDESK_URL, data=body, headers=headers)
    assert response.status_code == 201, response.json


def test_a_request_id_is_echoed_or_generated(client, db):
    given = post(client, "freshdesk", {"id": 902}, **{"X-Request-ID": "abc-123"})
    generated = post(client, "freshdesk", {"id": 903})
    hostile = post(client, "freshdesk", {"id": 904}, **{"X-Request-ID": "x" * 500})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert hostile.headers["X-Request-ID"] != "x" * 500
    assert [d["request_id"] for d in deliveries(db)][0] == "abc-123"


def test_unknown_paths_and_wrong_methods_answer_json(client):
    assert (client.get("/nowhere").status_code, client.get("/nowhere").json) == (404, {"error": "Not found"})
    wrong = client.get(FRESHDESK_URL)
    assert (wrong.status_code, wrong.json) == (405, {"error": "Method not allowed"})
    assert "POST" in wrong.headers["Allow"]
    assert client.post(FRESHDESK_URL + "/").status_code == 404


def test_the_same_instant_written_with_another_offset_is_the_same_content(client, db):
    first = post(client, "freshdesk", {"ticket": {"id": 53, "updated_at": "2025-01-01T10:00:00+01:00"}})
    again = post(client, "freshdesk", {"ticket": {"id": 53, "updated_at": "2025-01-01T09:00:00Z"}})
    assert again.json == {"status": "already_exists", "ticket_id": first.json["ticket_id"],
                          "message": "Ticket already processed (idempotent)"}


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
    assert row["vendor_updated_at"] is None and row["raw_payload"]["ticket"]["updated_at"] == moment

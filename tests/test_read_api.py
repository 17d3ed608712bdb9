"""GET /api/v1/tickets/<vendor>/<external_id> and .../events: bearer tokens, the stored
state, the history oldest first, pagination, and JSON errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from ingestion.storage.tickets import PAGE_BUDGET_BYTES
from signing import fixture, post

TOKEN = "read-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TICKET_KEYS = {"ticket_id", "vendor", "account", "external_id", "subject", "description", "status", "priority", "type",
               "requester", "assignee", "group", "organization", "tags", "custom_fields", "vendor_created_at",
               "vendor_updated_at", "deleted_at", "purged_at", "revision", "created_at", "updated_at"}


@pytest.fixture
def client(make_app, db):
    return make_app(API_TOKENS=f"{TOKEN} another-token-abcdefghij").test_client()


def test_production_without_tokens_answers_401_to_every_call(make_app, db):
    client = make_app().test_client()
    post(client, "freshdesk", {"id": 1})
    for path in ("/api/v1/tickets/freshdesk/1", "/api/v1/tickets/freshdesk/1/events"):
        response = client.get(path, headers=AUTH)
        assert (response.status_code, response.json) == (
            401, {"error": "The read API is closed: no API_TOKENS are configured"})


def test_development_without_tokens_is_open(make_app, db):
    client = make_app(APP_ENV="development").test_client()
    post(client, "freshdesk", {"id": 1})
    assert client.get("/api/v1/tickets/freshdesk/1").status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}])
def test_a_missing_or_wrong_token_is_401(client, headers):
    response = client.get("/api/v1/tickets/freshdesk/1", headers=headers)
    assert (response.status_code, response.json) == (401, {"error": "A valid bearer token is required"})
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_ticket_is_shown_as_stored_after_merging_its_events(client):
    post(client, "freshdesk", fixture("freshdesk", "legacy_automation"))
    post(client, "freshdesk", {"freshdesk_webhook": {"ticket_id": 11, "ticket_status": "Resolved",
                                                     "ticket_cf_region": "US"}})
    response = client.get("/api/v1/tickets/freshdesk/11", headers={"Authorization": "Bearer another-token-abcdefghij"})
    assert response.status_code == 200
    ticket = response.json
    assert set(ticket) == TICKET_KEYS
    assert {k: ticket[k] for k in ("vendor", "account", "external_id", "subject", "status", "priority", "revision",
                                   "tags", "custom_fields", "requester", "assignee", "group")} == {
        "vendor": "freshdesk", "account": "", "external_id": "11", "subject": "Printer on fire", "status": "resolved",
        "priority": "high", "revision": 2, "tags": ["printer", "urgent"],
        "custom_fields": {"region": "US", "contract_number": "C-2041"},
        "requester": {"name": "Ada Lovelace", "email": "ada@example.com", "id": None},
        "assignee": {"name": None, "email": None, "id": None}, "group": None}
    for name in ("vendor_created_at", "vendor_updated_at", "created_at", "updated_at"):
        assert datetime.fromisoformat(ticket[name]).tzinfo is not None, name


def test_the_account_query_selects_the_accounts_ticket(client):
    sandbox = post(client, "zendesk", {"ticket_id": "7", "subject": "sandbox"}, **{"X-Zendesk-Account-Id": "1001"})
    post(client, "zendesk", {"ticket_id": "7", "subject": "production"}, **{"X-Zendesk-Account-Id": "1002"})
    response = client.get("/api/v1/tickets/zendesk/7?account=1001", headers=AUTH)
    assert (response.json["ticket_id"], response.json["subject"], response.json["account"]) == (
        sandbox.json["ticket_id"], "sandbox", "1001")
    assert client.get("/api/v1/tickets/zendesk/7", headers=AUTH).status_code == 404  # the default account is ""


@pytest.mark.parametrize("path", ["/api/v1/tickets/freshdesk/404", "/api/v1/tickets/nosuchvendor/1",
                                  "/api/v1/tickets/freshdesk/404/events"])
def test_an_unknown_ticket_is_404(client, path):
    response = client.get(path, headers=AUTH)
    assert (response.status_code, response.json) == (404, {"error": "Ticket not found"})


def test_events_come_oldest_first_with_their_comment_changes_and_payload(client):
    created = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    comment = post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))
    post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))  # a redelivery: no event
    response = client.get("/api/v1/tickets/zendesk/35436/events?account=22129848", headers=AUTH)
    assert response.status_code == 200
    events = response.json["events"]
    assert response.json["next_cursor"] is None
    assert [(e["event_id"], e["event_type"], e["outcome"]) for e in events] == [
        (created.json["event_id"], "zen:event-type:ticket.created", "created"),
        (comment.json["event_id"], "zen:event-type:ticket.comment_added", "recorded")]
    assert events[1]["comment"] == {"body": "Any update?", "author": "Jane Doe", "public": True}
    assert events[0]["comment"] is None and events[0]["changes"] is None
    assert events[1]["vendor_event_id"] == "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
    assert events[1]["payload"]["event"]["comment"]["body"] == "Any update?"
    assert datetime.fromisoformat(events[0]["received_at"]).tzinfo is not None


def test_events_are_paginated_with_an_opaque_cursor(client):
    for n in range(5):
        post(client, "freshdesk", {"id": 9, "comment": f"note {n}"})
    seen, cursor = [], None
    for _ in range(4):
        response = client.get("/api/v1/tickets/freshdesk/9/events", headers=AUTH,
                              query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [e["comment"]["body"] for e in response.json["events"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"note {n}" for n in range(5)] and cursor is None


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "limit=-1", "cursor=abc", "cursor=-5",
                                   "limit=１", "account=" + "x" * 101,
                                   # past Python's 4300-digit int() limit: a 500 before
                                   "cursor=" + "1" * 5000, "limit=" + "5" * 5000])
def test_bad_query_parameters_are_a_json_400(client, query):
    post(client, "freshdesk", {"id": 9})
    response = client.get(f"/api/v1/tickets/freshdesk/9/events?{query}", headers=AUTH)
    assert response.status_code == 400 and set(response.json) == {"error"}


def test_reads_are_rate_limited_per_client_apart_from_webhooks(make_app, db):
    client = make_app(API_TOKENS=TOKEN, RATE_LIMIT_PER_MINUTE="100").test_client()
    statuses = [client.get("/api/v1/tickets/freshdesk/1", headers=AUTH).status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]
    assert post(client, "freshdesk", {"id": 1}).status_code == 201  # the webhooks' budget is untouched


def test_a_page_of_large_events_stops_at_the_byte_budget_and_says_where_to_go_on(client):
    """Six deliveries of 900 KB: a page of up to 100 events stops once its payloads pass
    PAGE_BUDGET_BYTES (it was read whole into the worker's memory), and the cursor leads
    through the rest."""
    pad = "x" * 900_000
    for n in range(6):
        assert post(client, "freshdesk", {"id": 12, "comment": f"big {n}", "pad": pad}).status_code in (200, 201)
    seen, cursor, pages = [], None, 0
    while True:
        response = client.get("/api/v1/tickets/freshdesk/12/events", headers=AUTH,
                              query_string={"cursor": cursor} if cursor else {})
        assert response.status_code == 200
        events = response.json["events"]
        assert len(response.get_data()) <= PAGE_BUDGET_BYTES + 1_000_000  # one event may cross the line
        seen += [event["payload"]["comment"] for event in events]
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"big {n}" for n in range(6)]
    assert pages == 2


def test_a_page_weighs_comments_as_escaped_json(client):
    """A comment of control characters is six bytes a character in the answer: counted
    as stored, a page of such events went well past its budget."""
    for n in range(5):
        body = {"id": 14, "ticket_latest_public_comment": "\x01" * 150_000 + str(n), "nonce": n}
        assert post(client, "freshdesk", body).status_code in (200, 201)
    response = client.get("/api/v1/tickets/freshdesk/14/events", headers=AUTH)
    events = response.json["events"]
    assert events[0]["comment"]["body"].startswith("\x01" * 10)
    assert 1 <= len(events) < 5 and response.json["next_cursor"] is not None
    assert len(response.get_data()) <= PAGE_BUDGET_BYTES  # (each event is 1.8 MB: three made 5.4 MB)


def test_a_payload_stored_deeper_than_the_limit_reads_back_without_a_500(client, db):
    """Stored before MAX_NESTING existed: the events of that ticket answered 500 on every
    read (Python's JSON reader recursed). Both reads now answer 200 with it as stored."""
    created = post(client, "freshdesk", {"id": 13, "subject": "deep history"})
    deep = '{"id": 13, "x": ' + "[" * 965 + "]" * 965 + "}"
    db.execute("INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, payload) "
               "VALUES (%s, 'recorded', 1, 'ticket.snapshot', 'body:deep', %s::jsonb)",
               (created.json["ticket_id"], deep))
    db.execute("UPDATE tickets SET custom_fields = jsonb_build_object('deep', %s::jsonb) WHERE id = %s",
               ("[" * 900 + "]" * 900, created.json["ticket_id"]))

    ticket = client.get("/api/v1/tickets/freshdesk/13", headers=AUTH)
    events = client.get("/api/v1/tickets/freshdesk/13/events", headers=AUTH)
    assert (ticket.status_code, events.status_code) == (200, 200)
    assert events.headers["Content-Type"] == "application/json"
    text = events.get_data(as_text=True)
    assert ("[" * 965) in text and text.count('"event_id"') == 2
    assert '"subject":"deep history"' in ticket.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/tickets/freshdesk/a%00b", "/api/v1/tickets/freshdesk/a%00b/events",
                                  "/api/v1/tickets/freshdesk/1?account=a%00b"])
def test_an_id_no_ticket_can_have_is_a_400_with_the_reason(client, path):
    """A NUL was answered 422 "the database refused a value in the payload", for a GET."""
    response = client.get(path, headers=AUTH)
    assert response.status_code == 400
    assert "NUL" in response.json["error"]


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_times_at_the_edges_of_the_calendar_read_back_whatever_the_databases_time_zone(make_app, db, zone):
    """A review's case: with the database's time zone east of UTC, a ticket updated at
    9999-12-31T23:59:59Z (accepted with 201) answered every read with a 422 "payload
    refused": psycopg turned the time into the session's zone, past year 9999."""
    name = db.execute("SELECT current_database() AS name").fetchone()["name"]
    db.execute(f"ALTER DATABASE {name} SET timezone = '{zone}'")
    try:
        client = make_app(API_TOKENS=TOKEN).test_client()  # a new pool: sessions start in `zone`
        for external_id, moment in (("late", "9999-12-31T23:59:59Z"), ("early", "0001-01-01T00:00:00Z")):
            stored = post(client, "freshdesk", {"ticket": {"id": external_id, "subject": "s", "updated_at": moment}})
            assert stored.status_code == 201, stored.json
            ticket = client.get(f"/api/v1/tickets/freshdesk/{external_id}", headers=AUTH)
            assert ticket.status_code == 200, ticket.json
            assert ticket.json["vendor_updated_at"].startswith(moment[:19])
            events = client.get(f"/api/v1/tickets/freshdesk/{external_id}/events", headers=AUTH)
            assert events.status_code == 200, events.json
    finally:
        db.execute(f"ALTER DATABASE {name} RESET timezone")

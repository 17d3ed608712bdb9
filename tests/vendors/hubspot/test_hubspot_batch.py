"""HubSpot's arrays through the whole service (real PostgreSQL), as HubSpot posts them: each
event read alone and answered in its place, the batch stored all or none, a redelivered
batch `already_exists` event by event, a bad event refusing (and quarantining) the whole
request, and a ticket's life sent as one batch rebuilt to the same ticket.

The life_* fixtures are single events (test_hubspot.py); a batch is their array."""

from __future__ import annotations

import json

import pytest
from normalizing import load
from signing import fixture, post
from test_hubspot import BATCHES

from ingestion.jobs import rebuild as rebuilding
from ingestion import replaying
from ingestion.vendors import VENDORS

LIFE = ["life_01_creation", "life_02_subject", "life_03_content", "life_04_priority_high", "life_05_owner",
        "life_06_category", "life_07_stage_waiting_on_contact", "life_08_custom_property",
        "life_09_association_contact", "life_10_stage_closed", "life_11_owner_cleared", "life_12_deletion",
        "life_13_restore"]
TICKET = "17395620143"
#: The life's portal, for the events of other fixtures sent in its batches (one portal per batch).
PORTAL = {"portalId": 62515}


def array(*cases: str, **changed) -> str:
    """The events of `cases` as one HubSpot body, each with `changed` applied."""
    return json.dumps([{**load("hubspot", case), **changed} for case in cases])


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


@pytest.mark.parametrize("case", BATCHES)
def test_each_published_array_is_answered_event_by_event_and_none_is_about_a_ticket(client, db, case):
    response = post(client, "hubspot", fixture("hubspot", case))
    assert (response.status_code, response.json) == (
        200, {"status": "batch", "events": [{"status": "ignored"}] * len(json.loads(fixture("hubspot", case)))})
    assert (count(db, "tickets"), count(db, "deliveries")) == (0, len(json.loads(fixture("hubspot", case))))


def test_a_tickets_life_in_one_batch_is_every_event_in_its_place(client, db):
    response = post(client, "hubspot", array(*LIFE))
    assert response.status_code == 201
    answered = response.json["events"]
    assert [one["status"] for one in answered] == ["created"] + ["updated"] * 10 + ["deleted", "updated"]
    assert {one["external_id"] for one in answered} == {TICKET}
    assert [one["vendor_event_id"] for one in answered] == [str(4100000000 + n) for n in range(1, 14)]
    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["account"], ticket["revision"], ticket["status"], ticket["priority"], ticket["assignee_id"],
            ticket["deleted_at"]) == ("62515", len(LIFE), "closed", "high", None, None)
    stored = db.execute("SELECT id::text AS id, payload FROM events ORDER BY events.id").fetchall()
    assert [row["id"] for row in stored] == [one["event_id"] for one in answered]
    assert [row["payload"] for row in stored] == [load("hubspot", case) for case in LIFE]  # each event its own


def test_a_redelivered_batch_is_already_exists_event_by_event(client, db):
    first = post(client, "hubspot", array(*LIFE))
    again = post(client, "hubspot", array(*LIFE, attemptNumber=4))  # HubSpot counts its retries in the body
    assert again.status_code == 200
    assert {one["status"] for one in again.json["events"]} == {"already_exists"}
    assert [one["event_id"] for one in again.json["events"]] == [one["event_id"] for one in first.json["events"]]
    assert count(db, "events") == len(LIFE)


def test_a_retry_holding_one_new_event_stores_only_that_one(client, db):
    post(client, "hubspot", array("life_01_creation", "life_02_subject"))
    response = post(client, "hubspot", array("life_01_creation", "life_02_subject", "life_04_priority_high"))
    assert [one["status"] for one in response.json["events"]] == ["already_exists", "already_exists", "updated"]
    assert count(db, "events") == 3


def test_ticket_and_other_events_share_a_batch_each_answered_in_its_place(client, db):
    body = json.dumps([load("hubspot", "life_01_creation"), {**load("hubspot", "sim_deal_creation"), **PORTAL},
                       load("hubspot", "life_02_subject")])
    answered = post(client, "hubspot", body).json["events"]
    assert [one["status"] for one in answered] == ["created", "ignored", "updated"]
    assert answered[1] == {"status": "ignored"}
    assert (count(db, "tickets"), count(db, "events"), count(db, "deliveries")) == (1, 2, 1)


def test_events_out_of_order_in_one_batch_leave_the_newest_state(client, db):
    """HubSpot keeps no order within a batch: it is stored oldest first (answered in the
    body's order), so the older stage change is history and the newer one the state."""
    answered = post(client, "hubspot", array("life_10_stage_closed", "life_07_stage_waiting_on_contact")).json["events"]
    assert [one["status"] for one in answered] == ["updated", "created"]
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == "closed"
    # A redelivery of one of them later is a redelivery, whatever its time.
    late = post(client, "hubspot", array("life_07_stage_waiting_on_contact")).json["events"]
    assert [one["status"] for one in late] == ["already_exists"]


@pytest.mark.parametrize("body, field", [
    (lambda: json.dumps([load("hubspot", "life_01_creation"), {**load("hubspot", "sim_deal_creation"), **PORTAL},
                         {**load("hubspot", "missing_object_id"), **PORTAL}]), "[2].objectId"),
    (lambda: json.dumps([load("hubspot", "life_01_creation"), "ticket.creation"]), "[1]"),
    (lambda: json.dumps([load("hubspot", "life_02_subject"),
                         {**load("hubspot", "property_change_without_property"), **PORTAL}]), "[1].propertyName"),
])
def test_one_unreadable_event_refuses_the_whole_batch_naming_its_place(client, db, body, field):
    response = post(client, "hubspot", body())
    assert response.status_code == 422 and f"'{field}'" in response.json["error"]
    assert count(db, "tickets") + count(db, "events") + count(db, "deliveries") == 0
    [entry] = db.execute("SELECT vendor, account, body FROM quarantine").fetchall()
    assert (entry["vendor"], entry["account"], bytes(entry["body"])) == ("hubspot", "62515", body().encode())


def test_a_quarantined_batch_is_replayed_all_or_none_once_it_reads(app, db):
    client = app.test_client()
    body = json.dumps([load("hubspot", "life_01_creation"), {**load("hubspot", "life_02_subject"), "occurredAt": None}])
    assert post(client, "hubspot", body).status_code == 422
    services = app.extensions["ingestion"]
    normalizers = {vendor.name: vendor.normalizer(services.settings) for vendor in VENDORS}
    assert replaying.replay(services, normalizers, replaying.Selection()).as_json()["failed"] == 1
    db.execute("UPDATE quarantine SET body = %s", (array("life_01_creation", "life_02_subject").encode(),))
    done = replaying.replay(services, normalizers, replaying.Selection())
    assert done.outcomes == {"batch": 1} and count(db, "events") == 2 and count(db, "quarantine") == 0
    assert db.execute("SELECT account, subject FROM tickets").fetchone() == {
        "account": "62515", "subject": "Invoice PDF will not download"}


def test_a_batch_naming_two_portals_is_refused_on_the_bare_url(client, db):
    response = post(client, "hubspot", array("life_01_creation", "sim_ticket_creation"))  # 62515 and 244315265
    assert response.status_code == 403
    assert count(db, "tickets") == 0


def test_an_empty_array_is_refused_like_an_empty_body(client, db):
    response = post(client, "hubspot", b"[]")
    assert response.status_code == 400 and "empty array" in response.json["error"]


def test_a_life_sent_as_one_batch_rebuilds_to_the_same_ticket_and_history(app, db):
    post(app.test_client(), "hubspot", array(*LIFE))
    before = db.execute("SELECT * FROM tickets").fetchone()
    events = db.execute("SELECT * FROM events ORDER BY id").fetchall()
    settings = app.extensions["ingestion"].settings
    summary = rebuilding.rebuild(app.extensions["ingestion"].storage, {v.name: v for v in VENDORS},
                                 {v.name: v.normalizer(settings) for v in VENDORS},
                                 rebuilding.Scope("hubspot", "62515", TICKET))
    assert summary.changed == 0
    assert db.execute("SELECT * FROM tickets").fetchone() == before
    assert db.execute("SELECT * FROM events ORDER BY id").fetchall() == events


def test_a_number_past_a_floats_range_is_stored_as_sent_in_a_batch_as_in_a_single_event(client, db):
    """A review's case: HubSpot alone refused `"z": 1e400` with a 422 and quarantined the
    batch (each event was written back with Python's `Infinity`, which is not JSON);
    every other vendor, storing the body as sent, kept it."""
    body = array("life_01_creation")
    body = body[:-2] + ', "z": 1e400, "w": [-2.5E+999, 0.5]}]'
    response = post(client, "hubspot", body)
    assert response.status_code == 201, response.json
    stored = db.execute("SELECT payload->>'z' AS z, payload->'w' AS w FROM events").fetchone()
    assert (stored["z"], [str(n) for n in stored["w"]]) == (str(10 ** 400), [str(-25 * 10 ** 998), "0.5"])

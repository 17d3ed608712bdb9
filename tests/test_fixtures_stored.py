"""Every fixture, posted as its vendor sends it, stores what its normalization says: the
ticket's columns hold the fields the payload carries (and nothing for those it does not),
the event row keeps its type, vendor id, comment, changes and the raw payload. Unusable
fixtures store nothing; events not about a ticket are audited only."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import test_normalize_freshdesk
import test_normalize_zendesk
from signing import FRESHDESK_URL, ZENDESK_URL, fixture, signed

EXPECTED = {"freshdesk": test_normalize_freshdesk, "zendesk": test_normalize_zendesk}
URLS = {"freshdesk": FRESHDESK_URL, "zendesk": ZENDESK_URL}
COLUMNS = {"group": "group_name"}
EMPTY = {"tags": [], "custom_fields": {}}


def cases(kind: str) -> list[tuple[str, str]]:
    return [(vendor, case) for vendor, module in EXPECTED.items() for case in sorted(getattr(module, kind))]


def post(client, vendor, case):
    body, headers = signed(vendor, fixture(vendor, case))
    return client.post(URLS[vendor], data=body, headers=headers)


def stored_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("vendor, case", cases("CASES"), ids=[f"{v}-{c}" for v, c in cases("CASES")])
def test_each_fixture_stores_what_it_says(client, db, vendor, case):
    expected = EXPECTED[vendor].CASES[case]
    response = post(client, vendor, case)
    assert (response.status_code, response.json["status"]) == (201, "created"), response.json

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["account"], ticket["external_id"]) == (
        vendor, expected["account"], expected["external_id"])
    for field in ("subject", "description", "status", "priority", "type", "requester_name", "requester_email",
                  "requester_id", "assignee_name", "assignee_email", "assignee_id", "group", "organization",
                  "tags", "custom_fields", "vendor_created_at", "vendor_updated_at"):
        want = expected["fields"].get(field, EMPTY.get(field))
        if field == "custom_fields" and want is None:
            want = {}
        assert stored_value(ticket[COLUMNS.get(field, field)]) == want, field

    event = db.execute("SELECT * FROM events").fetchone()
    assert (str(event["id"]), event["outcome"], event["event_type"], event["vendor_event_id"]) == (
        response.json["event_id"], "created", expected["event_type"], expected["vendor_event_id"])
    comment = [event["comment_body"], event["comment_author"], event["comment_public"]] \
        if event["comment_body"] is not None else None
    assert (comment, event["changes"]) == (expected["comment"], expected["changes"])
    assert event["payload"] == json.loads(fixture(vendor, case))


@pytest.mark.parametrize("vendor, case", cases("REJECTED"), ids=[f"{v}-{c}" for v, c in cases("REJECTED")])
def test_each_unusable_fixture_is_a_422_naming_its_field_and_stores_nothing(client, db, vendor, case):
    response = post(client, vendor, case)
    assert response.status_code == 422
    assert f"'{EXPECTED[vendor].REJECTED[case]}'" in response.json["error"]
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM events) AS n").fetchone()["n"] == 0


@pytest.mark.parametrize("vendor, case", cases("IGNORED"), ids=[f"{v}-{c}" for v, c in cases("IGNORED")])
def test_each_event_not_about_a_ticket_is_ignored_and_audited(client, db, vendor, case):
    response = post(client, vendor, case)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert [r["outcome"] for r in db.execute("SELECT outcome FROM deliveries")] == ["ignored"]

"""Every fixture, posted as its vendor sends it, stores what its normalization says: the
ticket's columns hold the fields the payload carries (and nothing for those it does not),
the event row keeps its type, vendor id, comment, changes and the raw payload. Unusable
fixtures store nothing; events not about a ticket are audited only."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime

import pytest

from ingestion.vendors import VENDORS
from signing import TESTS, fixture, post


def expectations(vendor: str):
    """tests/vendors/<vendor>/test_<vendor>.py: its CASES, REJECTED and IGNORED."""
    path = TESTS / "vendors" / vendor / f"test_{vendor}.py"
    spec = importlib.util.spec_from_file_location(f"expectations_{vendor}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXPECTED = {vendor.name: expectations(vendor.name) for vendor in VENDORS}
COLUMNS = {"group": "group_name"}
EMPTY = {"tags": [], "custom_fields": {}}


def cases(kind: str) -> list[tuple[str, str]]:
    return [(vendor, case) for vendor, module in EXPECTED.items() for case in sorted(getattr(module, kind))]


def stored_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("vendor, case", cases("CASES"), ids=[f"{v}-{c}" for v, c in cases("CASES")])
def test_each_fixture_stores_what_it_says(client, db, vendor, case):
    expected = EXPECTED[vendor].CASES[case]
    deletion = expected.get("deletion")
    outcome = "deleted" if deletion in ("soft", "permanent") else "created"
    response = post(client, vendor, fixture(vendor, case), **EXPECTED[vendor].HEADERS.get(case, {}))
    assert (response.status_code, response.json["status"]) == (201 if outcome == "created" else 200, outcome), \
        response.json
    if deletion == "soft":  # the history records the mark
        expected = {**expected, "changes": {**(expected["changes"] or {}),
                                            "deleted": {"previous": False, "current": True}}}
    if deletion == "permanent":  # the ticket is forgotten: test_deletions.py checks every column
        expected = {**expected, "fields": {name: value for name, value in expected["fields"].items() if name in (
            "status", "priority", "type", "group", "vendor_created_at", "vendor_updated_at")},
            "comment": None, "changes": None}

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
        response.json["event_id"], outcome, expected["event_type"], expected["vendor_event_id"])
    assert (ticket["deleted_at"] is not None, ticket["purged_at"] is not None) == (
        outcome == "deleted", deletion == "permanent")
    comment = [event["comment_body"], event["comment_author"], event["comment_public"]] \
        if event["comment_body"] is not None else None
    assert (comment, event["changes"]) == (expected["comment"], expected["changes"])
    assert event["payload"] == (None if deletion == "permanent" else json.loads(fixture(vendor, case)))


@pytest.mark.parametrize("vendor, case", cases("REJECTED"), ids=[f"{v}-{c}" for v, c in cases("REJECTED")])
def test_each_unusable_fixture_is_a_422_naming_its_field_and_stores_nothing(client, db, vendor, case):
    response = post(client, vendor, fixture(vendor, case), **EXPECTED[vendor].HEADERS.get(case, {}))
    assert response.status_code == 422
    assert f"'{EXPECTED[vendor].REJECTED[case]}'" in response.json["error"]
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM events) AS n").fetchone()["n"] == 0


@pytest.mark.parametrize("vendor, case", cases("IGNORED"), ids=[f"{v}-{c}" for v, c in cases("IGNORED")])
def test_each_event_not_about_a_ticket_is_ignored_and_audited(client, db, vendor, case):
    response = post(client, vendor, fixture(vendor, case), **EXPECTED[vendor].HEADERS.get(case, {}))
    assert response.status_code == 200
    # (a vendor's handshake may add what its validation request asks echoed: Front's challenge)
    assert response.json["status"] == "ignored" and set(response.json) <= {"status", "challenge"}
    assert [r["outcome"] for r in db.execute("SELECT outcome FROM deliveries")] == ["ignored"]

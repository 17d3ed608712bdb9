"""Normalization is a pure function of the payload: one test per fixture, asserting the
whole Ticket (or the whole error), no database involved."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ingestion.errors import InvalidField
from ingestion.tickets import Ticket
from ingestion.vendors import freshdesk, zendesk
from signing import fixture

UTC = timezone.utc


def load(vendor: str, case: str) -> dict:
    return json.loads(fixture(vendor, case))


FRESHDESK_CASES = {
    "legacy_automation": Ticket(
        source="freshdesk", external_id="11", subject="Printer on fire",
        description="<div>It is <b>really</b> on fire &amp; smoking<br><script>alert(1)</script></div>",
        status="pending", priority="high", requester_name="Ada Lovelace", requester_email="ada@example.com",
        tags=("printer", "urgent"),
        vendor_created_at=datetime(2025, 2, 3, 9, 0, tzinfo=UTC),
        vendor_updated_at=datetime(2025, 2, 3, 10, 15, tzinfo=UTC),
    ),
    "legacy_human_dates": Ticket(
        source="freshdesk", external_id="12", subject="Dates as the placeholder renders them",
        status="open", priority="low", tags=(), vendor_created_at=None, vendor_updated_at=None,
    ),
    "api_ticket": Ticket(
        source="freshdesk", external_id="13", subject="Refund for order 5512",
        description="<p>Please refund <strong>order 5512</strong>.</p>",
        status="open", priority="urgent", requester_name="Grace Hopper", requester_email="grace@example.com",
        tags=("billing", "vip"),
        vendor_created_at=datetime(2025, 2, 1, 9, 0, tzinfo=UTC),
        vendor_updated_at=datetime(2025, 2, 3, 10, 0, tzinfo=UTC),
    ),
    "api_account_status": Ticket(
        source="freshdesk", external_id="14", subject="Waiting on a third party", status="6", priority="medium",
        vendor_updated_at=datetime(2025, 2, 4, 8, 30, tzinfo=timezone(timedelta(hours=1))),
    ),
    "flat": Ticket(source="freshdesk", external_id="123", subject="Test"),
    "unicode": Ticket(
        source="freshdesk", external_id="15", subject="Ünïcödé 🚀 中文 — «quotes» \u200fשלום\u200f",
        description="Zero-width joiner: 👩\u200d💻, combining: e\u0301, astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        status="open", priority="medium", requester_name="José Ñúñez", requester_email="jose@exämple.com",
        tags=("ñandú", "東京"),
    ),
    "sql_looking": Ticket(
        source="freshdesk", external_id="16", subject="Robert'); DROP TABLE tickets;--",
        description="1' OR '1'='1; SELECT pg_sleep(10); -- $$ \\x00", tags=("'; DELETE FROM deliveries; --",),
    ),
}

ZENDESK_CASES = {
    "event_ticket_created": Ticket(
        source="zendesk", external_id="35436", subject="VPN keeps disconnecting",
        description="The <b>VPN</b> drops every 5 minutes", status="open", priority="low",
        tags=("vpn", "network"),
        vendor_created_at=datetime(2025, 1, 8, 10, 12, 7, tzinfo=UTC),
        vendor_updated_at=datetime(2025, 1, 8, 10, 12, 7, tzinfo=UTC),
    ),
    "event_id_only_in_subject": Ticket(
        source="zendesk", external_id="40001", subject="Detail without its id", status="pending",
    ),
    "trigger_nested": Ticket(
        source="zendesk", external_id="7", subject="Cannot log in",
        description="----------------------------------------------\n\nJane Doe, Feb 3, 2025, 10:15\n\n"
                    "I cannot log in since this morning.",
        status="open", priority="normal", requester_name="Jane Doe", requester_email="jane@example.com",
        tags=("login", "sso", "urgent"), vendor_created_at=None, vendor_updated_at=None,
    ),
    "trigger_flat": Ticket(
        source="zendesk", external_id="8", subject="Invoice missing", description="Where is my invoice?",
        status="new", priority=None, requester_email="bob@example.com", tags=("billing",),
    ),
    "flat": Ticket(source="zendesk", external_id="123", subject="Test"),
}

REJECTED = [
    (freshdesk, "freshdesk", "missing_id", "ticket.id"),
    (freshdesk, "freshdesk", "placeholder_id", "freshdesk_webhook.ticket_id"),
    (freshdesk, "freshdesk", "wrong_type_subject", "ticket.subject"),
    (freshdesk, "freshdesk", "wrong_type_tags", "tags"),
    (freshdesk, "freshdesk", "boolean_id", "id"),
    (freshdesk, "freshdesk", "legacy_not_object", "freshdesk_webhook"),
    (zendesk, "zendesk", "event_without_ticket_id", "detail.id"),
    (zendesk, "zendesk", "wrong_type_status", "ticket.status"),
    (zendesk, "zendesk", "event_detail_not_object", "detail"),
    (zendesk, "zendesk", "event_without_detail", "detail"),  # found by schemathesis (was a 500)
]


@pytest.mark.parametrize("case", sorted(FRESHDESK_CASES))
def test_each_freshdesk_fixture_normalizes_to_the_expected_ticket(case):
    assert freshdesk.normalize(load("freshdesk", case)) == FRESHDESK_CASES[case]


@pytest.mark.parametrize("case", sorted(ZENDESK_CASES))
def test_each_zendesk_fixture_normalizes_to_the_expected_ticket(case):
    assert zendesk.normalize(load("zendesk", case)) == ZENDESK_CASES[case]


def test_a_zendesk_event_that_is_not_about_a_ticket_normalizes_to_nothing():
    assert zendesk.normalize(load("zendesk", "event_user_created")) is None


@pytest.mark.parametrize("module, vendor, case, field", REJECTED, ids=[r[2] for r in REJECTED])
def test_unusable_payloads_are_rejected_naming_the_field(module, vendor, case, field):
    with pytest.raises(InvalidField) as caught:
        module.normalize(load(vendor, case))
    assert caught.value.field == field
    assert f"'{field}'" in caught.value.message


def test_numeric_and_string_ids_are_the_same_ticket():
    assert freshdesk.normalize({"id": 123}).external_id == freshdesk.normalize({"id": "123"}).external_id == "123"


def test_two_zendesk_events_about_an_unchanged_ticket_have_the_same_content():
    created = zendesk.normalize(load("zendesk", "event_ticket_created"))
    comment = zendesk.normalize(load("zendesk", "event_ticket_comment_added"))
    assert created.content_hash() == comment.content_hash()


def test_any_normalized_field_change_changes_the_content_hash():
    base = FRESHDESK_CASES["api_ticket"]
    for change in [{"subject": "x"}, {"status": "closed"}, {"tags": ("billing",)},
                   {"vendor_updated_at": datetime(2025, 2, 3, 10, 0, 1, tzinfo=UTC)}]:
        assert Ticket(**{**{f: getattr(base, f) for f in base.__slots__}, **change}).content_hash() != base.content_hash()


@pytest.mark.parametrize("value, expected", [
    ("a b  c", ("a", "b", "c")),
    ("a, b,c", ("a", "b", "c")),
    ("two words, other", ("two words", "other")),
    (["x", " y ", "", 5], ("x", "y", "5")),
    ("", ()),
    (None, ()),
])
def test_tags_come_from_arrays_or_space_or_comma_separated_strings(value, expected):
    assert freshdesk.normalize({"id": 1, "tags": value}).tags == expected


@pytest.mark.parametrize("field, value", [
    ("subject", "nul \x00 inside"),
    ("description", "lone surrogate \ud800"),
    ("created_at", 1738574100),
    ("status", 2.5),
    ("tags", [["nested"]]),
    ("id", 1.5),
    ("id", "has space"),
    ("id", "x" * 129),
])
def test_values_postgresql_cannot_store_or_of_the_wrong_type_are_rejected(field, value):
    payload = {"id": 1, field: value}
    with pytest.raises(InvalidField) as caught:
        freshdesk.normalize(payload)
    assert field in caught.value.field


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00"])
def test_timestamps_at_the_edge_of_the_calendar_never_fail(value):
    """The first two raised OverflowError converting to UTC: a 500."""
    ticket = freshdesk.normalize({"id": 1, "updated_at": value})
    assert ticket.vendor_updated_at is None or ticket.vendor_updated_at.year == 1

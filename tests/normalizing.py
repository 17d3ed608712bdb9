"""Helpers for the normalization tests: fixtures by name, events as plain values."""

from __future__ import annotations

import json
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest

from ingestion.errors import InvalidField
from ingestion.tickets import TicketEvent
from signing import fixture


def load(vendor: str, case: str) -> dict:
    return json.loads(fixture(vendor, case))


def plain(event: TicketEvent | None) -> dict[str, Any] | None:
    """The whole event as JSON-like values (timestamps ISO-8601, tags a list), so one
    assertion compares everything and a failure shows which part differs."""
    if event is None:
        return None
    fields = {name: value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple)
              else value for name, value in event.fields.items()}
    comment = [event.comment.body, event.comment.author, event.comment.public] if event.comment else None
    out = {"external_id": event.external_id, "account": event.account, "event_type": event.event_type,
           "vendor_event_id": event.vendor_event_id, "fields": fields, "comment": comment, "changes": event.changes}
    if event.deletion is not None:  # only deletions say so: every other case stays as it was
        out["deletion"] = event.deletion.value
    return out


def fixture_tests(vendor: ModuleType, cases: dict, rejected: dict, ignored: list, headers: dict | None = None):
    """The three tests every vendor's fixtures get, Zulip-style: each fixture normalizes
    to the whole event it describes; each unusable one is refused naming its field; each
    authentic event not about a ticket normalizes to nothing."""
    name = vendor.VENDOR.name
    headers = headers or {}

    @pytest.mark.parametrize("case", sorted(cases))
    def test_each_fixture_normalizes_to_the_whole_event_it_describes(case):
        assert plain(vendor.normalize(load(name, case), headers.get(case, {}))) == cases[case]

    @pytest.mark.parametrize("case", sorted(rejected))
    def test_each_unusable_fixture_is_refused_naming_the_field(case):
        with pytest.raises(InvalidField) as refused:
            vendor.normalize(load(name, case), headers.get(case, {}))
        assert refused.value.field == rejected[case]
        assert f"'{rejected[case]}'" in refused.value.message

    @pytest.mark.parametrize("case", ignored)
    def test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing(case):
        assert vendor.normalize(load(name, case), headers.get(case, {})) is None

    return (test_each_fixture_normalizes_to_the_whole_event_it_describes,
            test_each_unusable_fixture_is_refused_naming_the_field,
            test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing)

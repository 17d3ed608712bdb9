"""Field recognition shared by every vendor (ingestion/normalize): spellings, values,
people, comments. Pure functions: no database."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ingestion.vendors import load_settings
from ingestion.config import Settings
from ingestion.errors import InvalidField
from ingestion.vendors import freshdesk, zendesk

UTC = timezone.utc


def fields(payload: dict, vendor=freshdesk) -> dict:
    return dict(vendor.normalize(payload).fields)


@pytest.mark.parametrize("payload", [
    {"ticket_id": "7"}, {"ticketId": "7"}, {"TicketID": 7}, {"ticket-id": "7"}, {"id": 7},
    {"ticket": {"id": "7"}}, {"ticket": {"ticketId": 7}}, {"zd_ticket_id": 7},
])
def test_a_ticket_id_is_found_under_its_usual_spellings(payload):
    assert zendesk.normalize(payload).external_id == "7"


def test_in_a_conversation_the_ticket_id_wins_over_the_conversations_own_id():
    assert freshdesk.normalize({"id": 5, "ticket_id": 452, "body_text": "hi"}).external_id == "452"


@pytest.mark.parametrize("payload, expected", [
    ({"id": 1, "title": "T"}, {"subject": "T"}),
    ({"id": 1, "ticketTitle": "T"}, {"subject": "T"}),
    ({"id": 1, "createdAt": "2024-03-14T15:58Z", "updatedAt": "2024-03-14T16:02Z"},
     {"vendor_created_at": datetime(2024, 3, 14, 15, 58, tzinfo=UTC),
      "vendor_updated_at": datetime(2024, 3, 14, 16, 2, tzinfo=UTC)}),
    ({"id": 1, "last_updated_at": "2025-01-01T10:00:00+01:00"},
     {"vendor_updated_at": datetime(2025, 1, 1, 9, 0, tzinfo=UTC)}),
    ({"id": 1, "ticket_contact_name": "Jane", "ticket_contact_email": "jane@example.com"},
     {"requester_name": "Jane", "requester_email": "jane@example.com"}),
    ({"id": 1, "requester_full_name": "Jane Doe"}, {"requester_name": "Jane Doe"}),
    ({"id": 1, "requester": "Jane Doe <jane@example.com>"},
     {"requester_name": "Jane Doe", "requester_email": "jane@example.com"}),
    ({"id": 1, "requester": "jane@example.com"}, {"requester_email": "jane@example.com"}),
    ({"id": 1, "assignee": "  <>"}, {"assignee_name": None, "assignee_email": None}),
    ({"id": 1, "requester": {"first_name": "Jane", "last_name": "Doe", "id": 42}},
     {"requester_name": "Jane Doe", "requester_id": "42"}),
    ({"id": 1, "requester_id": "8447388090494", "assignee_id": 0}, {"requester_id": "8447388090494", "assignee_id": None}),
    ({"id": 1, "group": {"name": "Billing"}, "company": {"name": "Acme"}}, {"group": "Billing", "organization": "Acme"}),
    ({"id": 1, "group_id": 351, "organization_id": "0"}, {"group": "351", "organization": None}),
    ({"id": 1, "ticket_type": "Incident"}, {"type": "incident"}),
    ({"id": 1, "ticket_type": "Ticket"}, {"type": None}),  # Zendesk renders an unset type as "Ticket"
])
def test_real_spellings_are_recognised(payload, expected):
    assert fields(payload, zendesk) == expected


def test_a_partial_body_carries_only_what_it_says():
    """Absent is not empty: storage keeps what it has for every field not listed."""
    assert fields({"freshdesk_webhook": {"ticket_id": 11, "ticket_latest_public_comment": "Thanks!"}}) == {}
    assert fields({"freshdesk_webhook": {"ticket_id": 11, "ticket_status": "Pending"}}) == {"status": "pending"}


def test_an_explicitly_empty_value_is_in_the_result_as_none():
    assert fields({"id": 1, "subject": "", "tags": "", "description": None}) == {
        "subject": None, "tags": (), "description": None}


@pytest.mark.parametrize("value, expected", [
    (2, "open"), ("2", "open"), ("Open", "open"), (3, "pending"), (4, "resolved"), (5, "closed"),
    (6, "waiting on customer"), (7, "waiting on third party"), ("Waiting on Customer", "waiting on customer"),
    (42, "42"), ("  In  Progress ", "in progress"),
])
def test_freshdesk_statuses_are_one_word_whichever_shape_sends_them(value, expected):
    assert fields({"ticket": {"id": 1, "status": value}})["status"] == expected


def test_an_accounts_own_status_names_override_the_defaults():
    settings = Settings(database_url="postgresql://x@h/d", freshdesk_status_names={6: "with the client", 8: "monthly"})
    normalize = freshdesk.normalizer(settings)
    assert normalize({"ticket": {"id": 1, "status": 6}}, {}, None).fields["status"] == "with the client"
    assert normalize({"ticket": {"id": 1, "status": 8}}, {}, None).fields["status"] == "monthly"
    assert normalize({"ticket": {"id": 1, "status": 7}}, {}, None).fields["status"] == "waiting on third party"
    assert load_settings({"DATABASE_URL": "postgresql://x@h/d", "FRESHDESK_STATUS_NAMES": "6=With The Client, 8=monthly"}
                             ).freshdesk_status_names == {6: "with the client", 8: "monthly"}


@pytest.mark.parametrize("value, expected", [("On-hold", "hold"), ("HOLD", "hold"), ("OPEN", "open"), ("Solved", "solved")])
def test_zendesk_statuses_are_one_word_in_events_and_triggers(value, expected):
    assert fields({"ticket": {"id": 1, "status": value}}, zendesk)["status"] == expected


@pytest.mark.parametrize("value, expected", [
    ("a b  c", ("a", "b", "c")),
    ("a, b,c", ("a", "b", "c")),
    ("two words, other", ("two words", "other")),
    (["x", " y ", "", 5], ("x", "y", "5")),
    ([{"id": 1, "tag": "vip", "color": "#fff"}, {"name": "billing"}], ("vip", "billing")),
    ("dup dup", ("dup",)),
    ("", ()),
    (None, ()),
])
def test_tags_come_from_arrays_objects_or_separated_strings(value, expected):
    assert fields({"id": 1, "tags": value})["tags"] == expected


@pytest.mark.parametrize("value, expected", [
    ("2025-02-03T10:15:00Z", datetime(2025, 2, 3, 10, 15, tzinfo=UTC)),
    ("2013-12-12T05:35+0100", datetime(2013, 12, 12, 4, 35, tzinfo=UTC)),
    ("2025-02-03 10:15:00", datetime(2025, 2, 3, 10, 15, tzinfo=UTC)),
    (1496400354326, datetime(2017, 6, 2, 10, 45, 54, 326000, tzinfo=UTC)),  # epoch milliseconds
    (1496400354, datetime(2017, 6, 2, 10, 45, 54, tzinfo=UTC)),
    ("", None), (None, None),
])
def test_timestamps_are_iso_or_epoch_and_an_empty_one_is_null(value, expected):
    assert fields({"id": 1, "updated_at": value})["vendor_updated_at"] == expected


@pytest.mark.parametrize("value", ["February 3, 2025", "Mon, 3 Feb, 2025 at 9:00 AM", "May 18",
                                   "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_unreadable_time_is_left_out_not_emptied(value):
    """Merge, never wipe: a date the service cannot read leaves the stored time alone."""
    assert "vendor_updated_at" not in fields({"id": 1, "updated_at": value})
    assert "vendor_created_at" not in fields({"id": 1, "created_at": value})


def test_a_time_is_read_from_the_first_spelling_that_holds_one():
    """Zendesk's placeholders: {{ticket.updated_at}} is human, the _with_timestamp one ISO."""
    found = fields({"id": 1, "created_at": "Mar 14", "created_at_with_timestamp": "2024-03-14T15:58Z",
                    "updated_at": "Mar 14", "updated_at_with_timestamp": "2024-03-14T16:02Z"})
    assert found["vendor_created_at"] == datetime(2024, 3, 14, 15, 58, tzinfo=UTC)
    assert found["vendor_updated_at"] == datetime(2024, 3, 14, 16, 2, tzinfo=UTC)
    assert fields({"id": 1, "updated_at": "", "updated_at_with_timestamp": "2024-03-14T16:02Z"})[
        "vendor_updated_at"] == datetime(2024, 3, 14, 16, 2, tzinfo=UTC)
    assert fields({"id": 1, "updated_at": "", "updated_at_with_timestamp": "March 14"})["vendor_updated_at"] is None


@pytest.mark.parametrize("payload, body, author, public", [
    ({"ticket_id": 1, "latest_comment": "hi"}, "hi", None, None),
    ({"ticket_id": 1, "ticket_latest_private_comment": "internal"}, "internal", None, False),
    ({"ticket_id": 1, "comment": {"body": "b", "author": {"name": "Ann"}, "is_public": False}}, "b", "Ann", False),
    ({"ticket_id": 1, "message": "m", "is_public": "true"}, "m", None, True),
    ({"ticket_id": 1, "latestComment": "c", "latestCommentAuthorName": "Ann", "latestCommentIsPublic": False},
     "c", "Ann", False),
    ({"ticket": {"id": 1}, "latest_comment": {"body_text": "t", "private": True}}, "t", None, False),
])
def test_comments_are_found_wherever_admins_put_them(payload, body, author, public):
    comment = zendesk.normalize(payload).comment
    assert (comment.body, comment.author, comment.public) == (body, author, public)
    assert zendesk.normalize(payload).event_type == "ticket.comment_added"


@pytest.mark.parametrize("field, value", [
    ("subject", "nul \x00 inside"),
    ("description", "lone surrogate \ud800"),
    ("status", 2.5),
    ("tags", [["nested"]]),
    ("tags", {"a": 1}),
    ("id", 1.5),
    ("id", "has space"),
    ("id", "x" * 129),
    ("id", "{{ticket.id}}"),
    ("requester", ["not", "a", "person"]),
    ("custom_fields", "not an object"),
])
def test_values_postgresql_cannot_store_or_of_the_wrong_type_are_refused(field, value):
    with pytest.raises(InvalidField) as caught:
        freshdesk.normalize({"id": 1, field: value})
    assert field in caught.value.field


def test_numeric_and_string_ids_are_the_same_ticket():
    assert freshdesk.normalize({"id": 123}).external_id == freshdesk.normalize({"id": "123"}).external_id == "123"


def test_zendesk_takes_the_account_from_its_header_then_the_event_and_the_url_wins():
    event = {"type": "zen:event-type:ticket.created", "id": "e1", "account_id": 555, "detail": {"id": "9"}}
    assert zendesk.normalize(event).account == "555"
    assert zendesk.normalize(event, {"X-Zendesk-Account-Id": "777"}).account == "777"
    assert zendesk.normalize(event, {"X-Zendesk-Account-Id": "777"}, "sandbox").account == "sandbox"
    assert zendesk.normalize({"ticket_id": "9"}).account == ""


def test_zendesk_delivery_ids_are_the_signed_event_id_never_the_invocation_header():
    """The invocation id is a header the signature does not cover: a trigger body is
    recognised by its fingerprint instead (ingest.identity)."""
    invocation = {"X-Zendesk-Webhook-Invocation-Id": "inv-1"}
    event = {"type": "zen:event-type:ticket.created", "id": "e1", "detail": {"id": "9"}}
    assert zendesk.normalize(event, invocation).vendor_event_id == "e1"
    assert zendesk.normalize({"ticket_id": "9"}, invocation).vendor_event_id is None
    assert zendesk.normalize({"ticket_id": "9"}).vendor_event_id is None


def test_freshdesk_takes_its_account_from_the_url_only():
    product = {"event": "onTicketCreate", "domain": "acme.freshdesk.com", "data": {"ticket": {"id": 1}}}
    assert freshdesk.normalize(product).account == ""
    assert freshdesk.normalize(product, {}, "acme.freshdesk.com").account == "acme.freshdesk.com"

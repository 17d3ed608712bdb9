"""The Zendesk shapes read since issue 23: n8n's flat placeholder bodies, messaging events
and Sunshine Conversations batches. Pure normalization first, then through the whole
service (real PostgreSQL), signed as Zendesk signs."""

from __future__ import annotations

import json

import pytest

from ingestion.errors import InvalidField
from ingestion.normalize.shapes import MAX_PATH, unflatten
from ingestion.vendors import zendesk
from normalizing import load, plain
from signing import fixture, post, secret, url_for

N8N = ["n8n_default_ticket_id", "n8n_selected_fields", "n8n_all_placeholders", "n8n_unassigned"]
MESSAGE_ADDED = "zen:event-type:messaging_ticket.message_added"


def nested(flat: dict) -> dict:
    """The nested body a flat one spells, built by hand: what a trigger body written with
    the same placeholders nested looks like."""
    body: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return body


# --- n8n ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", N8N)
def test_an_n8n_body_is_the_ticket_its_nested_twin_describes(case):
    flat = load("zendesk", case)
    assert all("." in key for key in flat)
    assert plain(zendesk.normalize(flat)) == plain(zendesk.normalize(nested(flat)))


def test_unflattening_reads_paths_and_leaves_the_callers_body_as_sent():
    body = {"ticket.id": "1", "ticket.requester.email": "a@example.com", "ticket": {"subject": "s"}, "x": 1}
    sent = json.loads(json.dumps(body))
    assert unflatten(body) == {"x": 1, "ticket": {"subject": "s", "id": "1", "requester": {"email": "a@example.com"}}}
    assert body == sent


@pytest.mark.parametrize("body, expected", [
    ({"ticket": {"id": "1"}, "ticket.id": "2"}, {"ticket": {"id": "1"}, "ticket.id": "2"}),  # nested wins
    ({"ticket": "7", "ticket.id": "2"}, {"ticket": "7", "ticket.id": "2"}),  # a value in the way
    ({"a..b": 1, ".a": 2, "a.": 3, "a. .b": 4}, {"a..b": 1, ".a": 2, "a.": 3, "a. .b": 4}),  # empty segments
    ({"a." * MAX_PATH + "z": 1}, {"a." * MAX_PATH + "z": 1}),  # longer than any placeholder
    ({"id": "5", "subject": "no dots"}, {"id": "5", "subject": "no dots"}),
])
def test_a_dotted_key_that_is_no_placeable_path_stays_as_written(body, expected):
    assert unflatten(body) == expected


def test_a_deep_dotted_key_cannot_nest_a_body_deeper_than_its_readers_expect():
    deep = {"ticket.id": "9", "ticket." + ".".join(["group"] * 3000): "x"}
    assert plain(zendesk.normalize(deep))["external_id"] == "9"


def test_an_n8n_body_without_its_ticket_id_is_refused_naming_the_field():
    event = {"ticket.title": "No id", "ticket.status": "Open"}
    with pytest.raises(InvalidField) as refused:
        zendesk.normalize(event)
    assert refused.value.field == "ticket.id"


# --- messaging ------------------------------------------------------------------------


def messaging(**overrides) -> dict:
    body = load("zendesk", "messaging_ticket_message_added")
    body.update(overrides)
    return body


@pytest.mark.parametrize("overrides", [
    {"detail": {}}, {"detail": None}, {"detail": "141"}, {"detail": ["141"]}, {"detail": {"id": {"id": "141"}}},
    {"detail": {"id": "{{ticket.id}}"}}, {"detail": {"id": ""}}, {"detail": {"id": True}},
    {"detail": {}, "subject": "zen:user:141"}, {"detail": {}, "subject": 141},
])
def test_a_messaging_event_naming_no_usable_ticket_is_ignored_never_refused(overrides):
    assert zendesk.normalize(messaging(**{"subject": None, **overrides})) is None


def test_a_messaging_event_without_detail_id_takes_the_ticket_from_its_subject():
    event = plain(zendesk.normalize(messaging(detail={})))  # "subject": "zen:ticket:141"
    assert (event["external_id"], event["comment"][0]) == ("141", "Hi there. How can I help you today?")


@pytest.mark.parametrize("event, comment", [
    ({"message": {"body": "hi"}, "actor": {"id": "zd:answerBot", "name": ["not", "text"]}},
     ["hi", "zd:answerBot", True]),
    ({"message": {"body": "hi"}, "actor": {"id": 8447388090494}}, ["hi", "8447388090494", True]),
    ({"message": {"body": "hi"}, "actor": "Jane"}, ["hi", None, True]),
    ({"message": {"body": "hi", "id": "m"}}, ["hi", None, True]),
    ({"message": {"body": {"text": "hi"}}}, None),
    ({"message": {"body": "a\x00b"}}, None),
    ({"message": {"body": "\ud800"}}, None),
    ({"message": "hi"}, None),
    ({}, None),
])
def test_a_messaging_events_odd_message_is_no_comment_but_the_event_is_kept(event, comment):
    result = plain(zendesk.normalize(messaging(event=event)))
    assert (result["external_id"], result["event_type"], result["comment"]) == ("141", MESSAGE_ADDED, comment)


def test_a_messaging_event_whose_event_is_not_an_object_is_still_the_tickets_event():
    result = plain(zendesk.normalize(messaging(event="message")))
    assert (result["external_id"], result["fields"], result["comment"]) == ("141", {}, None)


def test_other_messaging_domains_are_not_about_a_ticket():
    metrics = {"type": "zen:event-type:messaging_live_metrics.wait_time_changed", "detail": {"id": "141"}}
    assert zendesk.normalize(metrics) is None


# --- Sunshine Conversations -----------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"app": {"id": "a"}, "webhook": {"id": "w", "version": "v2"}, "events": [{"type": "conversation:read"}]},
    {"app": {"id": "a"}, "events": [{"id": 5, "payload": {"ticket_id": "5"}}]},  # the batch names no ticket
    {"app": {"_id": "a"}, "trigger": "conversation:start", "appUser": {"_id": "u"}},
])
def test_sunshine_batches_are_not_about_a_ticket(body):
    assert zendesk.normalize(body) is None


def test_a_trigger_body_with_an_app_key_is_still_a_ticket():
    assert plain(zendesk.normalize({"app": {"id": "a"}, "ticket_id": "5"}))["external_id"] == "5"


# --- through the service --------------------------------------------------------------


def test_a_signed_sunshine_batch_is_ignored_and_stores_no_ticket(client, db):
    response = post(client, "zendesk", fixture("zendesk", "sunshine_conversation_message"))
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM events) AS n").fetchone()["n"] == 0
    assert [r["outcome"] for r in db.execute("SELECT outcome FROM deliveries")] == ["ignored"]


def test_an_n8n_body_creates_its_ticket_and_a_messaging_event_adds_a_public_message(client, db):
    created = post(client, "zendesk", fixture("zendesk", "n8n_selected_fields"))
    assert (created.status_code, created.json["status"]) == (201, "created")
    assert post(client, "zendesk", fixture("zendesk", "n8n_selected_fields")).json["status"] == "already_exists"
    message = dict(load("zendesk", "messaging_ticket_message_added_end_user"), detail={"id": "35436"})
    assert post(client, "zendesk", message).json["status"] == "recorded"

    [ticket] = db.execute("SELECT * FROM tickets").fetchall()
    assert {name: ticket[name] for name in ("external_id", "subject", "status", "priority", "type", "group_name",
                                            "requester_email", "assignee_name", "tags")} == {
        "external_id": "35436", "subject": "VPN keeps disconnecting", "status": "open", "priority": "low",
        "type": "incident", "group_name": "Network", "requester_email": "jane.doe@example.com",
        "assignee_name": "Alex Agent", "tags": ["vpn", "network"]}
    events = db.execute("SELECT event_type, vendor_event_id, comment_body, comment_public FROM events ORDER BY id")
    assert [tuple(e.values()) for e in events] == [
        ("ticket.snapshot", None, None, None),
        (MESSAGE_ADDED, "01KTR6B23G65XY9HMFCRX19C9A", "thanks that helps", True)]


def test_a_sunshine_batch_with_its_x_api_key_is_authentic_and_ignored(client, db):
    """Sunshine Conversations signs nothing: it sends its webhook secret as is in X-API-Key
    (ZENDESK_SUNSHINE_SECRET, compared in constant time like every secret)."""
    body = fixture("zendesk", "sunshine_conversation_message")
    key = secret("zendesk", "token")
    answered = client.post(url_for("zendesk"), data=body, headers={"X-API-Key": key,
                                                                   "Content-Type": "application/json"})
    assert (answered.status_code, answered.json) == (200, {"status": "ignored"})
    previous = client.post(url_for("zendesk"), data=body, headers={"X-API-Key": secret("zendesk", "token", True)})
    assert previous.status_code == 200  # the rotation's previous value too
    wrong = client.post(url_for("zendesk"), data=body, headers={"X-API-Key": key + "x"})
    assert (wrong.status_code, wrong.json["error"]) == (401, "X-API-Key is not a configured key")
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0
    assert [r["outcome"] for r in db.execute("SELECT outcome FROM deliveries ORDER BY id")] == ["ignored", "ignored"]


def test_a_source_holds_a_sunshine_key_of_its_own(client, db, add_source):
    add_source("zendesk", "4242", "token", "acme-sunshine-webhook-secret-7f3a")
    body = fixture("zendesk", "sunshine_conversation_message")
    own = client.post(url_for("zendesk", "4242"), data=body, headers={"X-API-Key": "acme-sunshine-webhook-secret-7f3a"})
    assert (own.status_code, own.json) == (200, {"status": "ignored"})
    env_key = client.post(url_for("zendesk", "4242"), data=body, headers={"X-API-Key": secret("zendesk", "token")})
    assert env_key.status_code == 401  # the environment's key is the bare URL's, not this account's

"""Front through the whole service (real PostgreSQL): its two signatures on one source, and
the same outcomes, idempotency and history as the other vendors for two conversations'
lives (the rule_* fixtures, in the order Front emitted them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from signing import AUTH_ENV, fixture, url_for

APP_SECRET = AUTH_ENV["FRONT_APP_SECRET"]
RULE_SECRET = AUTH_ENV["FRONT_WEBHOOK_SECRET"]
#: cnv_keocka: a customer writes in, is tagged, answered, untagged, discussed, reassigned.
KEOCKA = ["rule_inbound_message_full", "rule_tag_added", "rule_assign_self_on_reply", "rule_out_reply_message",
          "rule_untag_removed", "rule_mention_teammate_comment", "rule_comment_full", "rule_assign_teammate_to_other"]
#: cnv_keo696: a teammate drafts, sends, archives, reopens, trashes, restores, unassigns, asks @all.
KEO696 = ["rule_assign_on_new_draft_status_invisible", "rule_outbound_new_message", "rule_archive_by_teammate",
          "rule_reopen_no_target", "rule_trash_conversation_deleted", "rule_restore_conversation_restored",
          "rule_unassign_no_target", "rule_mention_all_comment"]


def app_headers(body: bytes, secret: str = APP_SECRET, stamp: str | None = None) -> dict[str, str]:
    """What Front's application-webhook page computes: base64(HMAC-SHA256(app secret,
    `<X-Front-Request-Timestamp>:<raw body>`)), the timestamp in milliseconds."""
    stamp = stamp or str(int(time.time() * 1000))
    digest = hmac.new(secret.encode(), stamp.encode() + b":" + body, hashlib.sha256).digest()
    return {"X-Front-Signature": base64.b64encode(digest).decode(), "X-Front-Request-Timestamp": stamp,
            "Content-Type": "application/json"}


def rule_headers(body: bytes, secret: str = RULE_SECRET) -> dict[str, str]:
    """What Front's rule-webhook page computes: base64(HMAC-SHA1(API secret, raw body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return {"X-Front-Signature": base64.b64encode(digest).decode(), "Content-Type": "application/json"}


def as_rule(client, case: str, account: str | None = None, secret: str = RULE_SECRET):
    body = fixture("front", case)
    return client.post(url_for("front", account), data=body, headers=rule_headers(body, secret))


def as_app(client, body: bytes, account: str | None = None, secret: str = APP_SECRET, **headers: str):
    return client.post(url_for("front", account), data=body, headers={**app_headers(body, secret), **headers})


def envelope(case: str) -> bytes:
    """A rule fixture's event as an application webhook carries it."""
    event = json.loads(fixture("front", case))
    return json.dumps({"type": event["type"], "authorization": {"id": "cmp_abc"}, "payload": event}).encode()


def events_of(db) -> list[dict]:
    return db.execute("SELECT event_type, outcome, vendor_event_id, comment_body, comment_author, comment_public "
                      "FROM events ORDER BY id").fetchall()


def test_a_customer_conversations_life_is_one_ticket_and_every_event_in_order(client, db):
    outcomes = [as_rule(client, case).json["status"] for case in KEOCKA]
    assert outcomes[0] == "created" and "stale" not in outcomes and "already_exists" not in outcomes, outcomes

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["vendor"], ticket["external_id"]) == ("front", "cnv_keocka")
    assert {name: ticket[name] for name in ("subject", "status", "priority", "tags", "group_name", "requester_email",
                                             "requester_id", "assignee_name", "assignee_id")} == {
        "subject": "Re: Being a robot is great, but...", "status": "assigned", "priority": None, "tags": [],
        "group_name": "Support@", "requester_email": "calculon@momsbot.com", "requester_id": "crd_62euuy",
        "assignee_name": "Bender Rodriguez", "assignee_id": "tea_40z6"}
    assert ticket["vendor_updated_at"].timestamp() == pytest.approx(1518309907.474)

    history = events_of(db)
    assert [e["event_type"] for e in history] == ["inbound", "tag", "assign", "out_reply", "untag", "mention",
                                                  "comment", "assign"]
    assert [(e["comment_author"], e["comment_public"]) for e in history if e["comment_body"] is not None] == [
        ("calculon@momsbot.com", True), ("Leela Turanga", True), ("Leela Turanga", False),
        ("Bender Rodriguez", False)]
    changes = db.execute("SELECT changes FROM events WHERE event_type IN ('tag', 'untag') ORDER BY id").fetchall()
    assert [c["changes"] for c in changes] == [{"tags": {"previous": [], "current": ["Urgent"]}},
                                               {"tags": {"previous": ["Urgent"], "current": []}}]


def test_a_drafted_conversation_is_trashed_and_restored_and_keeps_its_history(client, db):
    answers = {case: as_rule(client, case).json["status"] for case in KEO696}
    assert answers["rule_assign_on_new_draft_status_invisible"] == "created"
    assert answers["rule_trash_conversation_deleted"] == "deleted"
    assert answers["rule_restore_conversation_restored"] == "updated"

    ticket = db.execute("SELECT * FROM tickets").fetchone()
    assert (ticket["external_id"], ticket["status"], ticket["deleted_at"], ticket["assignee_id"]) == (
        "cnv_keo696", "unassigned", None, None)
    assert ticket["subject"] == "Your next delivery is on Epsilon 96Z"  # the draft had none yet
    marks = db.execute("SELECT event_type, changes->'deleted' AS mark FROM events WHERE changes ? 'deleted' "
                       "ORDER BY id").fetchall()
    assert [(m["event_type"], m["mark"]) for m in marks] == [("trash", {"previous": False, "current": True}),
                                                             ("restore", {"previous": True, "current": False})]


def test_a_redelivery_is_one_delivery_by_its_event_id_whichever_kind_of_webhook_brought_it(client, db):
    """The same event reached through a rule and through an application is one delivery."""
    assert as_rule(client, "rule_comment_full").json["status"] == "created"
    again = [as_rule(client, "rule_comment_full"), as_app(client, envelope("rule_comment_full"))]
    assert [(r.status_code, r.json["status"]) for r in again] == [(200, "already_exists")] * 2
    # Zulip's gmail variant of the teammate's archive shares its event id: one delivery too
    assert as_rule(client, "rule_archive_by_teammate").json["status"] == "created"
    assert as_rule(client, "rule_archive_source_gmail_null_data").json["status"] == "already_exists"
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 2


def test_a_late_retry_of_an_older_event_is_kept_and_changes_nothing(client, db):
    as_rule(client, "rule_untag_removed")
    late = as_rule(client, "rule_out_reply_message")
    assert late.json["status"] == "stale"
    assert db.execute("SELECT tags FROM tickets").fetchone()["tags"] == []


def test_a_preview_changes_only_what_it_says(client, db):
    """An event preview (a rule webhook without "Send Full Event Data") names the new
    assignee by id alone: the previous assignee's name and address do not stay beside it."""
    as_rule(client, "rule_mention_teammate_comment")
    assert as_rule(client, "derived_rule_preview_assign").json["status"] == "updated"
    ticket = db.execute("SELECT subject, status, assignee_name, assignee_email, assignee_id FROM tickets").fetchone()
    assert ticket == {"subject": "Re: Being a robot is great, but...", "status": "assigned",
                      "assignee_name": None, "assignee_email": None, "assignee_id": "tea_40z6"}


@pytest.mark.parametrize("case", ["app_sync_validation_challenge_docs", "derived_inbound_without_conversation"])
def test_events_about_no_conversation_are_ignored_audited_and_echo_the_challenge(client, db, case):
    """Saving an application webhook sends a signed `sync` with X-Front-Challenge, which
    Front expects echoed back: the `ignored` answer carries it."""
    response = as_app(client, fixture("front", case), **{"X-Front-Challenge": "9f8a0c7e1b2d4c6f"})
    assert (response.status_code, response.json) == (200, {"status": "ignored", "challenge": "9f8a0c7e1b2d4c6f"})
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0
    assert [r["vendor"] for r in db.execute("SELECT vendor FROM deliveries")] == ["front"]


@pytest.mark.parametrize("value", ["", "x" * 257, "tab\tinside"])
def test_a_challenge_that_is_not_a_short_printable_value_is_not_echoed(client, db, value):
    response = as_app(client, fixture("front", "app_sync_validation_challenge_docs"), **{"X-Front-Challenge": value})
    assert (response.status_code, response.json) == (200, {"status": "ignored"})


def test_a_challenge_is_echoed_only_after_the_signature_passed(client, db):
    body = fixture("front", "app_sync_validation_challenge_docs")
    response = client.post(url_for("front"), data=body, headers={
        "X-Front-Challenge": "9f8a0c7e1b2d4c6f", **app_headers(body, "not-the-app-secret-at-all-1234")})
    assert response.status_code == 401 and "challenge" not in response.json


def test_both_signatures_verify_on_the_environments_source_with_their_rotations(client, db):
    bodies = [fixture("front", case) for case in ("rule_inbound_message_full", "rule_tag_added",
                                                  "rule_assign_self_on_reply", "rule_out_reply_message")]
    answers = [
        client.post(url_for("front"), data=bodies[0], headers=rule_headers(bodies[0])),
        client.post(url_for("front"), data=bodies[1], headers=rule_headers(bodies[1], AUTH_ENV[
            "FRONT_WEBHOOK_SECRET_PREVIOUS"])),
        client.post(url_for("front"), data=bodies[2], headers=app_headers(bodies[2])),
        client.post(url_for("front"), data=bodies[3], headers=app_headers(bodies[3], AUTH_ENV[
            "FRONT_APP_SECRET_PREVIOUS"])),
    ]
    assert [r.status_code for r in answers] == [201, 200, 200, 200], [r.json for r in answers]
    assert [r["credential"] for r in db.execute("SELECT credential FROM events ORDER BY id")] == [
        "hmac:env", "hmac:env (previous)", "signing:env", "signing:env (previous)"]


def test_one_source_takes_both_kinds_each_with_its_own_secret(client, db, add_source):
    app_secret, rule_secret = "acme-front-app-secret-1c9e4a7b22", "acme-front-api-secret-83d0f5e6aa"
    add_source("front", "acme", "signing", app_secret)
    add_source("front", "acme", "hmac", rule_secret)
    first = as_rule(client, "rule_inbound_message_full", "acme", rule_secret)
    second = as_app(client, envelope("rule_tag_added"), "acme", app_secret)
    assert (first.status_code, second.status_code) == (201, 200), (first.json, second.json)
    assert db.execute("SELECT account, credential FROM events e JOIN tickets t ON t.id = e.ticket_id ORDER BY e.id"
                      ).fetchall() == [{"account": "acme", "credential": "hmac:default"},
                                       {"account": "acme", "credential": "signing:default"}]
    # each secret signs only its own kind, and the environment's sign nothing there
    assert as_rule(client, "rule_tag_added", "acme", app_secret).status_code == 401
    assert as_app(client, envelope("rule_tag_added"), "acme", rule_secret).status_code == 401
    assert as_rule(client, "rule_tag_added", "acme").status_code == 401


def stale_stamp() -> str:
    return str(int((time.time() - 3600) * 1000))


@pytest.mark.parametrize("headers, message", [
    pytest.param(lambda body: rule_headers(body, "another-api-secret-of-some-length"),
                 "X-Front-Signature does not match the request body", id="rule, wrong API secret"),
    pytest.param(lambda body: rule_headers(body + b" "), "X-Front-Signature does not match the request body",
                 id="rule, another body"),
    pytest.param(lambda body: app_headers(body, "another-app-secret-of-some-length"),
                 "X-Front-Signature does not match the request", id="app, wrong app secret"),
    pytest.param(lambda body: app_headers(body, stamp=stale_stamp()),
                 "X-Front-Request-Timestamp is more than 300 seconds from now", id="app, replayed an hour later"),
    pytest.param(lambda body: {**app_headers(body), "X-Front-Request-Timestamp": "2018-02-11T00:33:20Z"},
                 "X-Front-Request-Timestamp is not Unix milliseconds", id="app, timestamp not in ms"),
    pytest.param(lambda body: {"Content-Type": "application/json"},
                 "Missing webhook authentication (expected: signature or hmac): Missing X-Front-Signature and "
                 "X-Front-Request-Timestamp headers; Missing X-Front-Signature header", id="nothing"),
])
def test_a_call_without_a_valid_front_signature_is_a_401_saying_why(client, db, headers, message):
    body = fixture("front", "rule_inbound_message_full")
    response = client.post(url_for("front"), data=body, headers=headers(body))
    assert response.status_code == 401 and message in response.json["error"], response.json
    assert db.execute("SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM deliveries) AS n"
                      ).fetchone()["n"] == 0


def test_a_rule_webhook_where_only_the_app_secret_is_configured_is_told_what_is_missing(make_app, db):
    """Both kinds sign into X-Front-Signature: the answer names the header that is absent."""
    client = make_app(FRONT_WEBHOOK_SECRET=None, FRONT_WEBHOOK_SECRET_PREVIOUS=None).test_client()
    response = as_rule(client, "rule_inbound_message_full")
    assert (response.status_code, response.json["error"]) == (
        401, "Missing webhook authentication (expected: signature): Missing X-Front-Request-Timestamp header")


def test_an_app_webhook_where_only_the_rule_secret_is_configured_is_a_401(make_app, db):
    client = make_app(FRONT_APP_SECRET=None, FRONT_APP_SECRET_PREVIOUS=None).test_client()
    response = as_app(client, envelope("rule_tag_added"))
    assert (response.status_code, response.json["error"]) == (401, "X-Front-Signature does not match the request body")


def test_the_full_event_after_its_preview_is_stored_and_applied(client, db):
    """A rule webhook without full data and one with it (or an application webhook) into
    one URL: the preview came first and the full event, with the same event id, was
    answered `already_exists`, so the ticket kept the preview's ids for good. The preview is
    now a delivery of its own, and a redelivery of either is still one."""
    preview = json.loads(fixture("front", "derived_rule_preview_assign"))
    assert as_app(client, json.dumps({"type": "assign", "payload": preview}).encode()).json["status"] == "created"
    assert as_rule(client, "rule_assign_teammate_to_other").json["status"] == "updated"
    ticket = db.execute("SELECT subject, assignee_name, assignee_id, requester_email FROM tickets").fetchone()
    assert ticket == {"subject": "Re: Being a robot is great, but...", "assignee_name": "Bender Rodriguez",
                      "assignee_id": "tea_40z6", "requester_email": "calculon@momsbot.com"}
    assert as_rule(client, "derived_rule_preview_assign").json["status"] == "already_exists"
    assert as_rule(client, "rule_assign_teammate_to_other").json["status"] == "already_exists"
    assert [e["vendor_event_id"] for e in events_of(db)] == ["evt_28duxju:preview", "evt_28duxju"]


@pytest.mark.parametrize("case, kept", [("rule_assign_teammate_to_other", ("assignee_name", "Bender Rodriguez")),
                                        ("rule_inbound_message_full", ("group_name", "Support@"))])
def test_a_preview_after_its_full_event_changes_nothing(client, db, case, kept):
    """The other order (a review's case): the preview, a delivery of its own, was merged
    over the full data at the same time, so an assignment lost the teammate's name and a
    message's inbox became its id. A preview counts a microsecond older: stale."""
    assert as_rule(client, case).json["status"] == "created"
    full = json.loads(fixture("front", case))
    preview = {**{key: full[key] for key in ("_links", "id", "type", "emitted_at")},
               "conversation": {key: full["conversation"][key] for key in ("_links", "id")}}
    for part in ("source", "target"):
        data = (full.get(part) or {}).get("data")
        if data is not None:
            preview[part] = {"_meta": full[part]["_meta"],
                             "data": [{"id": d["id"]} for d in data] if isinstance(data, list) else {"id": data["id"]}}
    answer = as_app(client, json.dumps({"type": full["type"], "payload": preview}).encode())
    assert answer.json["status"] == "stale"
    column, value = kept
    assert db.execute(f"SELECT {column} FROM tickets").fetchone()[column] == value

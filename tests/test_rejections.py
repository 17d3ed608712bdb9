"""The negative table: what must be refused, with which status, and that nothing is stored."""

from __future__ import annotations

import base64
import json

import pytest
from werkzeug.datastructures import Headers

from ingestion.errors import Unauthorized
from ingestion.json_body import MAX_NESTING
from ingestion.vendors import VENDORS, vendor_names
from ingestion.web.guard import Guard
from signing import (
    AUTH_ENV, FRESHDESK_URL, TEST_CLIENT_BASE, ZENDESK_URL, basic, body_of, fixture, freshdesk_hmac, signed, url_for,
    zendesk_signature, zendesk_timestamp,
)

GOOD = body_of({"id": 77, "subject": "a real ticket"})


def nothing_stored(db, quarantine: bool = True):
    """No ticket, event or delivery row; and, unless `quarantine` is False, no quarantine
    entry either (an unauthenticated request is never stored anywhere)."""
    tables = ["tickets", "events", "deliveries"] + (["quarantine"] if quarantine else [])
    total = " + ".join(f"(SELECT count(*) FROM {table})" for table in tables)
    return db.execute(f"SELECT {total} AS n").fetchone()["n"] == 0


UNAUTHENTICATED = {
    "freshdesk wrong hmac secret": (FRESHDESK_URL, GOOD, lambda: freshdesk_hmac(GOOD, secret="wrong"), "bad_signature"),
    "freshdesk tampered body": (FRESHDESK_URL, GOOD.replace(b"77", b"78"), lambda: freshdesk_hmac(GOOD), "bad_signature"),
    "freshdesk missing headers": (FRESHDESK_URL, GOOD, lambda: {}, "missing"),
    "freshdesk signature not hex": (FRESHDESK_URL, GOOD, lambda: {"X-Freshdesk-Signature": "zz\u00e9"}, "bad_signature"),
    "freshdesk wrong basic password": (FRESHDESK_URL, GOOD, lambda: basic("freshdesk", "nope"), "bad_credentials"),
    "freshdesk basic user of zendesk": (FRESHDESK_URL, GOOD, lambda: basic("zendesk", "zd-basic-pass"), "bad_credentials"),
    "freshdesk malformed basic": (FRESHDESK_URL, GOOD, lambda: {"Authorization": "Basic !!!not-base64"}, "malformed"),
    "freshdesk bearer instead of basic": (FRESHDESK_URL, GOOD, lambda: {"Authorization": "Bearer abc"}, "malformed"),
    # werkzeug's base64 decoding raises on non-ASCII (found in review: it was a 500)
    "freshdesk basic with non-ascii": (FRESHDESK_URL, GOOD, lambda: {"Authorization": "Basic \u00e9\u00e9\u00e9\u00e9"}, "malformed"),
    "zendesk wrong signing secret": (ZENDESK_URL, GOOD, lambda: zendesk_signature(GOOD, secret="wrong"), "bad_signature"),
    "zendesk tampered body": (ZENDESK_URL, GOOD + b" ", lambda: zendesk_signature(GOOD), "bad_signature"),
    "zendesk stale timestamp": (ZENDESK_URL, GOOD, lambda: zendesk_signature(GOOD, timestamp=zendesk_timestamp(-330)), "stale_timestamp"),
    "zendesk future timestamp": (ZENDESK_URL, GOOD, lambda: zendesk_signature(GOOD, timestamp=zendesk_timestamp(330)), "stale_timestamp"),
    "zendesk timestamp swapped": (ZENDESK_URL, GOOD, lambda: {**zendesk_signature(GOOD), "X-Zendesk-Webhook-Signature-Timestamp": zendesk_timestamp(-5)}, "bad_signature"),
    "zendesk garbage timestamp": (ZENDESK_URL, GOOD, lambda: {**zendesk_signature(GOOD), "X-Zendesk-Webhook-Signature-Timestamp": "yesterday"}, "malformed"),
    "zendesk missing timestamp": (ZENDESK_URL, GOOD, lambda: {"X-Zendesk-Webhook-Signature": zendesk_signature(GOOD)["X-Zendesk-Webhook-Signature"]}, "missing"),
    "zendesk freshdesk signature": (ZENDESK_URL, GOOD, lambda: freshdesk_hmac(GOOD), "missing"),
    "zendesk public test secret": (ZENDESK_URL, GOOD, lambda: zendesk_signature(GOOD, secret="dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="), "bad_signature"),
    "zendesk basic with empty password": (ZENDESK_URL, GOOD, lambda: basic("zendesk", ""), "bad_credentials"),
}


@pytest.mark.parametrize("case", list(UNAUTHENTICATED))
def test_wrong_or_missing_authentication_is_401_and_stores_nothing(client, db, case):
    url, body, headers, _reason = UNAUTHENTICATED[case]
    response = client.post(url, data=body, headers=headers())
    assert response.status_code == 401
    assert set(response.json) == {"error"} and response.json["error"]
    assert nothing_stored(db)


def test_the_stale_timestamp_error_says_what_is_wrong(client, db):
    response = client.post(ZENDESK_URL, data=GOOD, headers=zendesk_signature(GOOD, timestamp=zendesk_timestamp(-3600)))
    assert "300 seconds" in response.json["error"]


@pytest.mark.parametrize("vendor", vendor_names())
def test_production_without_any_method_configured_refuses_everything(make_app, db, vendor):
    unconfigured = {name: "" for name in AUTH_ENV}
    client = make_app(APP_ENV="production", **unconfigured).test_client()
    response = client.post(url_for(vendor), data=GOOD,
                           headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
    assert (response.status_code, response.json) == (
        401, {"error": f"Webhook authentication is not configured for {vendor}"})
    assert nothing_stored(db)


def test_development_without_any_method_configured_accepts_unauthenticated_calls(make_app, db):
    client = make_app(APP_ENV="development", **{name: "" for name in AUTH_ENV if name.startswith("FRESHDESK")}
                      ).test_client()
    assert client.post(FRESHDESK_URL, data=GOOD).status_code == 201


def test_development_with_a_method_configured_still_requires_it(make_app, db):
    client = make_app(APP_ENV="development").test_client()
    assert client.post(FRESHDESK_URL, data=GOOD).status_code == 401


def deep(depth: int) -> bytes:
    return ('{"id": 5, "x": ' + "[" * depth + "]" * depth + "}").encode()


BAD_BODIES = {
    "empty body": (b"", 400),
    "whitespace only": (b"  \n ", 400),
    "a JSON array": (b"[]", 400),
    "a JSON string": (b'"str"', 400),
    "a JSON number": (b"42", 400),
    "JSON null": (b"null", 400),
    "invalid UTF-8": (b'{"id": 1, "subject": "\xff\xfe"}', 400),
    "truncated JSON": (b'{"id": 1, "subject": ', 400),
    "form encoded": (b"id=1&subject=x", 400),
    "NaN": (b'{"id": NaN}', 400),
    "Infinity": (b'{"id": 1, "x": -Infinity}', 400),
    "nested far too deep": (deep(100_000), 422),
    "nested one level past the limit": (deep(MAX_NESTING), 422),
    # The review's case: parsed, then a 500 writing it back, and the delivery lost.
    "custom fields nested 955 deep": (b'{"id": 5, "custom_fields": {"x": ' + b"[" * 955 + b"]" * 955 + b"}}", 422),
    # 2.7 KB that PostgreSQL would write back as 39 MB: each read of the history was that.
    "exponents stored far longer than the body": (b'{"id": 1, "x": [' + b",".join([b"1e131071"] * 300) + b"]}", 422),
    "one exponent past any count": (b'{"id": 1, "x": 1e' + b"9" * 5000 + b"}", 422),
    # The review's case: a string never closed, of escaped quotes, past the nesting limit.
    "an unclosed string of escaped quotes": (b"[" * 65 + b'"' + b'\\"' * 20_000, 422),
    "missing id": (b'{"subject": "no id"}', 422),
    "null id": (b'{"id": null}', 422),
    "empty id": (b'{"id": ""}', 422),
    "id is an object": (b'{"id": {"value": 1}}', 422),
    "subject is an object": (b'{"id": 1, "subject": {"text": "x"}}', 422),
    "subject is a fraction": (b'{"id": 1, "subject": 1.5}', 422),
    "NUL in a normalized field": (b'{"id": 1, "subject": "a\\u0000b"}', 422),
    "NUL elsewhere in the payload": (b'{"id": 1, "extra": "a\\u0000b"}', 422),
    "lone surrogate elsewhere": (b'{"id": 1, "extra": "\\ud800"}', 422),
    "lone surrogate in a status": (b'{"id": 1, "status": "\\udfff"}', 422),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
@pytest.mark.parametrize("vendor", vendor_names())
def test_unusable_authentic_bodies_are_a_clear_4xx_and_kept_in_quarantine_only(client, db, vendor, case):
    body, status = BAD_BODIES[case]
    signed_body, headers = signed(vendor, body, TEST_CLIENT_BASE + url_for(vendor))  # (HubSpot signs the URL)
    response = client.post(url_for(vendor), data=signed_body, headers=headers)
    assert response.status_code == status, response.json
    assert set(response.json) == {"error", "quarantine_id"}
    assert nothing_stored(db, quarantine=False)
    [entry] = db.execute("SELECT * FROM quarantine").fetchall()
    assert entry["id"] == response.json["quarantine_id"]
    assert (bytes(entry["body"]), entry["vendor"], entry["status"]) == (signed_body, vendor, status)
    assert entry["error"] == response.json["error"].replace("\x00", "\\u0000")


def test_an_integer_longer_than_python_converts_is_valid_json_and_stored_as_sent(client, db):
    """5000 digits: valid JSON, which jsonb holds exactly. It was a 400 "not valid JSON"
    quoting Python's own digit limit, and the delivery quarantined."""
    digits = "9" * 5000
    response = client.post(url_for("freshdesk"), **dict(zip(("data", "headers"), signed(
        "freshdesk", '{"id": "long-int", "x": ' + digits + "}"))))
    assert response.status_code == 201, response.json
    stored = db.execute("SELECT payload::text AS p FROM events").fetchone()["p"]
    assert stored.replace(" ", "") == '{"x":' + digits + ',"id":"long-int"}'


def test_a_422_names_the_field(client, db):
    body, headers = signed("freshdesk", {"ticket": {"id": 3, "subject": {"nested": True}}})
    response = client.post(FRESHDESK_URL, data=body, headers=headers)
    assert response.status_code == 422
    assert "ticket.subject" in response.json["error"]


def test_json_nested_exactly_to_the_limit_is_accepted(client, db):
    body, headers = signed("freshdesk", deep(MAX_NESTING - 1))  # the object, then 63 arrays
    assert client.post(FRESHDESK_URL, data=body, headers=headers).status_code == 201


def test_json_nested_past_the_limit_is_quarantined_with_its_reason(client, db):
    body, headers = signed("zendesk", deep(MAX_NESTING))
    response = client.post(ZENDESK_URL, data=body, headers=headers)
    assert response.status_code == 422
    assert response.json["error"] == "JSON body nests 65 levels deep; at most 64 are accepted"
    entry = db.execute("SELECT reason, status, body FROM quarantine").fetchone()
    assert (entry["reason"], entry["status"], bytes(entry["body"])) == ("too_deep", 422, body)


def test_brackets_inside_strings_do_not_count_as_nesting(client, db):
    body, headers = signed("freshdesk", {"id": "brackets", "subject": "[" * 500 + "{" * 500})
    assert client.post(FRESHDESK_URL, data=body, headers=headers).status_code == 201


@pytest.mark.parametrize("size", [2 * 1024 * 1024, 1024 * 1024 + 1])
def test_a_body_over_max_body_bytes_is_413_before_anything_else(client, db, size):
    body = b'{"id": 1, "pad": "' + b"a" * size + b'"}'
    response = client.post(FRESHDESK_URL, data=body, headers=freshdesk_hmac(body))
    assert (response.status_code, response.json) == (413, {"error": "Request body too large"})
    assert nothing_stored(db)


def test_a_body_just_under_the_limit_is_accepted(client, db):
    pad = 1024 * 1024 - 100
    body = b'{"id": 1, "pad": "' + b"a" * pad + b'"}'
    assert client.post(FRESHDESK_URL, data=body, headers=freshdesk_hmac(body)).status_code == 201


def test_sql_looking_strings_are_stored_verbatim(client, db):
    raw = fixture("freshdesk", "sql_looking")
    body, headers = signed("freshdesk", raw)
    assert client.post(FRESHDESK_URL, data=body, headers=headers).status_code == 201
    row = db.execute("SELECT subject, description, tags, payload FROM tickets JOIN events ON ticket_id = tickets.id"
                     ).fetchone()
    assert row["subject"] == "Robert'); DROP TABLE tickets;--"
    assert row["description"] == "1' OR '1'='1; SELECT pg_sleep(10); -- $$ \\x00"
    assert row["tags"] == ["'; DELETE FROM deliveries; --"]
    assert row["payload"] == json.loads(raw)


def test_unicode_is_stored_exactly(client, db):
    raw = fixture("freshdesk", "unicode")
    body, headers = signed("freshdesk", raw)
    assert client.post(FRESHDESK_URL, data=body, headers=headers).status_code == 201
    row = db.execute("SELECT subject, description, requester_name, tags FROM tickets").fetchone()
    sent = json.loads(raw)["ticket"]
    assert (row["subject"], row["description"], row["requester_name"], row["tags"]) == (
        sent["subject"], sent["description"], sent["requester_name"], sent["tags"])


def test_rejected_payloads_do_not_disturb_an_accepted_ticket(client, db):
    body, headers = signed("freshdesk", {"id": 60, "subject": "kept"})
    created = client.post(FRESHDESK_URL, data=body, headers=headers)
    for bad in (b'{"id": 60, "subject": [5]}', b'{"id": 60, "x": "\\u0000"}', b"[]"):
        bad_body, bad_headers = signed("freshdesk", bad)
        assert client.post(FRESHDESK_URL, data=bad_body, headers=bad_headers).status_code in (400, 422)
    row = db.execute("SELECT id, subject FROM tickets").fetchone()
    assert (str(row["id"]), row["subject"]) == (created.json["ticket_id"], "kept")


@pytest.mark.parametrize("case", list(UNAUTHENTICATED))
def test_each_refusal_is_labelled_with_its_reason(app, case):
    url, body, headers, reason = UNAUTHENTICATED[case]
    vendor = next(v for v in VENDORS if url.endswith("/" + v.name))
    settings = app.extensions["ingestion"].settings
    guard = Guard(vendor.name, settings.development)
    with pytest.raises(Unauthorized) as caught:
        guard.verify(vendor.verifiers(settings), Headers(headers()), body)
    assert caught.value.reason == reason


@pytest.mark.parametrize("status", ["\u00b2", "9" * 5000, "\u0663"])  # superscript two, a long run, Arabic-Indic 3
def test_status_values_that_look_numeric_but_are_not_codes_are_kept_as_words(client, db, status):
    body, headers = signed("freshdesk", {"id": "odd-status", "status": status})
    response = client.post(FRESHDESK_URL, data=body, headers=headers)
    assert response.status_code == 201, response.json
    assert db.execute("SELECT status FROM tickets").fetchone()["status"] == status.lower()


@pytest.mark.parametrize("event_id", [r"\ud800", r"nul\u0000inside"])  # JSON escapes, as sent
def test_an_unstorable_zendesk_event_id_on_an_ignored_event_is_not_fatal(client, db, event_id):
    raw = ('{"type": "zen:event-type:user.created", "id": "%s", "detail": {"id": "1"}}' % event_id).encode()
    body, headers = signed("zendesk", raw)
    response = client.post(ZENDESK_URL, data=body, headers=headers)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert db.execute("SELECT outcome FROM deliveries").fetchone()["outcome"] == "ignored"


@pytest.mark.parametrize("vendor, case, key, named", [
    ("zendesk", "event_ticket_created", "id", "id"),  # the event id
    ("zendesk", "event_ticket_created", "account_id", "account_id"),
    ("intercom", "ticket_created", "app_id", "app_id"),  # the workspace, which is the account
    ("hubspot", "life_01_creation", "eventId", "[1].eventId"),  # the second event of a batch of two
])
def test_an_id_postgresql_cannot_store_is_a_422_naming_its_field(client, db, vendor, case, key, named):
    """A NUL or a lone surrogate in an event or account id was a 422 saying only that "the
    database refused a value in the payload"; the field is named now, and the delivery
    kept in quarantine as every unusable authentic body is."""
    payload = json.loads(fixture(vendor, case))
    if vendor == "hubspot":  # HubSpot's array of events
        payload = [payload, dict(payload)]
    (payload[-1] if isinstance(payload, list) else payload)[key] = "PLACEHOLDER"
    for escape in ("\\u0000", "\\ud800"):
        raw = json.dumps(payload).replace("PLACEHOLDER", f"bad{escape}id").encode()
        body, headers = signed(vendor, raw, TEST_CLIENT_BASE + url_for(vendor))
        response = client.post(url_for(vendor), data=body, headers=headers)
        assert response.status_code == 422, response.json
        assert response.json["error"].startswith(f"Field '{named}' holds a NUL character or a lone surrogate")
    assert nothing_stored(db, quarantine=False)
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 2


def test_a_401_challenges_the_client_so_one_that_waits_for_it_sends_its_credentials(client, db):
    """RFC 9110: a 401 carries WWW-Authenticate. wget, Java's Authenticator and .NET send
    Basic credentials only once challenged: without one, they never sent them."""
    basic = client.post(FRESHDESK_URL, data=GOOD, headers={"Content-Type": "application/json"})
    assert basic.status_code == 401
    assert basic.headers["WWW-Authenticate"].startswith('Basic realm="freshdesk webhooks"')
    signed_only = client.post(url_for("helpscout"), data=GOOD, headers={"Content-Type": "application/json"})
    assert (signed_only.status_code, signed_only.headers["WWW-Authenticate"]) == (
        401, 'Signature realm="helpscout webhooks"')

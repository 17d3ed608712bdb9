"""The timestamped signature layouts, against signatures computed here from the vendors'
documentation: Zendesk (ISO-8601 timestamp + body), Front's application webhooks
(`<ms>:<body>`), HubSpot's v3 (method + URI + body + ms), and the prefixed hex HMACs
(`sha1=`, `sha256=`) Intercom and Jira send."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ingestion.verifiers import Failure, HmacSignature, Target, TimestampedSignature

SECRET = "a-test-secret-of-some-length"
BODY = b'[{"eventId":1,"subscriptionType":"ticket.creation","objectId":42}]'
NOW = 1_760_000_000.0


def b64_hmac(message: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()


def verifier(layout: str) -> TimestampedSignature:
    return TimestampedSignature("X-Sig", "X-Stamp", (("signing:test", SECRET),), 300, clock=lambda: NOW, layout=layout)


def test_front_signs_milliseconds_a_colon_and_the_body():
    stamp = str(int(NOW * 1000))
    headers = {"X-Sig": b64_hmac(stamp.encode() + b":" + BODY), "X-Stamp": stamp}
    assert verifier("stamp:body").check(headers, BODY) == "signing:test"
    # Zendesk's layout (no colon) is another message.
    no_colon = {"X-Sig": b64_hmac(stamp.encode() + BODY), "X-Stamp": stamp}
    assert verifier("stamp:body").check(no_colon, BODY).reason == "bad_signature"


@pytest.mark.parametrize("uri", ["https://hooks.example.com/api/v1/ingest/webhook/hubspot/123?x=1",
                                 "http://hooks.example.com/api/v1/ingest/webhook/hubspot/123?x=1"])
def test_hubspot_v3_signs_method_uri_body_and_milliseconds_either_scheme(uri):
    stamp = str(int(NOW * 1000) - 60_000)
    headers = {"X-Sig": b64_hmac(b"POST" + uri.encode() + BODY + stamp.encode()), "X-Stamp": stamp}
    target = Target("POST", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/123?x=1")
    assert verifier("method+uri+body+stamp").check(headers, BODY, target) == "signing:test"
    # Another path, another method or another host is another message.
    for other in (Target("POST", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/124?x=1"),
                  Target("PUT", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/123?x=1"),
                  Target("POST", "evil.example.com", "/api/v1/ingest/webhook/hubspot/123?x=1")):
        assert verifier("method+uri+body+stamp").check(headers, BODY, other).reason == "bad_signature"


@pytest.mark.parametrize("offset_ms, reason", [(-301_000, "stale_timestamp"), (301_000, "stale_timestamp")])
def test_a_millisecond_timestamp_past_the_tolerance_is_refused(offset_ms, reason):
    stamp = str(int(NOW * 1000) + offset_ms)
    headers = {"X-Sig": b64_hmac(stamp.encode() + b":" + BODY), "X-Stamp": stamp}
    assert verifier("stamp:body").check(headers, BODY).reason == reason


@pytest.mark.parametrize("stamp", ["2026-12-05T07:00:00Z", "-1000", "1e12", "１２３", "9" * 40, " "])
def test_a_millisecond_timestamp_that_is_not_one_is_malformed_or_missing(stamp):
    headers = {"X-Sig": b64_hmac(stamp.encode() + b":" + BODY), "X-Stamp": stamp}
    result = verifier("stamp:body").check(headers, BODY)
    assert isinstance(result, Failure) and result.reason in ("malformed", "missing")
    assert "X-Stamp" in result.message


def test_zendesk_layout_still_reads_iso_timestamps():
    stamp = "2025-10-09T08:53:20Z"  # NOW
    headers = {"X-Sig": b64_hmac(stamp.encode() + BODY), "X-Stamp": stamp}
    assert verifier("stamp+body").check(headers, BODY) == "signing:test"
    assert verifier("stamp+body").check({**headers, "X-Stamp": "1760000000000"}, BODY).reason == "malformed"


@pytest.mark.parametrize("digest, prefix", [("sha1", "sha1="), ("sha256", "sha256="), ("sha1", "")])
def test_prefixed_hex_hmacs_are_read_with_or_without_their_prefix(digest, prefix):
    check = HmacSignature("X-Hub-Signature", (("hmac:test", SECRET),), digest, "hex")
    mac = hmac.new(SECRET.encode(), BODY, getattr(hashlib, digest)).hexdigest()
    assert check.check({"X-Hub-Signature": prefix + mac}, BODY) == "hmac:test"
    assert check.check({"X-Hub-Signature": prefix + mac.upper()}, BODY) == "hmac:test"
    assert check.check({"X-Hub-Signature": "sha512=" + mac}, BODY).reason == "bad_signature"


def test_production_start_logs_an_error_for_a_vendor_without_authentication(caplog):
    """SPEC 3: no method configured in production: its endpoint answers 401, and start-up
    logs an error (development: a warning, as it accepts the webhooks)."""
    import logging

    from ingestion.web.guard import Guard

    with caplog.at_level(logging.INFO, logger="ingestion"):
        Guard("zendesk", development=False).log_posture([])
        Guard("zendesk", development=True).log_posture([])
    assert [(r.levelname, r.vendor) for r in caplog.records] == [("ERROR", "zendesk"), ("WARNING", "zendesk")]


@pytest.mark.parametrize("signed_path", ["/api/v1/ingest/webhook/hubspot/123?portal=a%3Ab%2Fc%40d",
                                         "/api/v1/ingest/webhook/hubspot/123?portal=a:b/c@d"])
def test_hubspot_v3_accepts_the_uri_as_sent_or_with_its_listed_escapes_decoded(signed_path):
    """HubSpot's documentation signs the URI with %3A, %2F, %40 ... decoded; its Python
    client signs the URI as given. A request whose target holds escapes passes either way
    (hex digits in either case), and an escape outside HubSpot's list (%20) is not
    decoded, so that message stays another one."""
    stamp = str(int(NOW * 1000))
    uri = f"https://hooks.example.com{signed_path}"
    headers = {"X-Sig": b64_hmac(b"POST" + uri.encode() + BODY + stamp.encode()), "X-Stamp": stamp}
    sent = Target("POST", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/123?portal=a%3Ab%2Fc%40d")
    assert verifier("method+uri+body+stamp").check(headers, BODY, sent) == "signing:test"
    if ":" in signed_path:
        lower = Target("POST", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/123?portal=a%3ab%2fc%40d")
        assert verifier("method+uri+body+stamp").check(headers, BODY, lower) == "signing:test"
    spaced = {"X-Sig": b64_hmac(b"POST" + b"https://hooks.example.com/api/v1/ingest/webhook/hubspot/123?p=a b"
                                + BODY + stamp.encode()), "X-Stamp": stamp}
    target = Target("POST", "hooks.example.com", "/api/v1/ingest/webhook/hubspot/123?p=a%20b")
    assert verifier("method+uri+body+stamp").check(spaced, BODY, target).reason == "bad_signature"

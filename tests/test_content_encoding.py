"""Compressed bodies: gzip and deflate are decoded (held to MAX_BODY_BYTES once decoded),
signed either over the JSON or over the bytes as sent; any other coding is a JSON 415
naming it, and a body its coding does not decode is a JSON 400. No vendor compresses its
webhooks, but a relay or an integration's HTTP client may (web/request_context.py)."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from signing import FRESHDESK_URL, freshdesk_hmac

BODY = json.dumps({"ticket": {"id": 9005, "subject": "gzip \u00e9t\u00e9 \U0001F525", "status": "open"}}).encode()


def send(client, sent: bytes, coding: str, signed_over: bytes | None = None):
    headers = {"Content-Type": "application/json", "Content-Encoding": coding,
               **freshdesk_hmac(sent if signed_over is None else signed_over)}
    return client.post(FRESHDESK_URL, data=sent, headers=headers)


def stored(db) -> list[dict]:
    return db.execute("SELECT t.subject, e.payload FROM tickets t JOIN events e ON e.ticket_id = t.id").fetchall()


@pytest.mark.parametrize("coding, encode", [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("GZIP", gzip.compress),
    ("deflate", zlib.compress), ("identity", lambda body: body),
])
@pytest.mark.parametrize("signature_over", ["json", "sent"])
def test_a_compressed_body_is_decoded_and_stored_whichever_bytes_were_signed(client, db, coding, encode,
                                                                             signature_over):
    sent = encode(BODY)
    answer = send(client, sent, coding, BODY if signature_over == "json" else sent)
    assert answer.status_code == 201, answer.json
    assert stored(db) == [{"subject": "gzip \u00e9t\u00e9 \U0001F525", "payload": json.loads(BODY)}]


def test_a_wrong_signature_is_refused_over_both_readings(client, db):
    answer = send(client, gzip.compress(BODY), "gzip", signed_over=b"something else")
    assert answer.status_code == 401 and "error" in answer.json
    assert stored(db) == []


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip"])
def test_a_coding_the_service_does_not_decode_is_a_415_naming_it(client, db, coding):
    answer = send(client, gzip.compress(BODY), coding)
    assert answer.status_code == 415
    assert answer.json["error"].startswith(f"Content-Encoding {coding} is not supported")
    assert stored(db) == []


def test_a_gzip_body_of_several_members_is_decoded_whole(client, db):
    """RFC 1952: members one after the other (what `cat a.gz b.gz` makes); the first alone
    was taken for the whole body. Sixteen are taken."""
    sent = b"".join(gzip.compress(BODY[i:i + 8]) for i in range(0, 8 * 15, 8)) + gzip.compress(BODY[8 * 15:])
    answer = send(client, sent, "gzip", BODY)
    assert answer.status_code == 201, answer.json
    assert stored(db)[0]["payload"] == json.loads(BODY)


@pytest.mark.parametrize("sent, says", [
    (b"not gzip at all", "is not valid gzip"),
    (gzip.compress(BODY)[:-12], "ends before its end"),
    (gzip.compress(BODY) + b"trailing garbage", "is not valid gzip"),
    # 17 members: each was a pass over the rest of the body (125,000 empty ones in 1 MB
    # cost a worker 1.6 s before the signature was checked).
    (b"".join(gzip.compress(BODY[i:i + 8]) for i in range(0, 8 * 17, 8)), "more than 16 gzip members"),
])
def test_a_body_its_coding_does_not_decode_is_a_json_400(client, db, sent, says):
    answer = send(client, sent, "gzip")
    assert answer.status_code == 400
    assert says in answer.json["error"]
    assert stored(db) == []


def test_a_small_body_that_decodes_past_the_limit_is_a_413(make_app, db):
    client = make_app(MAX_BODY_BYTES=str(64 * 1024)).test_client()
    bomb = gzip.compress(b'{"ticket": {"id": 1, "subject": "' + b"a" * (10 * 1024 * 1024) + b'"}}')
    assert len(bomb) < 64 * 1024
    answer = send(client, bomb, "gzip")
    assert answer.status_code == 413 and "error" in answer.json
    assert stored(db) == []


def test_an_authentic_compressed_body_that_cannot_be_read_is_quarantined_decoded(client, db):
    unreadable = json.dumps({"ticket": {"subject": "no id"}}).encode()
    answer = send(client, gzip.compress(unreadable), "gzip", signed_over=unreadable)
    assert answer.status_code == 422
    [kept] = db.execute("SELECT body FROM quarantine").fetchall()
    assert bytes(kept["body"]) == unreadable

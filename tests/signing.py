"""How vendors sign and authenticate, computed from scratch in the tests (never by
calling the code under test), so a bug in a verifier cannot hide behind itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

# Long enough for production's start-up checks; the commas and spaces prove a secret is
# read whole (they once split it into two keys).
FRESHDESK_HMAC = "fd-hmac-secret, with a comma"
FRESHDESK_HMAC_OLD = "fd-hmac-previous-secret"
FRESHDESK_USER, FRESHDESK_PASSWORD = "freshdesk", "fd-basic-pass:word"
ZENDESK_USER, ZENDESK_PASSWORD = "zendesk", "zd-basic-password"
ZENDESK_SIGNING = "zd-signing-secret-current"
ZENDESK_SIGNING_OLD = "zd-signing-secret-previous"

AUTH_ENV = {
    "FRESHDESK_WEBHOOK_SECRET": FRESHDESK_HMAC,
    "FRESHDESK_WEBHOOK_SECRET_PREVIOUS": FRESHDESK_HMAC_OLD,
    "FRESHDESK_WEBHOOK_AUTH": f"{FRESHDESK_USER}:{FRESHDESK_PASSWORD}",
    "ZENDESK_WEBHOOK_SECRET": f"{ZENDESK_USER}:{ZENDESK_PASSWORD}",
    "ZENDESK_SIGNING_SECRET": ZENDESK_SIGNING,
    "ZENDESK_SIGNING_SECRET_PREVIOUS": ZENDESK_SIGNING_OLD,
}
SECRET_VALUES = (FRESHDESK_HMAC, FRESHDESK_HMAC_OLD, FRESHDESK_PASSWORD, ZENDESK_PASSWORD,
                 ZENDESK_SIGNING, ZENDESK_SIGNING_OLD)

FRESHDESK_URL = "/api/v1/ingest/webhook/freshdesk"
ZENDESK_URL = "/api/v1/ingest/webhook/zendesk"


def body_of(payload: dict | bytes | str) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False).encode()


def fixture(vendor: str, case: str) -> bytes:
    return (FIXTURES / vendor / f"{case}.json").read_bytes()


def freshdesk_hmac(body: bytes, secret: str = FRESHDESK_HMAC, prefix: str = "") -> dict[str, str]:
    return {"X-Freshdesk-Signature": prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def zendesk_timestamp(offset_seconds: float = 0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def zendesk_signature(body: bytes, secret: str = ZENDESK_SIGNING, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or zendesk_timestamp()
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def signed(vendor: str, payload: dict | bytes | str) -> tuple[bytes, dict[str, str]]:
    """A body and the headers of its vendor's native authentication."""
    body = body_of(payload)
    headers = freshdesk_hmac(body) if vendor == "freshdesk" else zendesk_signature(body)
    return body, {"Content-Type": "application/json", **headers}

"""How vendors sign and authenticate, and one way to post a webhook, for every vendor.

The signers read only *where* a vendor's credential goes (its header names, its digest
and encoding, from the vendor's declaration: ingestion/vendor.py) and compute the
cryptography from scratch, never by calling the code under test, so a bug in a verifier
cannot hide behind itself. The credentials are generated for every variable the vendors
declare: a new vendor gets its secrets, its signer and `post()` without a line here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ingestion.vendor import Credential
from ingestion.vendors import VENDORS

TESTS = Path(__file__).parent
WEBHOOK_PREFIX = "/api/v1/ingest/webhook"
BY_NAME = {vendor.name: vendor for vendor in VENDORS}


def _value(credential: Credential, vendor: str, previous: bool = False) -> str:
    """Long enough for production's checks; commas, spaces and colons prove a secret is
    read whole (they once split it into two keys)."""
    which = "previous" if previous else "current"
    if credential.kind == "basic":
        return f"{vendor}:{vendor}-{which}-pass:word, ok"
    return f"{vendor}-{credential.scheme[0]}-{which}-secret, with a comma"


#: Every credential variable the vendors declare, with its `_PREVIOUS` (rotation) value.
AUTH_ENV = {name: value for vendor in VENDORS for credential in vendor.credentials
            for name, value in ((credential.variable, _value(credential, vendor.name)),
                                (credential.variable + "_PREVIOUS", _value(credential, vendor.name, previous=True)))}
SECRET_VALUES = tuple(value.split(":", 1)[1] if ":" in value else value for value in AUTH_ENV.values())
#: The tests' SOURCES_ENCRYPTION_KEY (a Fernet key: 32 url-safe base64 bytes).
SOURCES_KEY = "dGVzdHMtc291cmNlcy1lbmNyeXB0aW9uLWtleS0zMmI="


def credential_of(vendor: str, scheme: str) -> Credential:
    return next(c for c in BY_NAME[vendor].credentials if c.scheme[0] == scheme)


def secret(vendor: str, scheme: str, previous: bool = False) -> str:
    variable = credential_of(vendor, scheme).variable
    return AUTH_ENV[variable + ("_PREVIOUS" if previous else "")]


def basic_pair(vendor: str, previous: bool = False) -> tuple[str, str]:
    user, _, password = secret(vendor, "basic", previous).partition(":")
    return user, password


# Freshdesk and Zendesk by name, for the tests that are about their own quirks.
FRESHDESK_URL = f"{WEBHOOK_PREFIX}/freshdesk"
ZENDESK_URL = f"{WEBHOOK_PREFIX}/zendesk"
FRESHDESK_HMAC, FRESHDESK_HMAC_OLD = secret("freshdesk", "hmac"), secret("freshdesk", "hmac", previous=True)
FRESHDESK_USER, FRESHDESK_PASSWORD = basic_pair("freshdesk")
ZENDESK_USER, ZENDESK_PASSWORD = basic_pair("zendesk")
ZENDESK_SIGNING, ZENDESK_SIGNING_OLD = (secret("zendesk", "timestamped"),
                                        secret("zendesk", "timestamped", previous=True))


def body_of(payload: dict | bytes | str) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False).encode()


def fixture(vendor: str, case: str) -> bytes:
    """tests/vendors/<vendor>/fixtures/<case>.json, as bytes."""
    return (TESTS / "vendors" / vendor / "fixtures" / f"{case}.json").read_bytes()


def url_for(vendor: str, account: str | None = None) -> str:
    return f"{WEBHOOK_PREFIX}/{vendor}" + (f"/{account}" if account else "")


def hmac_headers(credential: Credential, body: bytes, key: str, prefix: str | None = None) -> dict[str, str]:
    """`prefix`: None sends the vendor's own (Intercom's `sha1=`)."""
    _, header, digest, encoding, own_prefix = credential.scheme
    mac = hmac.new(key.encode(), body, getattr(hashlib, digest))
    prefix = own_prefix if prefix is None else prefix
    return {header: prefix + (mac.hexdigest() if encoding == "hex" else base64.b64encode(mac.digest()).decode())}


def timestamp(offset_seconds: float = 0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def milliseconds(offset_seconds: float = 0) -> str:
    return str(int((datetime.now(timezone.utc).timestamp() + offset_seconds) * 1000))


#: The URI a test request is addressed to when a signature covers it (the Flask test client's host).
TEST_CLIENT_BASE = "http://localhost"


def timestamped_headers(credential: Credential, body: bytes, key: str, stamp: str | None = None,
                        method: str = "POST", uri: str = "") -> dict[str, str]:
    """What each layout signs, written from the vendors' documentation (not from the
    verifier): Zendesk `timestamp + body` (ISO-8601), Front `<ms>:<body>`, HubSpot v3
    `method + URI + body + <ms>`."""
    _, header, timestamp_header, layout = credential.scheme
    if layout == "stamp+body":
        stamp = stamp or timestamp()
        message = stamp.encode() + body
    elif layout == "stamp:body":
        stamp = stamp or milliseconds()
        message = stamp.encode() + b":" + body
    else:
        assert layout == "method+uri+body+stamp", layout
        stamp = stamp or milliseconds()
        message = method.encode() + uri.encode() + body + stamp.encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return {header: base64.b64encode(digest).decode(), timestamp_header: stamp}


def token_headers(credential: Credential, key: str) -> dict[str, str]:
    _, header = credential.scheme
    return {header: key}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def native_headers(vendor: str, body: bytes, previous: bool = False, uri: str = "") -> dict[str, str]:
    """The headers of the vendor's own signature (its first signed credential; Basic for
    a vendor that only has Basic). `uri`: where the request goes, for a signature that
    covers it (HubSpot's)."""
    for credential in BY_NAME[vendor].credentials:
        key = secret(vendor, credential.scheme[0], previous)
        if credential.scheme[0] == "hmac":
            return hmac_headers(credential, body, key)
        if credential.scheme[0] == "timestamped":
            return timestamped_headers(credential, body, key, uri=uri)
        if credential.scheme[0] == "token":
            return token_headers(credential, key)
    return basic(*basic_pair(vendor, previous))


def signed(vendor: str, payload: dict | bytes | str, uri: str = "") -> tuple[bytes, dict[str, str]]:
    """A body and the headers of its vendor's native authentication."""
    body = body_of(payload)
    return body, {"Content-Type": "application/json", **native_headers(vendor, body, uri=uri)}


def post(client, vendor: str, payload: dict | bytes | str, account: str | None = None, **headers: str):
    """One webhook as the vendor sends it, through the Flask test client."""
    url = url_for(vendor, account)
    body, auth = signed(vendor, payload, TEST_CLIENT_BASE + url)
    return client.post(url, data=body, headers={**auth, **headers})


def post_http(base_url: str, vendor: str, payload: dict | bytes | str, account: str | None = None,
              timeout: float = 10, **headers: str):
    """The same against a live server (gunicorn, nginx)."""
    import requests

    url = base_url + url_for(vendor, account)
    body, auth = signed(vendor, payload, url)
    return requests.post(url, data=body, headers={**auth, **headers}, timeout=timeout)


# The first release's names, kept for the tests about those two vendors' signatures.
def freshdesk_hmac(body: bytes, secret: str = FRESHDESK_HMAC, prefix: str = "") -> dict[str, str]:
    return hmac_headers(credential_of("freshdesk", "hmac"), body, secret, prefix)


def zendesk_signature(body: bytes, secret: str = ZENDESK_SIGNING, timestamp: str | None = None) -> dict[str, str]:
    return timestamped_headers(credential_of("zendesk", "timestamped"), body, secret, timestamp)


zendesk_timestamp = timestamp

"""How a webhook call proves it is authentic: plain cryptography over headers and the raw
body, with no web framework. Vendors pick the verifiers they use (ingestion/vendors/);
the web layer (web/guard.py) runs them before anything parses the body.

Every verifier compares with `hmac.compare_digest` against *every* configured secret, so
a rotation (the current value and the previous one) does not leak through timing which
one matched. Each secret comes with a label (`signing:trigger`, `basic:env (previous)`):
a verifier that passes answers the label of the one that matched, which the event
records; a secret itself is never returned, logged or stored in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol


@dataclass(frozen=True)
class Failure:
    reason: str  # a short label for metrics: missing, malformed, bad_signature, ...
    message: str


#: (label, secret): what a verifier is built from. The label names the credential.
Labelled = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Target:
    """What a signature may cover besides the headers and the body: the request's method
    and where it was addressed (HubSpot's v3 signs `method + URI + body + timestamp`).
    The URI a vendor signs is the public one it was configured with, which a proxy may
    not pass on as it was: the scheme is tried both ways (the secret still has to match,
    so this widens nothing an attacker can use)."""

    method: str = "POST"
    host: str = "localhost"
    #: The request target as sent: path and query, still percent-encoded.
    path: str = "/"

    @property
    def uris(self) -> tuple[str, ...]:
        """Each URI the vendor may have signed: both schemes, and for a target holding
        percent-escapes also the target with HubSpot's listed escapes decoded (its v3 rule,
        below); the target as sent stays first, as signing libraries send it."""
        paths = (self.path,)
        decoded = _SIGNED_ESCAPE.sub(lambda m: _SIGNED_DECODED[m.group(0).upper()], self.path)
        if decoded != self.path:
            paths += (decoded,)
        return tuple(f"{scheme}://{self.host}{path}" for path in paths for scheme in ("https", "http"))


#: HubSpot's v3 signature is computed over the URI with these escapes decoded ("Decode
#: any URL-encoded characters listed in the following table in the requestUri",
#: developers.hubspot.com, validating requests); its own Python client signs the URI as
#: given. Both are accepted: the secret still has to match, so no forgery is made easier.
_SIGNED_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                   "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_SIGNED_ESCAPE = re.compile("|".join(_SIGNED_DECODED), re.IGNORECASE)


class Verifier(Protocol):
    method: str

    @property
    def configured(self) -> bool: ...

    def check(self, headers: Mapping[str, str], body: bytes, target: Target | None = None) -> Failure | str:
        """The label of the credential that passed, or why none did."""


def same(a: str, b: str) -> bool:
    """Constant-time equality for text that may not be ASCII."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def first_equal(provided: str, candidates: Iterable[tuple[str, str]]) -> str | None:
    """The label of the first (label, value) equal to `provided`: the one token comparison
    of the service. Every entry is compared (no early exit: each costs the same)."""
    found = None
    for label, candidate in candidates:
        if same(provided, candidate) and found is None:
            found = label
    return found


def any_equal(provided: str, candidates: Iterable[str]) -> bool:
    return first_equal(provided, (("", candidate) for candidate in candidates)) is not None


class HmacSignature:
    """An HMAC of the raw body in a header: hex (Freshdesk relays, `sha256=` prefix accepted)
    or base64 (Help Scout's SHA-1)."""

    method = "hmac"

    def __init__(self, header: str, secrets: Labelled, digest: str = "sha256", encoding: str = "hex") -> None:
        self.header = header
        self.encoding = encoding
        self.prefix = f"{digest}="
        self._keys = tuple((label, hmac.new(s.encode("utf-8"), digestmod=getattr(hashlib, digest)))
                           for label, s in secrets)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[str, str], body: bytes, target: Target | None = None) -> Failure | str:
        provided = headers.get(self.header, "").strip()
        if not provided:
            return Failure("missing", f"Missing {self.header} header")
        if provided[:len(self.prefix)].lower() == self.prefix:
            provided = provided[len(self.prefix):]
        expected = []
        for label, key in self._keys:
            mac = key.copy()
            mac.update(body)
            expected.append((label, mac.hexdigest() if self.encoding == "hex"
                             else base64.b64encode(mac.digest()).decode()))
        matched = first_equal(provided.lower() if self.encoding == "hex" else provided, expected)
        return matched if matched is not None else Failure("bad_signature", f"{self.header} does not match the request body")


class HeaderToken:
    """A shared secret sent as is in a header (Sunshine Conversations' `X-API-Key`): no
    signature, so a captured request can be replayed; only for what a vendor offers no
    better for (Sunshine's webhooks, which the service answers `ignored` anyway)."""

    method = "token"

    def __init__(self, header: str, secrets: Labelled) -> None:
        self.header = header
        self._secrets = secrets

    @property
    def configured(self) -> bool:
        return bool(self._secrets)

    def check(self, headers: Mapping[str, str], body: bytes, target: Target | None = None) -> Failure | str:
        provided = headers.get(self.header, "").strip()
        if not provided:
            return Failure("missing", f"Missing {self.header} header")
        matched = first_equal(provided, self._secrets)
        return matched if matched is not None else Failure("bad_credentials", f"{self.header} is not a configured key")


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None when it is not one."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


class BasicCredentials:
    """HTTP Basic user:password; Freshdesk rules and Zendesk webhooks send it natively."""

    method = "basic"

    def __init__(self, credentials: tuple[tuple[str, tuple[str, str]], ...]) -> None:
        """`credentials`: (label, (user, password))."""
        self._credentials = credentials

    @property
    def configured(self) -> bool:
        return bool(self._credentials)

    def check(self, headers: Mapping[str, str], body: bytes, target: Target | None = None) -> Failure | str:
        header = headers.get("Authorization")
        if not header:
            return Failure("missing", "Missing Authorization header")
        sent = basic_credentials(header)
        if sent is None:
            return Failure("malformed", "Malformed Authorization header: expected HTTP Basic credentials")
        found = None
        for label, (user, password) in self._credentials:  # every pair compared, both halves
            if same(sent[0], user) & same(sent[1], password) and found is None:
                found = label
        return found if found is not None else Failure("bad_credentials", "Invalid credentials")


#: How a timestamped signature lays out what it signs, and how its timestamp is written:
#: layout -> (timestamp format, parts in order). "stamp" is the timestamp header's text
#: as sent, "body" the raw body, "method" and "uri" the request's (Target).
LAYOUTS = {
    "stamp+body": ("iso", ("stamp", "body")),  # Zendesk: ISO-8601, no separator
    "stamp:body": ("ms", ("stamp", b":", "body")),  # Front: Unix milliseconds, a colon
    "method+uri+body+stamp": ("ms", ("method", "uri", "body", "stamp")),  # HubSpot v3: Unix ms
}


def _moment(stamp: str, kind: str) -> float | None:
    """The timestamp header's time in Unix seconds, or None when it is not one."""
    if kind == "ms":
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 16:
            return None
        return int(stamp) / 1000
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):  # a year no clock reaches
        return float("inf")


class TimestampedSignature:
    """base64(HMAC-SHA256(secret, what the layout signs)) with the timestamp in its own
    header: Zendesk's native signature (timestamp + raw body), Front's application
    webhooks (`<ms>:<raw body>`) and HubSpot's v3 (method + URI + body + ms). The key is
    the secret string as is (not base64-decoded), and a timestamp further than
    `tolerance` seconds from now is refused, so a captured request cannot be replayed
    later."""

    method = "signature"

    def __init__(self, header: str, timestamp_header: str, secrets: Labelled, tolerance: int,
                 clock: Callable[[], float] = time.time, layout: str = "stamp+body") -> None:
        self.header = header
        self.timestamp_header = timestamp_header
        self._keys = tuple((label, hmac.new(s.encode("utf-8"), digestmod=hashlib.sha256)) for label, s in secrets)
        self.tolerance = tolerance
        self._clock = clock
        self._format, self._parts = LAYOUTS[layout]

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def _messages(self, stamp: str, body: bytes, target: Target | None) -> list[list[bytes]]:
        """Each message this request may have been signed as (one per URI it may have had)."""
        target = target or Target()
        uris = target.uris if "uri" in self._parts else ("",)
        values = {"stamp": stamp.encode("utf-8"), "body": body, "method": target.method.encode("ascii", "replace")}
        return [[part if isinstance(part, bytes) else uri.encode("utf-8", "surrogateescape") if part == "uri"
                 else values[part] for part in self._parts] for uri in uris]

    def check(self, headers: Mapping[str, str], body: bytes, target: Target | None = None) -> Failure | str:
        provided = headers.get(self.header, "").strip()
        stamp = headers.get(self.timestamp_header, "").strip()
        if not provided or not stamp:
            absent = [name for name, value in ((self.header, provided), (self.timestamp_header, stamp)) if not value]
            return Failure("missing", f"Missing {' and '.join(absent)} header{'s' if len(absent) > 1 else ''}")
        moment = _moment(stamp, self._format)
        if moment is None:
            written = "Unix milliseconds" if self._format == "ms" else "an ISO-8601 timestamp"
            return Failure("malformed", f"{self.timestamp_header} is not {written}")
        expected = []
        for message in self._messages(stamp, body, target):
            for label, key in self._keys:
                mac = key.copy()
                for part in message:
                    mac.update(part)
                expected.append((label, base64.b64encode(mac.digest()).decode("ascii")))
        matched = first_equal(provided, expected)
        if matched is None:
            return Failure("bad_signature", f"{self.header} does not match the request")
        if abs(self._clock() - moment) > self.tolerance:
            return Failure("stale_timestamp", f"{self.timestamp_header} is more than {self.tolerance} seconds from now")
        return matched

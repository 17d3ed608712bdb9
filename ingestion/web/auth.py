"""Webhook authentication: verifiers for each method of SPEC 3 and the decorator views wear.

Every verifier works on the raw body bytes, before anything parses them, and compares
with `hmac.compare_digest` against *every* configured secret (so rotation lists do not
leak which entry matched through timing). A vendor passes when any configured method
passes. With nothing configured, development accepts the call and production refuses
it: production never takes an unauthenticated webhook.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, current_app, request
from werkzeug.datastructures import Authorization

from ..errors import Unauthorized
from ..metrics import AUTH_FAILURES
from .requests import raw_body

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

EXTENSION = "ingestion.auth"


@dataclass(frozen=True)
class Failure:
    reason: str  # a short label for metrics: missing, malformed, bad_signature, ...
    message: str


class Verifier(Protocol):
    method: str

    @property
    def configured(self) -> bool: ...

    def check(self, headers: Mapping[str, str], body: bytes) -> Failure | None:
        """None when the request passes."""


def _same(a: str, b: str) -> bool:
    """Constant-time equality for text that may not be ASCII."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _any_equal(provided: str, candidates: Iterable[str]) -> bool:
    matched = False
    for candidate in candidates:  # no early exit: every entry costs the same
        matched |= _same(provided, candidate)
    return matched


class HmacSignature:
    """Hex HMAC-SHA256 of the raw body in a header; a `sha256=` prefix is accepted."""

    method = "hmac"

    def __init__(self, header: str, secrets: tuple[str, ...]) -> None:
        self.header = header
        self._keys = tuple(hmac.new(s.encode("utf-8"), digestmod=hashlib.sha256) for s in secrets)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[str, str], body: bytes) -> Failure | None:
        provided = headers.get(self.header, "").strip()
        if not provided:
            return Failure("missing", f"Missing {self.header} header")
        if provided[:7].lower() == "sha256=":
            provided = provided[7:]
        expected = []
        for key in self._keys:
            mac = key.copy()
            mac.update(body)
            expected.append(mac.hexdigest())
        if _any_equal(provided.lower(), expected):
            return None
        return Failure("bad_signature", f"{self.header} does not match the request body")


class BasicCredentials:
    """HTTP Basic user:password; Freshdesk rules and Zendesk webhooks send it natively."""

    method = "basic"

    def __init__(self, credentials: tuple[tuple[str, str], ...]) -> None:
        self._credentials = credentials

    @property
    def configured(self) -> bool:
        return bool(self._credentials)

    def check(self, headers: Mapping[str, str], body: bytes) -> Failure | None:
        header = headers.get("Authorization")
        if not header:
            return Failure("missing", "Missing Authorization header")
        try:
            auth = Authorization.from_header(header)
        except (ValueError, UnicodeError):  # werkzeug lets base64 errors on non-ASCII escape
            auth = None
        if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
            return Failure("malformed", "Malformed Authorization header: expected HTTP Basic credentials")
        matched = False
        for user, password in self._credentials:
            matched |= _same(auth.username, user) & _same(auth.password, password)
        return None if matched else Failure("bad_credentials", "Invalid credentials")


class ZendeskSignature:
    """Zendesk's native signature: base64(HMAC-SHA256(secret, timestamp + raw body)).

    The key is the signing secret string as is (not base64-decoded) and the timestamp
    and body are joined with no separator. A timestamp further than `tolerance` seconds
    from now is refused so a captured request cannot be replayed later.
    """

    method = "signature"
    SIGNATURE = "X-Zendesk-Webhook-Signature"
    TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"

    def __init__(self, secrets: tuple[str, ...], tolerance: int, clock: Callable[[], float] = time.time) -> None:
        self._keys = tuple(hmac.new(s.encode("utf-8"), digestmod=hashlib.sha256) for s in secrets)
        self.tolerance = tolerance
        self._clock = clock

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[str, str], body: bytes) -> Failure | None:
        provided = headers.get(self.SIGNATURE, "").strip()
        stamp = headers.get(self.TIMESTAMP, "").strip()
        if not provided or not stamp:
            return Failure("missing", f"Missing {self.SIGNATURE} or {self.TIMESTAMP} header")
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return Failure("malformed", f"{self.TIMESTAMP} is not an ISO-8601 timestamp")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        expected = []
        for key in self._keys:
            mac = key.copy()
            mac.update(stamp.encode("utf-8"))
            mac.update(body)
            expected.append(base64.b64encode(mac.digest()).decode("ascii"))
        if not _any_equal(provided, expected):
            return Failure("bad_signature", f"{self.SIGNATURE} does not match the request")
        if abs(self._clock() - moment.timestamp()) > self.tolerance:
            return Failure("stale_timestamp",
                           f"{self.TIMESTAMP} is more than {self.tolerance} seconds from now")
        return None


class WebhookAuth:
    """The configured verifiers of one vendor, and the decision over them."""

    def __init__(self, vendor: str, verifiers: Iterable[Verifier], development: bool) -> None:
        self.vendor = vendor
        self.verifiers = tuple(v for v in verifiers if v.configured)
        self.development = development

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(v.method for v in self.verifiers)

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the method that passed, or raise Unauthorized with the most telling reason."""
        if not self.verifiers:
            if self.development:
                return "none"
            raise Unauthorized(f"Webhook authentication is not configured for {self.vendor}", "not_configured")
        failures = []
        for verifier in self.verifiers:
            failure = verifier.check(headers, body)
            if failure is None:
                return verifier.method
            failures.append(failure)
        # A credential that was sent and is wrong says more than another that is absent.
        telling = next((f for f in failures if f.reason != "missing"), None)
        if telling is None:
            expected = " or ".join(v.method for v in self.verifiers)
            telling = Failure("missing", f"Missing webhook authentication (expected: {expected})")
        raise Unauthorized(telling.message, telling.reason)

    def log_posture(self) -> None:
        """Say at start-up how this vendor authenticates (never the secrets themselves)."""
        if self.verifiers:
            log.info("webhook authentication configured", extra={"vendor": self.vendor, "methods": list(self.methods)})
        elif self.development:
            log.warning("no webhook authentication configured: development mode accepts unauthenticated "
                        "requests", extra={"vendor": self.vendor})
        else:
            log.error("no webhook authentication configured: every request will be answered 401",
                      extra={"vendor": self.vendor})


def guards_for(settings: "Settings") -> dict[str, WebhookAuth]:
    """Each vendor's WebhookAuth, from the verifiers its module declares."""
    from ..vendors import all_vendors

    return {v.name: WebhookAuth(v.name, v.authentication(settings), settings.development) for v in all_vendors()}


def log_posture(settings: "Settings") -> None:
    """Called once by the gunicorn master (not once per worker)."""
    for guard in guards_for(settings).values():
        guard.log_posture()
    for warning in settings.warnings:  # development only: production refuses to start
        log.warning("weak credential accepted in development: %s", warning)


def init_app(app: Flask, settings: "Settings") -> None:
    app.extensions[EXTENSION] = guards_for(settings)


def authenticated(vendor: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: verify the raw body for `vendor` before the view runs.

    Reading the body enforces MAX_CONTENT_LENGTH (413) before any HMAC work. The wrapper is
    marked with `webhook_auth` so a test can prove no webhook route ships without it.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            guard: WebhookAuth = current_app.extensions[EXTENSION][vendor]
            try:
                guard.verify(request.headers, raw_body())
            except Unauthorized as refused:
                AUTH_FAILURES.labels(vendor, refused.reason).inc()
                log.info("webhook authentication failed", extra={"vendor": vendor, "reason": refused.reason})
                raise
            return view(*args, **kwargs)

        guarded.webhook_auth = vendor  # type: ignore[attr-defined]
        return guarded

    return decorate

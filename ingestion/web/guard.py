"""The authentication guard on each vendor's webhook routes.

The app factory builds one `Guard` per vendor and hands it to that vendor's blueprint,
which wears `authenticated(guard)`: the request's source is resolved from its URL
(ingestion/sources.py), and the raw body is verified with that source's credentials
before anything parses it. A source passes when any of its configured methods passes.
With nothing configured, development accepts the call and production refuses it:
production never takes an unauthenticated webhook. This module knows no vendor by name.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import g, request

from ..errors import ApiError, Unauthorized
from ..metrics import AUTH_FAILURES, child
from ..sources import Source
from ..verifiers import Failure, Target, Verifier
from .request_context import raw_body, sent_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    method: str  # hmac | signature | basic | none (development without credentials)
    credential: str | None  # the label of the credential that passed (`signing:trigger`)


class Guard:
    """The decision over a source's verifiers, for one vendor's routes."""

    def __init__(self, vendor: str, development: bool) -> None:
        self.vendor = vendor
        self.development = development

    def verify(self, verifiers: Iterable[Verifier], headers: Mapping[str, str], body: bytes,
               what: str | None = None, target: Target | None = None) -> Verified:
        """The method and credential that passed, or Unauthorized with the most telling reason."""
        configured = [v for v in verifiers if v.configured]
        if not configured:
            if self.development:
                return Verified("none", None)
            raise Unauthorized(f"Webhook authentication is not configured for {what or self.vendor}", "not_configured",
                               self.challenge(()))
        failures = []
        for verifier in configured:
            result = verifier.check(headers, body, target)
            if not isinstance(result, Failure):
                return Verified(verifier.method, result)
            failures.append(result)
        # A credential that was sent and is wrong says more than another that is absent.
        telling = next((f for f in failures if f.reason != "missing"), None)
        if telling is None:
            # Each verifier says what it lacked: two may share a header (Front's app and rule
            # signatures are both X-Front-Signature), so "missing" alone would mislead.
            expected = " or ".join(v.method for v in configured)
            lacking = "; ".join(dict.fromkeys(f.message for f in failures))
            telling = Failure("missing", f"Missing webhook authentication (expected: {expected}): {lacking}")
        raise Unauthorized(telling.message, telling.reason, self.challenge(v.method for v in configured))

    def challenge(self, methods: Iterable[str]) -> str:
        """WWW-Authenticate, which every 401 carries (RFC 9110): Basic where a source takes
        it, so a client that sends credentials only when challenged (wget, Java's
        Authenticator, .NET's NetworkCredential) sends them; else the signature the vendor
        computes."""
        realm = f'realm="{self.vendor} webhooks"'
        methods = set(methods)  # (Basic first: a client may read the first challenge only)
        schemes = ([f'Basic {realm}, charset="UTF-8"'] if "basic" in methods else []) + \
                  ([f"Signature {realm}"] if methods - {"basic"} or not methods else [])
        return ", ".join(schemes)

    def log_posture(self, verifiers: Iterable[Verifier]) -> None:
        """Say at start-up how the vendor's default source authenticates (never the secrets)."""
        methods = [v.method for v in verifiers if v.configured]
        if methods:
            log.info("webhook authentication configured", extra={"vendor": self.vendor, "methods": methods})
        elif self.development:
            log.warning("no webhook authentication configured: development mode accepts unauthenticated "
                        "requests", extra={"vendor": self.vendor})
        else:
            # An error, as SPEC 3 asks: a vendor whose webhooks all answer 401 is what an
            # operator must see at start, even when sources may serve its accounts.
            log.error("no webhook authentication configured: the bare URL answers 401; sources "
                      "(python -m ingestion sources add) serve /webhook/<vendor>/<account>",
                      extra={"vendor": self.vendor})


def request_target(environ: Mapping[str, Any]) -> Target:
    """The request's method, host and target as sent (still percent-encoded: gunicorn's
    RAW_URI; rebuilt from the path and query elsewhere), for a signature that covers them."""
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not path:
        query = environ.get("QUERY_STRING")
        path = quote(environ.get("PATH_INFO", "/"), safe="/;=,@:+$!*'()~") + (f"?{query}" if query else "")
    return Target(environ.get("REQUEST_METHOD", "POST"), environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
                  path)


def _verified(guard: Guard, source: Source) -> Any:
    """The body's credentials checked over the body; for a compressed one, over the bytes
    as sent as well, since a sender may sign either (request_context.sent_body)."""
    args = (source.name if source.stored else None, request_target(request.environ))
    body = raw_body()
    try:
        return guard.verify(source.verifiers, request.headers, body, *args)
    except Unauthorized:
        sent = sent_body()
        if sent is body:
            raise
        return guard.verify(source.verifiers, request.headers, sent, *args)


def authenticated(guard: Guard, resolve: Callable[[str | None], Source]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: resolve the request's source (`resolve(url account)`), verify the
    raw body with its credentials before the view runs, and leave the source in
    `g.source`, the method that passed in `g.auth_method` ("none": development without
    credentials) and the credential's label in `g.credential`.

    Reading the body enforces MAX_BODY_BYTES (413) before any HMAC work. The wrapper is
    marked with `webhook_auth` so a test can prove no webhook route ships without it.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                source = resolve(kwargs.get("account"))
                verified = _verified(guard, source)
            except ApiError as refused:
                reason = getattr(refused, "reason", None)
                if reason is not None and refused.status < 500:
                    child(AUTH_FAILURES, guard.vendor, reason).inc()
                    log.info("webhook authentication failed", extra={"vendor": guard.vendor, "reason": reason})
                raise
            g.source, g.auth_method, g.credential = source, verified.method, verified.credential
            return view(*args, **kwargs)

        guarded.webhook_auth = guard.vendor  # type: ignore[attr-defined]
        return guarded

    return decorate

"""The authentication guard on each vendor's webhook routes.

The app factory builds one `Guard` per vendor from the verifiers the vendor declares
(ingestion/vendor.py, ingestion/verifiers.py) and hands it to that vendor's blueprint,
which wears `authenticated(guard)`: the raw body is verified before anything parses it.
A vendor passes when any configured method passes. With nothing configured,
development accepts the call and production refuses it: production never takes an
unauthenticated webhook. This module knows no vendor by name.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import g, request

from ..errors import Unauthorized
from ..metrics import AUTH_FAILURES, child
from ..verifiers import Failure, Verifier
from .request_context import raw_body

log = logging.getLogger(__name__)


class Guard:
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


def authenticated(guard: Guard) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: verify the raw body with `guard` before the view runs, and leave
    the method that passed in `g.auth_method` ("none": development without credentials).

    Reading the body enforces MAX_BODY_BYTES (413) before any HMAC work. The wrapper is
    marked with `webhook_auth` so a test can prove no webhook route ships without it.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                g.auth_method = guard.verify(request.headers, raw_body())
            except Unauthorized as refused:
                child(AUTH_FAILURES, guard.vendor, refused.reason).inc()
                log.info("webhook authentication failed", extra={"vendor": guard.vendor, "reason": refused.reason})
                raise
            return view(*args, **kwargs)

        guarded.webhook_auth = guard.vendor  # type: ignore[attr-defined]
        return guarded

    return decorate

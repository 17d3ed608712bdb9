"""Per-client-IP rate limiting, by flask-limiter, and the 429 that tells a client when to come back.

The limit is a moving window of `burst` requests per `window` seconds, with burst = 10%
of RATE_LIMIT_PER_MINUTE (at least 1) and window = 60 x burst / rate (rounded up to whole
seconds): from a standing start the first `burst` requests of an IP pass and the next is
429 (at the default 100/min: 10 pass, the 11th is refused), and no `window` seconds ever
hold more than `burst` requests, so no minute holds more than the sustained rate.

flask-limiter does the limiting, through its extension points: a shared limit per scope
(every webhook route counts in one budget per IP, the read APIs in another), our own
`limits` storage (ingestion/rate_window.py: one Lua call per hit, on Redis behind the
circuit breaker, in process memory while Redis cannot answer, and the duplicate fast
path's lookup riding on the same call), `on_breach` for the metric, and its current
limit for the headers. Its own header writer is off: it sets Retry-After on every answer
(and raises a 503's own Retry-After to the window's), where ours sets it on a 429 only,
never below 1 s. docs/performance.md has what it costs.

The client IP is the socket peer, unless TRUSTED_PROXY_COUNT=N: then ProxyFix takes the
N-th entry from the right of X-Forwarded-For, the one our own proxy appended. Entries a
client wrote itself sit further left and are never read, so no header escapes the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from flask.wrappers import Response
from flask_limiter import Limiter, RequestLimit
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from ..duplicates import Prefetched
from ..metrics import RATE_LIMITED, child
from ..rate_window import GuardedMovingWindowStorage
from ..redis_guard import GuardedRedis
from .request_context import endpoint_label

SCOPE = "webhooks"  # one budget per IP across every webhook route
STATUS_CODES_WITH_RETRY_AFTER = (429,)


def limit_for(rate_per_minute: int) -> str:
    """The moving-window limit (in the `limits` notation) implementing rate + 10% burst."""
    burst = max(1, rate_per_minute // 10)
    window = math.ceil(60 * burst / rate_per_minute)
    return f"{burst} per {window} second"


def _client() -> str:
    return request.remote_addr or "unknown"


def _prefetch_key() -> str | None:
    """The duplicate-cache key of this request, when its view declared how to find it."""
    view = current_app.view_functions.get(request.endpoint or "")
    prefetch = getattr(view, "prefetch", None)
    return prefetch() if prefetch is not None else None


def _keep(fetched: Prefetched) -> None:
    g.prefetched = fetched


def _count(limit: RequestLimit) -> None:
    child(RATE_LIMITED, endpoint_label()).inc()


class RateLimit:
    """The `rate_limited` view decorator: flask-limiter's shared limit of one scope."""

    def __init__(self, limiter: Limiter, limit: str, scope: str = SCOPE) -> None:
        self.limiter, self.limit, self.scope = limiter, limit, scope
        self._shared = limiter.shared_limit(limit, scope=scope)

    def for_scope(self, scope: str) -> "RateLimit":
        """The same limit counted separately (the read API's reads do not use up a
        vendor's budget for webhooks from the same address)."""
        return RateLimit(self.limiter, self.limit, scope)

    def __call__(self, view: Callable[..., Any], prefetch: Callable[[], str | None] | None = None
                 ) -> Callable[..., Any]:
        """`prefetch`: the request's duplicate-cache key (ingestion/duplicates.py), read in
        the same Redis call as the limit and left in `g.prefetched` for the view."""
        limited = self._shared(view)
        limited.prefetch = prefetch  # type: ignore[attr-defined]
        return limited


def _quota_headers(limiter: Limiter) -> Callable[[Response], Response]:
    def add(response: Response) -> Response:
        current = limiter.current_limit
        if current is None:
            return response
        reset, remaining = current.window
        response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(max(0, remaining))
        response.headers["X-RateLimit-Reset"] = str(math.ceil(reset))
        if response.status_code in STATUS_CODES_WITH_RETRY_AFTER:
            # When the oldest request leaves the window; never 0, which invites a storm.
            response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
        return response

    return add


def init_app(app: Flask, settings: Settings, guarded: GuardedRedis | None) -> RateLimit:
    """Install client-IP resolution, flask-limiter and the quota headers; return the
    `rate_limited` decorator (no Redis configured: counted per process)."""
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    shared = {"storage_uri": "memory://"}
    if guarded is not None:
        shared = {"storage_uri": GuardedMovingWindowStorage.STORAGE_SCHEME[0] + "://",
                  "storage_options": {"guarded": guarded, "companion": _prefetch_key, "deliver": _keep}}
    limiter = Limiter(_client, app=app, strategy="moving-window", headers_enabled=False, on_breach=_count,
                      in_memory_fallback_enabled=False, swallow_errors=False, **shared)
    app.after_request(_quota_headers(limiter))
    return RateLimit(limiter, limit_for(settings.rate_limit_per_minute))

"""Per-client-IP rate limiting, and the 429 that tells a client when to come back.

Why it works this way: docs/design.md, "Rate limiting".
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, g, request
from flask.wrappers import Response
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from ..errors import RateLimited
from ..metrics import RATE_LIMITED, child
from ..rate_window import GuardedMovingWindowStorage, Hit
from ..redis_guard import GuardedRedis
from .request_context import endpoint_label

SCOPE = "webhooks"  # one counter per IP across every webhook route
MAX_RETRY_AFTER = 59


def limit_for(rate_per_minute: int) -> str:
    """The moving-window limit (in the `limits` notation) implementing rate + 10% burst."""
    burst = max(1, rate_per_minute // 10)
    window = math.ceil(60 * burst / rate_per_minute)
    return f"{burst} per {window} second"


class RateLimit:
    """The `rate_limited` view decorator: one moving-window hit per request, per client IP,
    per scope. The window the storage returns with the hit answers the X-RateLimit-*
    headers, so the limit costs one Redis round trip."""

    def __init__(self, strategy: MovingWindowRateLimiter, limit: str, scope: str = SCOPE) -> None:
        self.strategy = strategy
        self.item = parse(limit)
        self.scope = scope

    def for_scope(self, scope: str) -> "RateLimit":
        """The same limit counted separately (the read API's reads do not use up a
        vendor's budget for webhooks from the same address)."""
        return RateLimit(self.strategy, str(self.item), scope)

    def hit(self, client: str, fetch: str | None = None) -> Hit:
        """Count one request of `client`; read `fetch` in the same Redis call."""
        storage = self.strategy.storage
        if isinstance(storage, GuardedMovingWindowStorage):
            return storage.acquire_and_fetch(self.item.key_for(client, self.scope), self.item.amount,
                                             self.item.get_expiry(), fetch)
        acquired = self.strategy.hit(self.item, client, self.scope)  # no Redis configured: memory
        resets_at, remaining = self.strategy.get_window_stats(self.item, client, self.scope)
        return Hit(acquired, resets_at, self.item.amount - remaining, None)

    def __call__(self, view: Callable[..., Any], prefetch: Callable[[], str | None] | None = None
                 ) -> Callable[..., Any]:
        """`prefetch`: the request's duplicate-cache key (ingestion/duplicates.py), read in
        the same Redis call as the limit and left in `g.prefetched` for the view."""
        limit = str(self.item.amount)
        fetching = prefetch is not None and isinstance(self.strategy.storage, GuardedMovingWindowStorage)

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            hit = self.hit(request.remote_addr or "unknown", prefetch() if fetching else None)
            headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": str(max(0, self.item.amount - hit.count)),
                       "X-RateLimit-Reset": str(math.ceil(hit.resets_at))}
            if not hit.acquired:
                child(RATE_LIMITED, endpoint_label()).inc()
                # When the oldest request leaves the window; never 0, which invites a storm,
                # and never past 59 s: Zendesk retries a 429 only when it says under 60 (at
                # the lowest rate the window is 60 s; a retry a second early meets a short 429).
                retry_after = min(MAX_RETRY_AFTER, max(1, math.ceil(hit.resets_at - time.time())))
                raise RateLimited(headers={**headers, "Retry-After": str(retry_after)})
            g.rate_limit_headers = headers
            g.prefetched = hit.prefetched
            return view(*args, **kwargs)

        return limited


def _add_quota_headers(response: Response) -> Response:
    response.headers.update(g.get("rate_limit_headers", {}))
    return response


def init_app(app: Flask, settings: Settings, guarded: GuardedRedis | None) -> RateLimit:
    """Install client-IP resolution and the quota headers; return the `rate_limited`
    decorator (no Redis configured: counted per process)."""
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    storage = GuardedMovingWindowStorage(guarded) if guarded is not None else MemoryStorage()
    app.after_request(_add_quota_headers)
    return RateLimit(MovingWindowRateLimiter(storage), limit_for(settings.rate_limit_per_minute))

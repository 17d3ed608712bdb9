"""Per-client-IP rate limiting: flask-limiter, counters in Redis behind the breaker.

The algorithm is a moving window of `burst` requests per `window` seconds, with
burst = 10% of RATE_LIMIT_PER_MINUTE (at least 1) and window = 60 x burst / rate
(rounded up to whole seconds, the unit of the `limits` library). It gives exactly the
two promises of SPEC 6:
- from a standing start the first `burst` requests of an IP pass and the next is 429
  (at the default 100/min: 10 pass, the 11th is refused);
- no `window` seconds ever hold more than `burst` requests, so no minute holds more than
  the sustained rate.
The 429 carries Retry-After (when the oldest request leaves the window) and X-RateLimit-*
headers. Counters live in Redis, so the limit holds across workers and instances. When
Redis is unreachable or the breaker is open, the storage counts in this process's memory
instead (the same limit, per process) and returns to Redis as soon as the breaker closes;
a webhook is never refused, or slowed, because Redis is down. (flask-limiter's own
in-memory fallback is not used: it rechecks Redis on a back-off of up to 32 s and knows
nothing of the breaker.)

The client IP is the socket peer, unless TRUSTED_PROXY_COUNT=N: then ProxyFix takes the
N-th entry from the right of X-Forwarded-For, the one our own proxy appended. Entries a
client wrote itself sit further left and are never read, so no header escapes the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, request
from flask.wrappers import Response
from flask_limiter import Limiter
from limits.storage import MemoryStorage, RedisStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from ..metrics import RATE_LIMITED
from ..redis_guard import GuardedRedis, RedisUnavailable
from .requests import endpoint_label

SCOPE = "webhooks"  # one counter per IP across every webhook route
STORAGE_SCHEME = "ingestion+redis"


def limit_for(rate_per_minute: int) -> str:
    """The moving-window limit (in the `limits` notation) implementing rate + 10% burst."""
    burst = max(1, rate_per_minute // 10)
    window = math.ceil(60 * burst / rate_per_minute)
    return f"{burst} per {window} second"


class GuardedRedisStorage(RedisStorage):
    """flask-limiter's Redis storage, every call through the `redis` breaker, with this
    process's memory standing in whenever Redis cannot answer."""

    STORAGE_SCHEME = [STORAGE_SCHEME]

    def __init__(self, uri: str, guarded: GuardedRedis, **options: Any) -> None:
        self.guarded = guarded
        self.fallback = MemoryStorage()
        super().__init__("redis://", connection_pool=guarded.client.connection_pool, key_prefix="ingestion:limits")

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (RedisUnavailable, redis.RedisError)

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return self.guarded.call("rate_limit", lambda _client: getattr(RedisStorage, name)(self, *args))
        except RedisUnavailable:
            return getattr(self.fallback, name)(*args)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self._call("acquire_entry", key, limit, expiry, amount)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self._call("get_moving_window", key, limit, expiry)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def clear(self, key: str) -> None:
        return self._call("clear", key)

    def check(self) -> bool:
        return True  # always usable: Redis, or memory while Redis is away


def _count_breach(_limit: object) -> None:
    RATE_LIMITED.labels(endpoint_label()).inc()


def _tidy_retry_after(response: Response) -> Response:
    """flask-limiter adds Retry-After to every response and rounds it down. Keep it where it
    means something (429, 503) and never let it say 0, which invites an immediate retry."""
    value = response.headers.get("Retry-After")
    if value is None:
        return response
    if response.status_code not in (429, 503):
        del response.headers["Retry-After"]
    elif value.isdigit():
        response.headers["Retry-After"] = str(max(1, int(value)))
    return response


def init_app(app: Flask, settings: Settings, guarded: GuardedRedis | None) -> Callable[[Callable], Callable]:
    """Install client-IP resolution and the limiter; return the `rate_limited` decorator."""
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    app.after_request(_tidy_retry_after)  # registered before the limiter's hook, so it runs after it

    limit = limit_for(settings.rate_limit_per_minute)
    if guarded is not None:
        storage = {"storage_uri": f"{STORAGE_SCHEME}://", "storage_options": {"guarded": guarded}}
    else:
        storage = {"storage_uri": "memory://"}  # no Redis configured: per process
    limiter = Limiter(
        key_func=lambda: request.remote_addr or "unknown",
        strategy="moving-window",
        headers_enabled=True,
        swallow_errors=True,  # a limiter bug must not turn into a 500
        on_breach=_count_breach,
        key_prefix="",
        **storage,
    )
    limiter.init_app(app)
    app.extensions["ingestion.limiter"] = limiter
    return limiter.shared_limit(limit, scope=SCOPE)

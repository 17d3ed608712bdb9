"""Per-client-IP rate limiting: flask-limiter, counters in Redis behind the breaker.

The algorithm is a moving window of `burst` requests per `window` seconds, with
burst = 10% of RATE_LIMIT_PER_MINUTE (at least 1) and window = 60 x burst / rate
(rounded up to whole seconds, the unit of the `limits` library). It gives exactly the
two promises of SPEC 6:
- from a standing start the first `burst` requests of an IP pass and the next is 429
  (at the default 100/min: 10 pass, the 11th is refused);
- no `window` seconds ever hold more than `burst` requests, so no minute holds more than
  the sustained rate.
The 429 carries Retry-After (when the oldest request leaves the window, at least 1 s) and
X-RateLimit-* headers, which successful webhook responses carry too. Counters live in Redis, so the limit holds across workers and instances. When
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

import functools
import itertools
import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, g, has_request_context, request
from flask.wrappers import Response
from flask_limiter import Limiter
from limits import parse
from limits.storage import MemoryStorage, MovingWindowSupport, Storage
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from ..errors import ApiError
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


# A moving window kept in a sorted set (score = arrival time): pruning, counting and
# adding are O(log n), unlike a list, whatever the limit. One call acquires *and* reports
# the window, so the X-RateLimit-* headers cost no second round trip. Time is Redis's own
# clock, so instances whose clocks disagree still share one exact window.
# KEYS[1] window; ARGV: limit, expiry seconds, amount, unique member prefix.
# Returns {acquired, seconds from now until the oldest entry leaves, count}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local key, limit, expiry, amount = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - expiry)
local count = redis.call('ZCARD', key)
local acquired = 0
if count + amount <= limit then
  for i = 1, amount do redis.call('ZADD', key, now, ARGV[4] .. ':' .. i) end
  count = count + amount
  acquired = 1
  redis.call('PEXPIRE', key, math.ceil(expiry * 1000))
end
local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or now)
return {acquired, tostring(oldest + expiry - now), count}
"""

# KEYS[1] window; ARGV: expiry seconds. Returns {seconds until the oldest leaves, count}.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local key, expiry = KEYS[1], tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - expiry)
local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or now)
return {tostring(oldest + expiry - now), redis.call('ZCARD', key)}
"""


class GuardedMovingWindowStorage(Storage, MovingWindowSupport):
    """flask-limiter's moving-window storage on Redis, every call through the `redis`
    breaker, with this process's memory standing in whenever Redis cannot answer."""

    STORAGE_SCHEME = [STORAGE_SCHEME]
    PREFIX = "ingestion:limits:"

    def __init__(self, uri: str, guarded: GuardedRedis, **options: Any) -> None:
        super().__init__(uri)
        self.guarded = guarded
        self.fallback = MemoryStorage()
        self._acquire = guarded.client.register_script(_ACQUIRE)
        self._window = guarded.client.register_script(_WINDOW)
        self._members = itertools.count()
        self._host = socket.gethostname()

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (RedisUnavailable, redis.RedisError)

    @staticmethod
    def _window_start(leaves_in: bytes, expiry: int) -> float:
        """The window's start on *our* clock (what flask-limiter's strategy expects), from
        Redis's "the oldest entry leaves in n seconds"."""
        return time.time() + float(leaves_in) - expiry

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        # Unique across hosts and processes (read at call time: the storage may have been
        # built before a fork), so no two arrivals ever share a sorted-set member.
        member = f"{self._host}:{os.getpid()}:{next(self._members)}"
        try:
            acquired, leaves_in, count = self.guarded.run_script(
                "rate_limit", self._acquire, [self.PREFIX + key], [limit, expiry, amount, member])
        except RedisUnavailable:
            return self.fallback.acquire_entry(key, limit, expiry, amount)
        if has_request_context():  # the headers of this response will ask for this window
            g.rate_limit_window = (key, (self._window_start(leaves_in, expiry), int(count)))
        return bool(acquired)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        cached = g.get("rate_limit_window") if has_request_context() else None
        if cached and cached[0] == key:
            return cached[1]
        try:
            leaves_in, count = self.guarded.run_script("rate_limit", self._window, [self.PREFIX + key], [expiry])
        except RedisUnavailable:
            return self.fallback.get_moving_window(key, limit, expiry)
        return self._window_start(leaves_in, expiry), int(count)

    def clear(self, key: str) -> None:
        try:
            self.guarded.call("rate_limit", lambda client: client.delete(self.PREFIX + key))
        except RedisUnavailable:
            pass
        self.fallback.clear(key)

    def check(self) -> bool:
        return True  # always usable: Redis, or memory while Redis is away

    def reset(self) -> int | None:
        raise NotImplementedError

    # The fixed-window half of the Storage interface; the moving window never calls it.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError

    def get(self, key: str) -> int:
        raise NotImplementedError

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError


class RateLimited(ApiError):
    status = 429
    default_message = "Rate limit exceeded. Please try again later."


class WebhookRateLimit:
    """The `rate_limited` view decorator: one moving-window hit per request, per client IP,
    shared by every webhook route.

    flask-limiter builds and owns the storage and the moving-window strategy; the decorator
    calls that strategy (`Limiter.limiter`) directly instead of going through
    flask-limiter's own decorator, whose per-request limit resolution, exemption checks
    and header injection cost about 0.5 ms of CPU per request, a sixth of a webhook
    (docs/performance.md). The window the storage returned with the hit answers the
    X-RateLimit-* headers, so the limit costs one Redis round trip.
    """

    def __init__(self, limiter: Limiter, limit: str, scope: str = SCOPE) -> None:
        self.limiter = limiter
        self.item = parse(limit)
        self.scope = scope

    def for_scope(self, scope: str) -> "WebhookRateLimit":
        """The same limit counted separately (the read API's reads do not use up a
        vendor's budget for webhooks from the same address)."""
        return WebhookRateLimit(self.limiter, str(self.item), scope)

    def __call__(self, view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            strategy, key = self.limiter.limiter, request.remote_addr or "unknown"
            allowed = strategy.hit(self.item, key, self.scope)
            reset, remaining = strategy.get_window_stats(self.item, key, self.scope)
            headers = {"X-RateLimit-Limit": str(self.item.amount), "X-RateLimit-Remaining": str(max(0, remaining)),
                       "X-RateLimit-Reset": str(math.ceil(reset))}
            if not allowed:
                RATE_LIMITED.labels(endpoint_label()).inc()
                # When the oldest request leaves the window; never 0, which invites a storm.
                retry_after = max(1, math.ceil(reset - time.time()))
                raise RateLimited(headers={**headers, "Retry-After": str(retry_after)})
            g.rate_limit_headers = headers
            return view(*args, **kwargs)

        return limited


def _add_quota_headers(response: Response) -> Response:
    response.headers.update(g.get("rate_limit_headers", {}))
    return response


def init_app(app: Flask, settings: Settings, guarded: GuardedRedis | None) -> WebhookRateLimit:
    """Install client-IP resolution and the limiter; return the `rate_limited` decorator."""
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    if guarded is not None:
        storage = {"storage_uri": f"{STORAGE_SCHEME}://", "storage_options": {"guarded": guarded}}
    else:
        storage = {"storage_uri": "memory://"}  # no Redis configured: per process
    limiter = Limiter(key_func=lambda: request.remote_addr or "unknown", strategy="moving-window", **storage)
    hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    kept = [list(registry[None]) for registry in hooks]
    limiter.init_app(app)
    # Limits are applied by WebhookRateLimit only. flask-limiter's own request hooks (a
    # before_request pass over default and application limits, of which there are none;
    # header injection and context clean-up for its decorators, which are not used) would
    # cost every request and do nothing, so they are taken out again.
    for registry, functions in zip(hooks, kept):
        registry[None] = functions
    app.after_request(_add_quota_headers)
    app.extensions["ingestion.limiter"] = limiter
    return WebhookRateLimit(limiter, limit_for(settings.rate_limit_per_minute))

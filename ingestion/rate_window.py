"""The rate limit's counters: a moving window per client address in Redis, behind the
circuit breaker, and in this process's memory whenever Redis cannot answer.

A `limits` storage (the library flask-limiter is built on), so the `limits` moving-window
strategy runs on it unchanged (web/rate_limit.py). Redis down or the breaker open: the
same limit counts per process instead, and counting returns to Redis as soon as the
breaker closes; a webhook is never refused, or slowed, because Redis is down.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import time
from typing import NamedTuple

import redis
from limits.storage import MemoryStorage, MovingWindowSupport, Storage

from .duplicates import Prefetched
from .errors import RedisUnavailable
from .redis_guard import GuardedRedis, Script

# A moving window kept in a sorted set (score = arrival time): pruning, counting and
# adding are O(log n), unlike a list, whatever the limit. One call acquires *and* reports
# the window, so the X-RateLimit-* headers cost no second round trip. Time is Redis's own
# clock, so instances whose clocks disagree still share one exact window.
# KEYS[1] window, KEYS[2] (optional) a key to read in the same call (the duplicate fast
# path's entry: ingestion/duplicates.py); ARGV: limit, expiry seconds, amount, unique
# member prefix. Returns {acquired, seconds from now until the oldest entry leaves,
# count, the value at KEYS[2] or nil}.
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
local fetched = false
if KEYS[2] then fetched = redis.call('GET', KEYS[2]) end
return {acquired, tostring(oldest + expiry - now), count, fetched}
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


class Hit(NamedTuple):
    """One request counted against a window: whether it fits, when (epoch seconds, our
    clock) the oldest entry leaves, how many the window holds, and a prefetched value."""

    acquired: bool
    resets_at: float
    count: int
    prefetched: Prefetched | None


class GuardedMovingWindowStorage(Storage, MovingWindowSupport):
    """A `limits` moving-window storage on Redis, every call through the `redis` breaker,
    with this process's memory standing in whenever Redis cannot answer."""

    STORAGE_SCHEME = ["ingestion+redis"]
    PREFIX = "ingestion:limits:"

    def __init__(self, guarded: GuardedRedis) -> None:
        super().__init__("ingestion+redis://")
        self.guarded = guarded
        self.fallback = MemoryStorage()
        self._acquire = Script(_ACQUIRE)
        self._window = Script(_WINDOW)
        self._members = itertools.count()
        # Host, then a token of this storage: two storages in one process (two apps, as the
        # tests build) must not count one arrival each under the same member.
        self._host = f"{socket.gethostname()}:{secrets.token_hex(4)}"

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (RedisUnavailable, redis.RedisError)

    @staticmethod
    def _window_start(leaves_in: bytes, expiry: int) -> float:
        """The window's start on *our* clock (what the `limits` strategy expects), from
        Redis's "the oldest entry leaves in n seconds"."""
        return time.time() + float(leaves_in) - expiry

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire_and_fetch(key, limit, expiry, None, amount).acquired

    def acquire_and_fetch(self, key: str, limit: int, expiry: int, fetch: str | None,
                          amount: int = 1) -> "Hit":
        """`acquire_entry`, the window as it stands afterwards (for the X-RateLimit-*
        headers), and the value at the key `fetch` (None when not asked; marked
        unavailable when Redis could not answer), all in one round trip (two on a cluster)."""
        # Unique across hosts and processes (read at call time: the storage may have been
        # built before a fork), so no two arrivals ever share a sorted-set member.
        member = f"{self._host}:{os.getpid()}:{next(self._members)}"
        # On a cluster the window and the entry live in different slots, and a script may
        # touch one slot only: the entry is read by a second call.
        together = fetch is not None and not self.guarded.cluster
        keys = [self.PREFIX + key, fetch] if together else [self.PREFIX + key]
        try:
            acquired, leaves_in, count, fetched = self.guarded.run_script(
                "rate_limit", self._acquire, keys, [limit, expiry, amount, member])
        except RedisUnavailable:
            acquired = self.fallback.acquire_entry(key, limit, expiry, amount)
            start, count = self.fallback.get_moving_window(key, limit, expiry)
            return Hit(acquired, start + expiry, int(count),
                       None if fetch is None else Prefetched(fetch, None, available=False))
        prefetched = None if fetch is None else Prefetched(fetch, fetched)
        if fetch is not None and not together:
            try:
                prefetched = Prefetched(fetch, self.guarded.run_command("duplicate_lookup", "GET", fetch))
            except RedisUnavailable:  # counted on Redis already; only the fast path is lost
                prefetched = Prefetched(fetch, None, available=False)
        return Hit(bool(acquired), time.time() + float(leaves_in), int(count), prefetched)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
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

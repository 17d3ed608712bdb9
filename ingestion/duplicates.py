"""The duplicate fast path: answer a redelivery of unchanged content from Redis.

Vendors redeliver (retries, several triggers firing, Zendesk events about an unchanged
ticket). For each ticket Redis keeps the latest stored content fingerprint, so such a
redelivery is answered `already_exists` without touching PostgreSQL. PostgreSQL stays
the source of truth: a miss, or Redis being away, only costs the database round trip.

Two things keep the cache from ever answering for content that is no longer current:
- writes are ordered by the ticket's `revision` (a Lua compare-and-set), so two workers
  finishing in the opposite order cannot leave the older fingerprint behind;
- a worker that could not record a change (Redis down or breaker open) bumps a
  generation number once Redis is back, which retires every fingerprint written before:
  the cache restarts cold instead of serving one that may predate that change.
Fast-path answers write no delivery row (they change nothing); they are counted in the
webhook metrics instead.
"""

from __future__ import annotations

import logging

from .metrics import DUPLICATE_CACHE
from .redis_guard import GuardedRedis, RedisUnavailable
from .tickets import Outcome, StoredDelivery, Ticket

log = logging.getLogger(__name__)

GENERATION_KEY = "ingestion:dup:generation"

# KEYS[1] generation key; ARGV[1] source:external_id. Returns the cached value or nil.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1]) or '0'
return redis.call('GET', 'ingestion:dup:' .. generation .. ':' .. ARGV[1])
"""

# KEYS[1] generation key; ARGV: source:external_id, revision, value, ttl.
# Writes unless the cache already holds a newer revision of the ticket.
_REMEMBER = """
local generation = redis.call('GET', KEYS[1]) or '0'
local key = 'ingestion:dup:' .. generation .. ':' .. ARGV[1]
local current = redis.call('GET', key)
if current then
  local revision = tonumber(string.match(current, '^(%d+)|'))
  if revision and revision > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', key, ARGV[3], 'EX', ARGV[4])
return 1
"""


class DuplicateCache:
    def __init__(self, guarded: GuardedRedis, ttl_seconds: int) -> None:
        self.guarded = guarded
        self.ttl = ttl_seconds
        self._lookup = guarded.client.register_script(_LOOKUP)
        self._remember = guarded.client.register_script(_REMEMBER)
        self._missed_a_change = False

    @staticmethod
    def _ticket_key(ticket: Ticket) -> str:
        return f"{ticket.source}:{ticket.external_id}"

    def lookup(self, ticket: Ticket, content_hash: str) -> StoredDelivery | None:
        """The stored answer for this exact content, or None (miss or Redis away)."""
        try:
            self._retire_if_needed()
            cached = self.guarded.call("duplicate_lookup",
                                       lambda _c: self._lookup(keys=[GENERATION_KEY], args=[self._ticket_key(ticket)]))
        except RedisUnavailable:
            DUPLICATE_CACHE.labels("unavailable").inc()
            return None
        revision, cached_hash, ticket_id = cached.decode().split("|") if cached else ("", "", "")
        if cached_hash != content_hash:
            DUPLICATE_CACHE.labels("miss").inc()
            return None
        DUPLICATE_CACHE.labels("hit").inc()
        return StoredDelivery(Outcome.ALREADY_EXISTS, ticket_id, int(revision))

    def remember(self, ticket: Ticket, content_hash: str, stored: StoredDelivery) -> None:
        """Record what PostgreSQL now holds for this ticket."""
        value = f"{stored.revision}|{content_hash}|{stored.ticket_id}"
        args = [self._ticket_key(ticket), stored.revision, value, self.ttl]
        try:
            self._retire_if_needed()
            self.guarded.call("duplicate_remember", lambda _c: self._remember(keys=[GENERATION_KEY], args=args))
        except RedisUnavailable:
            if stored.outcome is Outcome.UPDATED:
                self._missed_a_change = True

    def _retire_if_needed(self) -> None:
        if self._missed_a_change:
            self.guarded.call("duplicate_retire", lambda client: client.incr(GENERATION_KEY))
            self._missed_a_change = False
            log.info("duplicate cache retired: a change was stored while Redis was unreachable")

"""The duplicate fast path: answer a redelivery of unchanged content from Redis.

Vendors redeliver (retries, several triggers firing, Zendesk events about an unchanged
ticket). For each ticket Redis keeps the latest stored content fingerprint, so such a
redelivery is answered `already_exists` without touching PostgreSQL. PostgreSQL stays
the source of truth: a miss, or Redis being away, only costs the database round trip.

The cache must never vouch for content PostgreSQL no longer holds. Four rules see to it:
- a lookup that misses (different content, so possibly a change) deletes the ticket's
  fingerprint in the same script, *before* the request goes to PostgreSQL: if recording
  the outcome afterwards fails, or the worker dies in between, nothing outdated remains;
- writes are ordered by the ticket's `revision` (a Lua compare-and-set), so two workers
  finishing in the opposite order cannot leave the older fingerprint behind;
- a worker that could reach Redis neither for the lookup (so deleted nothing) nor to
  record the change it then stored bumps a generation number once Redis is back,
  retiring every fingerprint written before;
- every process starts as if it had missed a change (a predecessor may have died holding
  that duty), so the cache starts cold after each worker start: under gunicorn the
  retirement is done as the worker starts, before its first request. Entries also expire
  (DUPLICATE_CACHE_TTL, an hour by default).
What remains is a race of two deliveries of the same ticket inside a Redis blip that
only one of them sees; the fast path then answers `already_exists` for the version
PostgreSQL held a moment before.
Fast-path answers write no delivery row (they change nothing); they are counted in the
webhook metrics instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .metrics import DUPLICATE_CACHE
from .redis_guard import GuardedRedis, RedisUnavailable
from .tickets import Outcome, StoredDelivery, Ticket

log = logging.getLogger(__name__)

GENERATION_KEY = "ingestion:dup:generation"

# KEYS[1] generation key; ARGV: source:external_id, content hash. Returns the cached
# value when it holds this content; otherwise deletes whatever is cached for the ticket
# (the request may change it) and returns nil.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1]) or '0'
local key = 'ingestion:dup:' .. generation .. ':' .. ARGV[1]
local cached = redis.call('GET', key)
if cached and string.find(cached, '|' .. ARGV[2] .. '|', 1, true) then return cached end
if cached then redis.call('DEL', key) end
return false
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


@dataclass(frozen=True)
class Lookup:
    hit: StoredDelivery | None  # the answer, when this exact content is cached
    cleared: bool  # Redis was reached, so no outdated fingerprint of the ticket remains


class DuplicateCache:
    def __init__(self, guarded: GuardedRedis, ttl_seconds: int) -> None:
        self.guarded = guarded
        self.ttl = ttl_seconds
        self._lookup = guarded.client.register_script(_LOOKUP)
        self._remember = guarded.client.register_script(_REMEMBER)
        # Set at start: a predecessor process may have died owing the cache a retirement.
        self._missed_a_change = True

    @staticmethod
    def _ticket_key(ticket: Ticket) -> str:
        return f"{ticket.source}:{ticket.external_id}"

    def lookup(self, ticket: Ticket, content_hash: str) -> Lookup:
        """The stored answer for this exact content, if cached; a miss also clears the
        ticket's outdated fingerprint (when Redis can be reached)."""
        try:
            self._retire_if_needed()
            cached = self.guarded.run_script("duplicate_lookup", self._lookup, [GENERATION_KEY],
                                             [self._ticket_key(ticket), content_hash])
        except RedisUnavailable:
            DUPLICATE_CACHE.labels("unavailable").inc()
            return Lookup(hit=None, cleared=False)
        if not cached:
            DUPLICATE_CACHE.labels("miss").inc()
            return Lookup(hit=None, cleared=True)
        DUPLICATE_CACHE.labels("hit").inc()
        revision, _hash, ticket_id = cached.decode().split("|")
        return Lookup(hit=StoredDelivery(Outcome.ALREADY_EXISTS, ticket_id, int(revision)), cleared=True)

    def remember(self, ticket: Ticket, stored: StoredDelivery, cleared: bool) -> None:
        """Record what PostgreSQL now holds for this ticket. `cleared`: the lookup removed
        any older fingerprint, so failing here leaves nothing outdated behind."""
        value = f"{stored.revision}|{stored.content_hash}|{stored.ticket_id}"
        args = [self._ticket_key(ticket), stored.revision, value, self.ttl]
        try:
            self._retire_if_needed()
            self.guarded.run_script("duplicate_remember", self._remember, [GENERATION_KEY], args)
        except RedisUnavailable:
            if stored.outcome is Outcome.UPDATED and not cleared:
                self._missed_a_change = True

    def retire_inherited(self) -> None:
        """At process start, before the first request (gunicorn's post_worker_init): retire
        what a predecessor may have left outdated, so it is done before traffic arrives
        rather than by whichever request comes first, whose retirement would also empty
        the cache under the other workers' feet. With Redis away, the first call that
        reaches it does it instead."""
        try:
            self._retire_if_needed()
        except RedisUnavailable:
            pass

    def _retire_if_needed(self) -> None:
        if self._missed_a_change:
            self.guarded.call("duplicate_retire", lambda client: client.incr(GENERATION_KEY))
            self._missed_a_change = False
            log.info("duplicate cache generation retired (this process started, or stored a change "
                     "while Redis was unreachable)")

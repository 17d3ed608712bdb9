"""The duplicate fast path: a redelivery answered from Redis.

Vendors redeliver: a retry after an answer was lost, several webhooks subscribed to one
event, a relay replaying its queue. Once PostgreSQL has answered a redelivery, Redis
remembers the delivery's identity (ticket, then the vendor's event id or the body's
fingerprint) with the stored answer (ticket id, event id), and later redeliveries of it
are answered `already_exists` without touching PostgreSQL.

The keys are delivery identities, never content: two distinct events about an unchanged
ticket have two identities, so one is never answered for the other. What a delivery
was stored as never changes, so an entry cannot go out of date and nothing needs
invalidating; an entry lives no longer than PostgreSQL would still call the delivery a
redelivery (a body fingerprint's window, or DUPLICATE_CACHE_TTL for an event id).
Only redeliveries are remembered (the first one is answered by PostgreSQL), so a new
event costs one lookup and no write. Redis away: the lookup is skipped, PostgreSQL
answers. Fast-path answers write no delivery row (they change nothing); they are
counted in the webhook metrics instead.
"""

from __future__ import annotations

from .metrics import DUPLICATE_CACHE
from .redis_guard import GuardedRedis, RedisUnavailable
from .tickets import Outcome, StoredDelivery, TicketEvent

PREFIX = "ingestion:delivery:"


def cache_key(event: TicketEvent, identity: str) -> str:
    return f"{PREFIX}{event.vendor}:{event.account}:{event.external_id}:{identity}"


class DuplicateCache:
    def __init__(self, guarded: GuardedRedis, ttl_seconds: int) -> None:
        self.guarded = guarded
        self.ttl = ttl_seconds

    def lookup(self, event: TicketEvent, identity: str) -> StoredDelivery | None:
        """The stored answer to this delivery, when a redelivery of it was seen."""
        try:
            cached = self.guarded.run_command("duplicate_lookup", "GET", cache_key(event, identity))
        except RedisUnavailable:
            DUPLICATE_CACHE.labels("unavailable").inc()
            return None
        if not cached:
            DUPLICATE_CACHE.labels("miss").inc()
            return None
        DUPLICATE_CACHE.labels("hit").inc()
        ticket_id, _, event_id = cached.decode().partition("|")
        return StoredDelivery(Outcome.ALREADY_EXISTS, ticket_id, event_id)

    def remember(self, event: TicketEvent, identity: str, stored: StoredDelivery, expires_in: int | None) -> None:
        """After PostgreSQL answered a redelivery. `expires_in`: seconds PostgreSQL still
        calls it one (a body fingerprint), None when forever (an event id)."""
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        if ttl <= 0:
            return
        try:
            self.guarded.run_command("duplicate_remember", "SET", cache_key(event, identity),
                                     f"{stored.ticket_id}|{stored.event_id}", "EX", ttl)
        except RedisUnavailable:
            pass  # only the fast path is lost

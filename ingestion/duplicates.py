"""The duplicate fast path: a redelivery answered from Redis.

Why it works this way: docs/design.md, "The duplicate fast path".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .metrics import DUPLICATE_CACHE, child
from .redis_guard import GuardedRedis, RedisUnavailable
from .tickets import Outcome, StoredDelivery, TicketEvent

PREFIX = "ingestion:delivery:"


def request_key(vendor: str, account: str | None, body: bytes) -> str:
    """Where a delivery's entry lives: its raw request, before anything parses it."""
    digest = hashlib.blake2b(body, digest_size=16, person=b"ingestion-fast")
    digest.update(b"\0" + vendor.encode() + b"\0" + (account or "").encode())
    return PREFIX + digest.hexdigest()


def _token(event: TicketEvent, identity: str) -> str:
    """Which delivery an entry answers for: its ticket and its identity (ingest.identity)."""
    named = "\0".join((event.vendor, event.account, event.external_id, identity))
    return hashlib.blake2b(named.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Prefetched:
    """What Redis held at a request key, fetched with the rate limit. `available` is
    False when Redis could not be asked (the limit was counted in memory)."""

    key: str
    value: bytes | None
    available: bool = True


class DuplicateCache:
    def __init__(self, guarded: GuardedRedis, ttl_seconds: int) -> None:
        self.guarded = guarded
        self.ttl = ttl_seconds

    def fetch(self, key: str) -> Prefetched:
        """The entry at `key`, for a request whose rate limit did not fetch it already."""
        try:
            return Prefetched(key, self.guarded.run_command("duplicate_lookup", "GET", key))
        except RedisUnavailable:
            return Prefetched(key, None, available=False)

    def answer(self, entry: Prefetched, event: TicketEvent, identity: str) -> StoredDelivery | None:
        """The stored answer to this delivery, when the entry is this delivery's."""
        if not entry.available:
            child(DUPLICATE_CACHE, "unavailable").inc()
            return None
        parts = (entry.value or b"").decode("ascii", "replace").split("|")
        if len(parts) != 3 or parts[2] != _token(event, identity):
            child(DUPLICATE_CACHE, "miss").inc()
            return None
        child(DUPLICATE_CACHE, "hit").inc()
        return StoredDelivery(Outcome.ALREADY_EXISTS, parts[0], parts[1])

    def remember(self, key: str, event: TicketEvent, identity: str, stored: StoredDelivery,
                 expires_in: int | None) -> None:
        """After PostgreSQL answered a redelivery. `expires_in`: seconds PostgreSQL still
        calls it one (a body fingerprint), None when forever (an event id)."""
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        if ttl <= 0:
            return
        try:
            self.guarded.run_command("duplicate_remember", "SET", key,
                                     f"{stored.ticket_id}|{stored.event_id}|{_token(event, identity)}", "EX", ttl)
        except RedisUnavailable:
            pass  # only the fast path is lost

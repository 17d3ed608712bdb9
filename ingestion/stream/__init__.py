"""Where the relay hands committed events: a transport, chosen by STREAM_TRANSPORT.

- `redis` (default): the Redis stream `ingestion:tickets` (redis_stream.py);
- `nats`: NATS JetStream, a subject per vendor and account (jetstream.py), for consumers
  that want a durable, replicated log with several durable consumers and long replays.

A transport is `connect()` (ready to publish, or StreamUnavailable: called before the
relay opens its database transaction) and `publish(rows)`: append these events, in this order, or raise
StreamUnavailable (nothing is then marked published, and the relay offers the same rows
again later). It may have published some of them before failing; the relay publishes
them again, so a transport either de-duplicates (JetStream, on the event id) or its
consumers do (Redis: at least once). A Kafka sink would be a third such class: a
producer with `enable.idempotence=true` and `acks=all`, the topic keyed by
`subject_for()`'s vendor and account (one partition per key keeps a ticket's order), the
event id in a header, `flush()` before returning, and its errors raised as
StreamUnavailable (README: Event stream). It is not written here: no Kafka broker runs
on the machines that test this service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..config import Settings
from .fields import stream_fields

__all__ = ["Transport", "stream_fields", "transport_for"]


class Transport(Protocol):
    name: str

    def connect(self) -> None: ...

    def publish(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def transport_for(settings: Settings, guarded: Any = None) -> Transport:
    """The configured transport (`guarded`: the relay's GuardedRedis, for the Redis stream)."""
    if settings.stream_transport == "nats":
        from .jetstream import JetStream

        return JetStream(settings.nats_url or "")
    from .redis_stream import RedisStream

    return RedisStream(guarded, settings.stream_maxlen)

"""The relay: publishes committed ticket changes from the outbox to the stream transport.

The webhook's own transaction writes the event row (the outbox entry); this separate process
(`python -m ingestion relay`) hands pending events to the configured transport (the Redis
stream `ingestion:tickets`, or NATS JetStream: ingestion/stream) and marks them
published. Guarantees:
- nothing is lost: an event stays pending until the transport accepted it, however long
  it is away; the backlog drains when it returns;
- at least once: if the relay dies between publishing and the commit that marks the rows,
  the batch is published again; consumers deduplicate on `event_id` if they must
  (JetStream does it for them, on the message id);
- in commit order per ticket: one relay publishes at a time (advisory lock) and reads in
  id order, which per ticket is commit order (storage/outbox.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import click

from ..cli import Context, job
from ..config import Settings
from ..errors import DatabaseUnavailable, StreamUnavailable
from ..metrics import EVENTS_PUBLISHED
from ..redis_guard import STREAM, GuardedRedis
from ..storage import Storage
from ..stream import Transport, stream_fields, transport_for
from .daemon import serve_metrics, stop_on_signals
from .retention import prune

__all__ = ["BATCH", "STREAM", "Relay", "command", "stream_fields"]

log = logging.getLogger(__name__)

BATCH = 500


#: Seconds before a failed retention pass is tried again.
RETENTION_RETRY = 300.0


class Relay:
    def __init__(self, settings: Settings, storage: Storage, guarded: GuardedRedis | None = None,
                 transport: Transport | None = None) -> None:
        self.storage = storage
        self.settings = settings
        self.transport = transport or transport_for(settings, guarded)

    def publish_batch(self, limit: int = BATCH) -> int:
        """Publish up to `limit` pending events; returns how many (0: nothing to do).
        Raises StreamUnavailable (nothing marked, all retried later) or DatabaseUnavailable."""
        self.transport.connect()  # outside the transaction: nothing is held while it is away
        published = self.storage.publish_pending(limit, self.transport.publish)
        if published:
            EVENTS_PUBLISHED.inc(published)
        return published

    def backlog(self) -> int | None:
        return self.storage.outbox_backlog()

    def _retention(self, every: float) -> float:
        """One retention pass (jobs/retention.py); seconds until the next. A pass that
        fails (a month's partition waiting behind a long reader, the database away) is
        tried again in a few minutes, and publishing goes on meanwhile: it once stopped
        the relay, retried every few seconds, each try holding webhooks 2 s behind it."""
        try:
            prune(self.storage, self.settings)
            return every
        except Exception as error:  # noqa: BLE001 (any failure: the stream must not wait for retention)
            log.warning("retention pass failed; publishing goes on, retention is tried again later",
                        extra={"error": type(error).__name__, "retry_in_seconds": min(every, RETENTION_RETRY)})
            return min(every, RETENTION_RETRY)

    def run_forever(self, idle_sleep: float = 0.2, prune_every: float = 3600.0,
                    should_stop: Callable[[], bool] = lambda: False, batch: int = BATCH) -> None:
        """Publish until told to stop; outages only slow it down."""
        next_prune = time.monotonic()
        backoff = idle_sleep
        while not should_stop():
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self._retention(prune_every)
            try:
                published = self.publish_batch(batch)
                backoff = idle_sleep
                if published:
                    log.info("published events", extra={"count": published, "stream": self.transport.name})
                    continue
            except StreamUnavailable as error:
                log.warning("stream unavailable, events wait in the outbox", extra={"error": str(error)})
                backoff = min(backoff * 2, 5.0)
            except DatabaseUnavailable:
                log.warning("database unavailable for the relay; retrying")
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug: log it, keep the relay alive, events stay in the outbox
                log.exception("relay iteration failed")
                backoff = min(backoff * 2, 5.0)
            time.sleep(backoff)


@click.command("relay")
@job
def command(context: Context) -> None:
    """Publish pending events to the stream (STREAM_TRANSPORT: Redis or NATS JetStream) until stopped."""
    settings = context.settings
    guarded = None
    if settings.stream_transport == "redis":
        if not settings.redis_url:
            raise click.ClickException("configuration error: REDIS_URL: is required for the relay")
        guarded = GuardedRedis(settings)
        guarded.start_state_reporter()
    serve_metrics(settings, settings.relay_metrics_port, "relay")
    stop = stop_on_signals()
    relay = Relay(settings, context.storage, guarded)
    try:
        relay.run_forever(should_stop=stop.is_set)
    finally:
        relay.transport.close()

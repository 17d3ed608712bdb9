"""The relay: publishes committed ticket changes from the outbox to the Redis stream.

The webhook's own transaction writes the event row (the outbox entry); this separate process
(`python -m ingestion relay`) appends pending events to the stream `ingestion:tickets`
and marks them published. Guarantees:
- nothing is lost: an event stays pending until Redis accepted it, however long Redis is
  away; the backlog drains when it returns;
- at least once: if the relay dies between XADD and the commit that marks the rows, the
  batch is published again; consumers deduplicate on `event_id` if they must;
- in commit order per ticket: one relay publishes at a time (advisory lock) and reads in
  id order, which per ticket is commit order (storage/outbox.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import click

from ..cli import Context, job, serve_metrics, stop_on_signals
from ..config import Settings
from ..errors import DatabaseUnavailable, RedisUnavailable
from ..metrics import EVENTS_PUBLISHED
from ..redis_guard import STREAM, GuardedRedis
from ..storage import Storage
from .retention import prune

log = logging.getLogger(__name__)

BATCH = 500


def stream_fields(row: dict[str, Any]) -> dict[str, str]:
    """One event as a stream entry (README: Event stream)."""
    fields = {
        "ticket_id": str(row["ticket_id"]),
        "source": row["vendor"],
        "account": row["account"],
        "external_id": row["external_id"],
        "event_id": str(row["id"]),
        "event_type": row["event_type"],
        "change": row["outcome"],  # created | updated | recorded | deleted | forget
        "revision": str(row["revision"]),
        "occurred_at": row["received_at"].isoformat(),
    }
    if row["deletion"]:  # soft | permanent (the content is gone: drop your copy) | restored (on an updated change)
        fields["deletion"] = row["deletion"]
    forgotten = row["forgotten"]
    if forgotten:  # what to forget: the ticket's content, or a person's (never the values)
        fields["forgotten"] = str(forgotten.get("forgotten", "ticket"))
        fields["fields"] = ",".join(forgotten.get("fields") or ())
        fields["events"] = str(forgotten.get("events", 0))
    return fields


class Relay:
    def __init__(self, settings: Settings, storage: Storage, guarded: GuardedRedis) -> None:
        self.storage = storage
        self.guarded = guarded
        self.maxlen = settings.stream_maxlen
        self.settings = settings

    def publish_batch(self, limit: int = BATCH) -> int:
        """Publish up to `limit` pending events; returns how many (0: nothing to do).
        Raises RedisUnavailable (nothing marked, all retried later) or DatabaseUnavailable."""

        def append_all(rows: list[dict[str, Any]]) -> None:
            def pipeline(client: Any) -> list:
                pipe = client.pipeline(transaction=False)
                for row in rows:
                    pipe.xadd(STREAM, stream_fields(row), maxlen=self.maxlen, approximate=True)
                return pipe.execute()

            self.guarded.call("stream_publish", pipeline)

        published = self.storage.publish_pending(limit, append_all)
        if published:
            EVENTS_PUBLISHED.inc(published)
        return published

    def backlog(self) -> int | None:
        return self.storage.outbox_backlog()

    def run_forever(self, idle_sleep: float = 0.2, prune_every: float = 3600.0,
                    should_stop: Callable[[], bool] = lambda: False) -> None:
        """Publish until told to stop; outages only slow it down."""
        next_prune = time.monotonic()
        backoff = idle_sleep
        while not should_stop():
            try:
                if time.monotonic() >= next_prune:
                    prune(self.storage, self.settings)
                    next_prune = time.monotonic() + prune_every
                published = self.publish_batch()
                backoff = idle_sleep
                if published:
                    log.info("published events", extra={"count": published, "stream": STREAM})
                    continue
            except RedisUnavailable as error:
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
    """Publish pending events to the stream `ingestion:tickets` until stopped."""
    settings = context.settings
    if not settings.redis_url:
        raise click.ClickException("configuration error: REDIS_URL: is required for the relay")
    serve_metrics(settings, settings.relay_metrics_port)
    stop = stop_on_signals()
    guarded = GuardedRedis(settings)
    guarded.start_state_reporter()
    Relay(settings, context.storage, guarded).run_forever(should_stop=stop.is_set)

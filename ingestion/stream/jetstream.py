"""The second transport: NATS JetStream (STREAM_TRANSPORT=nats, NATS_URL).

Each event is one message on the subject `ingestion.tickets.<vendor>.<account>` of the
stream INGESTION_TICKETS, its body the same fields as a Redis stream entry (as JSON), its
`Nats-Msg-Id` header the event id. Why that shape:
- a subject per vendor and account lets a consumer take one tenant (`ingestion.tickets.zendesk.4242`)
  or all (`ingestion.tickets.>`) with a filter, and JetStream keeps one subject's order;
- the message id makes JetStream drop a second copy within DUPLICATE_WINDOW: the relay
  publishes a batch again when it died (or the database failed) before marking it
  published, and a consumer then sees each event once;
- the relay waits for every acknowledgement before it marks a batch published: an
  acknowledged message is stored (replicated, on a cluster) by JetStream.

Accounts may hold characters a subject token cannot (`.`, `*`, `>`, spaces): those are
written `~XX` per UTF-8 byte (hex), and the empty account is `~` (`subject_for`).

The relay is synchronous: the asyncio client (nats-py) runs on a loop of its own, driven
one batch at a time. Any failure closes the connection, raises StreamUnavailable and the
next batch connects again: the outbox keeps the events meanwhile, however long NATS is away.
The stream is created on first connection when missing (file storage, limits retention);
an operator who creates it first (replicas, retention, placement) keeps theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import StreamUnavailable
from .fields import account_token, stream_fields

log = logging.getLogger(__name__)

STREAM_NAME = "INGESTION_TICKETS"
SUBJECT_PREFIX = "ingestion.tickets"
#: How long JetStream remembers a message id to drop its copies (seconds).
DUPLICATE_WINDOW = 600.0
#: The most one batch's acknowledgements may take (seconds).
TIMEOUT = 10.0
#: The most a connection may take (nats-py otherwise keeps trying its server for long).
CONNECT_TIMEOUT = 2.0


def subject_for(vendor: str, account: str) -> str:
    return f"{SUBJECT_PREFIX}.{vendor}.{account_token(account)}"


class JetStream:
    """Publishes batches to JetStream and waits for every acknowledgement."""

    name = STREAM_NAME

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._nc: Any = None
        self._js: Any = None
        self._lost: asyncio.Event | None = None
        self.duplicates = 0  # acknowledged as copies (republished after a crash): for the log

    def connect(self) -> None:
        """Connected (and the stream there) before the relay opens its transaction, so a
        NATS that is away costs CONNECT_TIMEOUT with nothing held; StreamUnavailable if not."""
        if self._nc is not None and self._nc.is_connected:
            return
        try:
            self._loop.run_until_complete(asyncio.wait_for(self._connect(), CONNECT_TIMEOUT + TIMEOUT))
        except Exception as error:
            self._drop()
            raise StreamUnavailable(f"NATS: {type(error).__name__}: {error}"[:300]) from None

    def publish(self, rows: Sequence[dict[str, Any]]) -> None:
        try:
            self._loop.run_until_complete(asyncio.wait_for(self._publish(rows), TIMEOUT))
        except StreamUnavailable:
            self._drop()
            raise
        except Exception as error:  # nats-py's errors, timeouts, OSError: the server is away
            self._drop()
            raise StreamUnavailable(f"NATS: {type(error).__name__}: {error}"[:300]) from None

    async def _connect(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        async def quiet(error: Exception) -> None:  # nats-py logs every error itself otherwise
            log.debug("nats client error", extra={"error": f"{type(error).__name__}: {error}"[:300]})

        lost = self._lost = asyncio.Event()

        async def disconnected() -> None:  # acknowledgements in flight will never come
            lost.set()

        self._nc = await asyncio.wait_for(nats.connect(
            self.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=CONNECT_TIMEOUT, error_cb=quiet,
            disconnected_cb=disconnected, closed_cb=disconnected, name="ingestion-relay"), CONNECT_TIMEOUT)
        self._js = self._nc.jetstream(timeout=TIMEOUT)
        try:
            await self._js.stream_info(STREAM_NAME)
        except NotFoundError:
            await self._js.add_stream(name=STREAM_NAME, subjects=[f"{SUBJECT_PREFIX}.>"],
                                      duplicate_window=DUPLICATE_WINDOW)
            log.info("created the JetStream stream", extra={"stream": STREAM_NAME})

    async def _publish(self, rows: Sequence[dict[str, Any]]) -> None:
        if self._nc is None or not self._nc.is_connected:
            await self._connect()
        acks = []
        for row in rows:  # sent in order on one connection: JetStream stores them in that order
            fields = stream_fields(row)
            acks.append(await self._js.publish_async(
                subject_for(row["vendor"], row["account"]), json.dumps(fields).encode(),
                stream=STREAM_NAME, headers={"Nats-Msg-Id": fields["event_id"]}))
        waiting = asyncio.ensure_future(asyncio.gather(*acks, return_exceptions=True))
        lost = asyncio.ensure_future(self._lost.wait())
        await asyncio.wait({waiting, lost}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        if not waiting.done():
            waiting.cancel()
            raise StreamUnavailable(f"NATS: connection lost with {len(rows)} messages unacknowledged")
        answers = waiting.result()
        failed = [answer for answer in answers if isinstance(answer, BaseException)]
        if failed:
            raise StreamUnavailable(f"NATS: {len(failed)} of {len(rows)} not acknowledged: {failed[0]!r}"[:300])
        copies = sum(1 for answer in answers if getattr(answer, "duplicate", False))
        if copies:  # a batch published again (the relay died, or the database failed, before marking it)
            log.info("JetStream dropped copies of events it already had", extra={"count": copies})
        self.duplicates += copies

    def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                self._loop.run_until_complete(asyncio.wait_for(nc.close(), 2))
            except Exception:  # already gone: nothing to close cleanly
                log.debug("closing the NATS connection failed")

    def close(self) -> None:
        self._drop()
        self._loop.close()

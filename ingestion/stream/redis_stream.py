"""The default transport: the Redis stream `ingestion:tickets`, through the breaker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import RedisUnavailable, StreamUnavailable
from ..redis_guard import STREAM, GuardedRedis
from .fields import stream_fields


class RedisStream:
    """XADD each event, one pipelined round trip per batch, the stream capped near `maxlen`."""

    name = STREAM

    def __init__(self, guarded: GuardedRedis, maxlen: int) -> None:
        self.guarded = guarded
        self.maxlen = maxlen

    def publish(self, rows: Sequence[dict[str, Any]]) -> None:
        def pipeline(client: Any) -> list:
            pipe = client.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(STREAM, stream_fields(row), maxlen=self.maxlen, approximate=True)
            return pipe.execute()

        try:
            self.guarded.call("stream_publish", pipeline)
        except RedisUnavailable as error:
            raise StreamUnavailable(f"Redis: {error}") from None

    def close(self) -> None:
        pass

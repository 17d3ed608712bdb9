"""The default transport: Redis streams, through the breaker.

A single Redis: every event goes to the stream `ingestion:tickets`. A Redis Cluster
(`redis+cluster://`): one stream per vendor and account,
`ingestion:tickets:{<vendor>:<account token>}` (the hash tag puts each on one node, the
tenants spread over the nodes; the account token as for NATS subjects: fields.account_token),
and the set `ingestion:tickets:streams` names them all, for consumers to find. Each
ticket's events stay in one stream, so its order holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import RedisUnavailable, StreamUnavailable
from ..redis_guard import STREAM, STREAMS, GuardedRedis
from .fields import account_token, stream_fields


def stream_key(vendor: str, account: str) -> str:
    """The stream of a vendor and account on a cluster."""
    return f"{STREAM}:{{{vendor}:{account_token(account)}}}"


class RedisStream:
    """XADD each event, one pipelined round trip per batch (one per node on a cluster),
    each stream capped near `maxlen`."""

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

        def per_node(client: Any) -> None:
            """One plain pipeline per node (redis_guard.py: no cluster retries), in row
            order within each stream; the first node that fails fails the batch."""
            pipes: dict[int, Any] = {}
            keys = set()
            for row in rows:
                key = stream_key(row["vendor"], row["account"])
                keys.add(key)
                self._pipe(client, pipes, key).xadd(key, stream_fields(row), maxlen=self.maxlen, approximate=True)
            self._pipe(client, pipes, STREAMS).sadd(STREAMS, *sorted(keys))
            for pipe in pipes.values():
                pipe.execute()

        try:
            self.guarded.call("stream_publish", per_node if self.guarded.cluster else pipeline)
        except RedisUnavailable as error:
            raise StreamUnavailable(f"Redis: {error}") from None

    def _pipe(self, client: Any, pipes: dict[str, Any], key: str) -> Any:
        node = self.guarded.node(client, key)  # (the same client object for every key of a node)
        if id(node) not in pipes:
            pipes[id(node)] = node.pipeline(transaction=False)
        return pipes[id(node)]

    def connect(self) -> None:
        pass  # every call goes through the breaker, which says at once when Redis is away

    def close(self) -> None:
        pass

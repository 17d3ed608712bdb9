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
        cluster = self.guarded.cluster

        def pipeline(client: Any) -> list:
            pipe = client.pipeline(transaction=False)
            keys = set()
            for row in rows:
                key = stream_key(row["vendor"], row["account"]) if cluster else STREAM
                keys.add(key)
                pipe.xadd(key, stream_fields(row), maxlen=self.maxlen, approximate=True)
            if cluster:
                pipe.sadd(STREAMS, *sorted(keys))
            return pipe.execute()

        try:
            self.guarded.call("stream_publish", pipeline)
        except RedisUnavailable as error:
            raise StreamUnavailable(f"Redis: {error}") from None

    def close(self) -> None:
        pass

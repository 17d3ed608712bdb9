"""What the overview reads outside PostgreSQL: the Prometheus counters and gauges of the
service's processes, and Redis (the stream's length, the breaker in front of it).

Authentication failures are refused before anything is stored, so only the counter
`ingestion_auth_failures_total` knows them. Under gunicorn each worker counts in its own
files under PROMETHEUS_MULTIPROC_DIR, which gunicorn.conf.py empties when the service
starts: metrics.summed_registry sums them, as /metrics does, so these
are counts since the service started. Without that directory (one process: the
development server, the tests) the process's own registry holds them.

Redis is asked through the service's GuardedRedis, behind its breaker: when Redis is away
or the breaker open, the page says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client.samples import Sample

from ...errors import RedisUnavailable
from ...metrics import summed_registry
from ...redis_guard import STREAM, STREAMS, GuardedRedis

AUTH_FAILURES = "ingestion_auth_failures_total"
BREAKER_STATE = "ingestion_circuit_breaker_state"
#: ingestion_circuit_breaker_state's values (redis_guard.BREAKER_STATES), as words.
STATE_NAMES = {0: "closed", 1: "open", 2: "half-open"}


@dataclass(frozen=True)
class StreamLength:
    """XLEN of the stream (on a cluster, of every stream summed), or why it is not known (`length` None)."""

    length: int | None
    unavailable: str = ""


@dataclass(frozen=True)
class Breaker:
    name: str
    state: str  # closed | open | half-open | unknown | not configured
    source: str  # where the state was read: "this process" or "metrics gauge"


def samples(*names: str) -> list[Sample]:
    """The samples called `names`, summed over every worker when the service runs several."""
    registry = summed_registry()
    wanted = set(names)
    return [sample for family in registry.collect() for sample in family.samples if sample.name in wanted]


def auth_failures() -> list[tuple[str, str, int]]:
    """(vendor, reason, count) of webhook calls refused with 401 since the service started."""
    counts: dict[tuple[str, str], float] = {}
    for sample in samples(AUTH_FAILURES):
        key = (sample.labels.get("vendor", ""), sample.labels.get("reason", ""))
        counts[key] = counts.get(key, 0.0) + sample.value
    return [(vendor, reason, int(count)) for (vendor, reason), count in sorted(counts.items()) if count]


def _entry_count(client: Any) -> int:
    return client.xlen(STREAM)


def _entries_on(redis: GuardedRedis) -> Any:
    def entries(client: Any) -> int:
        """On a cluster: the entries of every stream (one per vendor and account) summed,
        each asked of its own node (redis_guard.py)."""
        names = sorted(name.decode() for name in redis.node(client, STREAMS).smembers(STREAMS))
        return sum(redis.node(client, name).xlen(name) for name in names)

    return entries


def stream_length(redis: GuardedRedis | None, transport: str = "redis") -> StreamLength:
    if transport == "nats":
        return StreamLength(None, "the relay publishes to NATS JetStream (STREAM_TRANSPORT=nats): "
                                  "the stream INGESTION_TICKETS, measured by NATS's own monitoring")
    if redis is None:
        return StreamLength(None, "Redis is not configured (REDIS_URL)")
    try:
        return StreamLength(int(redis.call("console_stream_length", _entries_on(redis) if redis.cluster else _entry_count)))
    except RedisUnavailable as error:
        return StreamLength(None, f"Redis is unavailable ({error})")


def breakers(redis: GuardedRedis | None) -> list[Breaker]:
    """The Redis breaker as this process holds it, and every other breaker (each vendor
    API's, in the reconciler) as the metrics gauge shows it, when this process sees it."""
    if redis is None:
        found = [Breaker("redis", "not configured", "REDIS_URL is unset")]
    else:
        found = [Breaker("redis", redis.state_name.replace("_", "-"), "this process")]
    gauges: dict[str, float] = {}
    for sample in samples(BREAKER_STATE):
        name = sample.labels.get("name", "")
        if name and name != "redis":  # several processes: the highest, as livemax
            gauges[name] = max(gauges.get(name, 0.0), sample.value)
    found += [Breaker(name, STATE_NAMES.get(int(value), "unknown"), "metrics gauge") for name, value in gauges.items()]
    return sorted(found, key=lambda breaker: (breaker.name != "redis", breaker.name))

"""`make bench-relay`: how fast the relay drains the outbox, per stream transport.

Issue 24 asks for the relay's throughput to Redis and to JetStream. This seeds a durable
PostgreSQL with a history (bench/seeding.py: seed_history; 10,000 tickets of 10 events by
default, over four accounts), then, for each transport in turn, marks every event
unpublished and runs the relay's own `publish_batch` (500 per batch, as `python -m
ingestion relay` does) until the outbox is empty:

- `redis`: one redis-server, the stream `ingestion:tickets`;
- `redis-cluster`: three redis-server nodes made one cluster with `redis-cli --cluster
  create`, one stream per vendor and account;
- `nats`: one nats-server with JetStream (`sync_interval: always`: every acknowledged
  message is on disk), a subject per vendor and account, the event id as message id;
- `nats-2min-sync`: the same on the server's default sync (every two minutes: an
  acknowledged message can be lost to a power cut, the trade the README describes).

Each transport runs `--rounds` times, alternating with the others on the same machine,
and the best round counts (the least disturbed by the machine's other work). It prints
events per second per transport and its ratio to the single Redis, and checks that the
stream holds every event once. Nothing is asserted: the figures are for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seeding import seed_history
from devserver import NatsServer, PostgresServer, RedisServer
from devserver.redis import RedisCluster
from ingestion.jobs.relay import Relay
from ingestion.redis_guard import STREAM, STREAMS, GuardedRedis
from ingestion.storage import Storage
from ingestion.storage.migrate import migrate
from ingestion.vendors import load_settings

ACCOUNTS = ("", "4242", "acme", "globex")


def settings_for(database_url: str, **env: str):
    return load_settings({"APP_ENV": "development", "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                          "STREAM_MAXLEN": "10000000", **env})


def stream_entries(transport: str, url: str) -> int:
    """How many entries the transport holds now (to check every event arrived once)."""
    if transport.startswith("nats"):
        import asyncio

        import nats

        async def count() -> int:
            nc = await nats.connect(url)
            try:
                return (await nc.jetstream().stream_info("INGESTION_TICKETS")).state.messages
            finally:
                await nc.close()

        return asyncio.run(count())
    if transport == "redis-cluster":
        from redis.cluster import RedisCluster as Client

        client = Client.from_url(url.replace("+cluster", ""))
        return sum(client.xlen(name) for name in client.smembers(STREAMS))
    import redis

    return redis.Redis.from_url(url).xlen(STREAM)


def empty(transport: str, url: str) -> None:
    if transport.startswith("nats"):
        import asyncio

        import nats

        async def purge() -> None:  # deleted, not purged: a purge keeps the message ids it saw,
            nc = await nats.connect(url)  # and the next round's copies would be dropped as duplicates
            try:
                await nc.jetstream().delete_stream("INGESTION_TICKETS")
            except Exception:  # not created yet: nothing to purge
                pass
            finally:
                await nc.close()

        asyncio.run(purge())  # (the relay makes the stream again on connecting)
    elif transport == "redis-cluster":
        from redis.cluster import RedisCluster as Client

        Client.from_url(url.replace("+cluster", "")).flushall()
    else:
        import redis

        redis.Redis.from_url(url).flushall()


def drain(database_url: str, transport: str, url: str) -> tuple[float, int]:
    """Every event unpublished, then the relay until the outbox is empty: (seconds, events)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE events SET published_at = NULL WHERE outcome <> 'stale'")
        conn.execute("VACUUM ANALYZE events")
    empty(transport, url)
    nats = transport.startswith("nats")
    env = {"STREAM_TRANSPORT": "nats", "NATS_URL": url} if nats else {"REDIS_URL": url}
    settings = settings_for(database_url, **env)
    storage = Storage(settings)
    relay = Relay(settings, storage, None if nats else GuardedRedis(settings))
    try:
        relay.publish_batch(1)  # connections and the stream made before the clock starts
        started = time.perf_counter()
        published = 1
        while True:
            count = relay.publish_batch()
            if not count:
                break
            published += count
        return time.perf_counter() - started, published - 1
    finally:
        relay.transport.close()
        storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--events-per-ticket", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    os.chmod(work, 0o755)
    servers: list = []
    try:
        postgres = PostgresServer(work / "postgres", durable=True).start()
        servers.append(postgres)
        database_url = postgres.create_database("relay")
        migrate(database_url)
        seeded = seed_history(database_url, args.tickets, args.events_per_ticket, accounts=ACCOUNTS, days=30)
        with psycopg.connect(database_url) as conn:
            total = conn.execute("SELECT count(*) FROM events WHERE outcome <> 'stale'").fetchone()[0]
        print(f"seeded {args.tickets:,} tickets, {total:,} events to publish, over {len(ACCOUNTS)} accounts "
              f"in {seeded:.0f} s; {os.cpu_count()} cores")

        redis_server = RedisServer(work / "redis").start()
        servers.append(redis_server)
        cluster = RedisCluster(work / "cluster").start()
        servers.append(cluster)
        nats_server = NatsServer(work / "nats").start()
        servers.append(nats_server)
        nats_lazy = NatsServer(work / "nats-2min-sync", sync_always=False).start()
        servers.append(nats_lazy)
        urls = {"redis": redis_server.url(), "redis-cluster": cluster.url(), "nats": nats_server.url(),
                "nats-2min-sync": nats_lazy.url()}

        best: dict[str, float] = {}
        for round_ in range(1, args.rounds + 1):
            for transport, url in urls.items():
                seconds, events = drain(database_url, transport, url)
                held = stream_entries(transport, url)
                rate = events / seconds
                best[transport] = max(best.get(transport, 0.0), rate)
                print(f"round {round_} {transport:<15} {events:,} events in {seconds:.2f} s: {rate:,.0f}/s; "
                      f"the stream holds {held:,}{'' if held == total else '  (NOT every event once)'}")
        print()
        print(f"{'transport':<14}{'best events/s':>14}{'vs redis':>10}")
        for transport, rate in best.items():
            print(f"{transport:<14}{rate:>14,.0f}{rate / best['redis']:>9.2f}x")
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

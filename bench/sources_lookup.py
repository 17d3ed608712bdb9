"""What finding a webhook's source costs, next to what the whole webhook costs.

Issue 21's target: the source lookup adds no more than 2% CPU per webhook. A difference
that small is below what two `make bench` runs side by side can tell apart (they differ by
several percent run to run), so this measures the lookup itself, in process, on the paths
a webhook takes (`SourceDirectory.resolve` and `settle_account`, the cache warm as it is
for all but one request per SOURCES_CACHE_SECONDS per worker), and, with the same
timer, a whole signed Freshdesk create through the app (Flask's test client, a real
PostgreSQL; no Redis). It also prints a cache miss (a read of PostgreSQL and the secret's
decryption), which each worker pays once per source every SOURCES_CACHE_SECONDS.

    python bench/sources_lookup.py [--rounds 5] [--calls 20000] [--webhooks 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devserver import PostgresServer  # noqa: E402
from ingestion import create_app  # noqa: E402
from ingestion.secret_box import new_key  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402
from ingestion.vendors import load_settings  # noqa: E402

SECRET = "bench-freshdesk-secret-7d2c"
ACCOUNT = "acme.freshdesk.com"


def per_call(function, calls: int) -> float:
    """Microseconds of this process's CPU per call."""
    started = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000, help="lookups per path and round")
    parser.add_argument("--webhooks", type=int, default=2000, help="whole webhooks per round")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sources-lookup-"))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=True).start()
    try:
        url = pg.create_database("lookup")
        migrate(url)
        settings = load_settings({"APP_ENV": "production", "DATABASE_URL": url, "SOURCES_ENCRYPTION_KEY": new_key(),
                                  "FRESHDESK_WEBHOOK_SECRET": "bench-freshdesk-env-secret-4b1a",
                                  "RATE_LIMIT_PER_MINUTE": "1000000000"})
        app = create_app(settings)
        devnull = open(os.devnull, "w")  # the per-webhook log line is still written (and counted), not shown
        for handler in logging.getLogger().handlers + logging.getLogger("ingestion").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        services = app.extensions["ingestion"]
        directory = services.sources
        services.storage.add_credential("freshdesk", ACCOUNT, "hmac", "default", directory.box.seal(SECRET))
        client = app.test_client()
        counter = iter(range(10**9))

        def webhook() -> None:
            body = json.dumps({"ticket": {"id": next(counter), "subject": "lookup bench", "status": 2,
                                          "priority": 1}}).encode()
            signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            response = client.post(f"/api/v1/ingest/webhook/freshdesk/{ACCOUNT}", data=body,
                                   headers={"Content-Type": "application/json", "X-Freshdesk-Signature": signature})
            assert response.status_code == 201, response.json

        payload = {"ticket": {"id": 1}}

        def stored() -> None:
            directory.settle_account(directory.resolve("freshdesk", ACCOUNT, {}), payload, {})

        def bare() -> None:
            directory.settle_account(directory.resolve("freshdesk", None, {}), payload, {})

        def zendesk_header() -> None:
            headers = {"X-Zendesk-Account-Id": "4242"}
            directory.settle_account(directory.resolve("zendesk", None, headers), {"account_id": 4242}, headers)

        def miss() -> None:
            directory._cache.clear()
            directory.resolve("freshdesk", ACCOUNT, {})

        webhook()  # warm: the pool's connection, the first statements
        results: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, function, calls in (("lookup: /freshdesk/<account> (a stored source)", stored, args.calls),
                                          ("lookup: /freshdesk (the environment's source)", bare, args.calls),
                                          ("lookup: /zendesk + X-Zendesk-Account-Id", zendesk_header, args.calls),
                                          ("cache miss: read + decrypt (once per source per worker per "
                                           f"{settings.sources_cache_seconds:g} s)", miss, max(1, args.calls // 20)),
                                          ("whole webhook: a signed Freshdesk create", webhook, args.webhooks)):
                results.setdefault(name, []).append(per_call(function, calls))
        whole = statistics.median(results["whole webhook: a signed Freshdesk create"])
        print(f"medians of {args.rounds} rounds, microseconds of CPU per call (this process; PostgreSQL's "
              "work for the webhook is in another process and not counted, so the shares below are upper bounds)")
        for name, values in results.items():
            median = statistics.median(values)
            share = "" if name.startswith("whole") else f"   {median / whole * 100:5.2f}% of a webhook"
            print(f"  {median:9.2f} µs  {name}{share}")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

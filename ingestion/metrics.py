"""Every Prometheus metric of the service, declared once.

The first block is the contract operators rely on (README: Metrics; dashboards and alerts depend on these exact
names, types and labels); the second adds what operators need beyond it. Labels are
bounded: `endpoint` is a route pattern (or `<unmatched>`), `operation` a fixed name from
the code, `vendor`, `outcome` and `reason` small fixed sets.

Under gunicorn the values live in PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py
before prometheus_client is imported) and /metrics sums them over the workers. Gauges say
how workers combine: in-flight requests add up (`livesum`); the breaker shows the worst
state of any live worker (`livemax`); the outbox backlog and the quarantine gauges are whatever
the scraping worker last measured (`livemostrecent`).
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# Request latency: milliseconds when healthy, up to the ~1.5 s 503 path and beyond.
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A dependency call on loopback or a LAN: sub-millisecond to the timeouts.
DEPENDENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# --- The contract ---------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "ingestion_http_requests_total", "HTTP requests answered, by route pattern and status.",
    ["method", "endpoint", "status"])
HTTP_DURATION = Histogram(
    "ingestion_http_request_duration_seconds", "Time to answer an HTTP request.",
    ["method", "endpoint"], buckets=HTTP_BUCKETS)
HTTP_IN_FLIGHT = Gauge(
    "ingestion_http_requests_in_flight", "HTTP requests being handled right now.",
    multiprocess_mode="livesum")
DB_OPERATIONS = Counter(
    "ingestion_db_operations_total", "Database operations, by outcome (ok, error, unavailable).",
    ["operation", "status"])
DB_DURATION = Histogram(
    "ingestion_db_operation_duration_seconds", "Time of a database operation, waiting for a connection included.",
    ["operation"], buckets=DEPENDENCY_BUCKETS)
REDIS_OPERATIONS = Counter(
    "ingestion_redis_operations_total",
    "Redis operations, by outcome (ok, error; rejected: not attempted because the breaker is open).",
    ["operation", "status"])
REDIS_DURATION = Histogram(
    "ingestion_redis_operation_duration_seconds", "Time of an attempted Redis operation.",
    ["operation"], buckets=DEPENDENCY_BUCKETS)
BREAKER_STATE = Gauge(
    "ingestion_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
    ["name"], multiprocess_mode="livemax")
RATE_LIMITED = Counter(
    "ingestion_rate_limit_exceeded_total", "Requests refused with 429.", ["endpoint"])

# --- Beyond the specification ---------------------------------------------------------
WEBHOOKS = Counter(
    "ingestion_webhooks_total",
    "Authenticated webhook deliveries by outcome: created, already_exists, updated, recorded, stale, "
    "deleted, ignored, rejected (400/422) or unavailable (503).",
    ["vendor", "outcome"])
AUTH_FAILURES = Counter(
    "ingestion_auth_failures_total", "Webhook calls refused with 401, by reason.", ["vendor", "reason"])
DUPLICATE_CACHE = Counter(
    "ingestion_duplicate_cache_lookups_total",
    "Duplicate fast path lookups: hit (answered from Redis), miss, unavailable.", ["result"])
OUTBOX_BACKLOG = Gauge(
    "ingestion_outbox_backlog", "Ticket events committed but not yet published to the stream "
    "(counted up to 100000).", multiprocess_mode="livemostrecent")
EVENTS_PUBLISHED = Counter(
    "ingestion_events_published_total", "Ticket events appended to the Redis stream by the relay.")
PRUNED = Counter(
    "ingestion_pruned_rows_total",
    "Rows retention pruned: deliveries (deleted), event_payloads (emptied), quarantine (deleted).", ["kind"])
QUARANTINED = Counter(
    "ingestion_quarantined_total",
    "Authentic deliveries the normalizer could not read, kept in quarantine, by reason "
    "(not_utf8, not_json, not_object, too_deep, invalid_field, unstorable).", ["vendor", "reason"])
QUARANTINE_REMOVED = Counter(
    "ingestion_quarantine_removed_total",
    "Quarantined deliveries removed unreplayed: evicted past QUARANTINE_MAX_ENTRIES (bound) or "
    "older than QUARANTINE_RETENTION_DAYS (retention).", ["reason"])
QUARANTINE_ENTRIES = Gauge(
    "ingestion_quarantine_entries", "Deliveries waiting in quarantine.", multiprocess_mode="livemostrecent")
QUARANTINE_OLDEST = Gauge(
    "ingestion_quarantine_oldest_age_seconds", "Age of the oldest delivery waiting in quarantine (0: none).",
    multiprocess_mode="livemostrecent")

# The reconciler (python -m ingestion reconcile / backfill).
RECONCILE_TICKETS = Counter(
    "ingestion_reconcile_tickets_total",
    "Tickets the reconciler read from a vendor's API, by outcome: repaired (the webhooks missed the "
    "ticket or left it behind an older version), enriched (same version, fields the webhooks never "
    "carried), unchanged, stale (older than stored).", ["vendor", "outcome"])
RECONCILE_PAGES = Counter(
    "ingestion_reconcile_pages_total", "Export pages the reconciler fetched from a vendor's API.", ["vendor"])
RECONCILE_API_ERRORS = Counter(
    "ingestion_reconcile_api_errors_total",
    "Failed calls to a vendor's API, by HTTP status (or timeout, connection, invalid).", ["vendor", "status"])
RECONCILE_LAST_SUCCESS = Gauge(
    "ingestion_reconcile_last_success_timestamp_seconds",
    "When a reconcile pass last reached the end of a vendor's export (Unix time).", ["vendor", "account"],
    multiprocess_mode="max")

REPLICA_READS = Counter(
    "ingestion_db_replica_reads_total",
    "Display-only reads (read API, console) when DATABASE_READ_URL is set, by where they were "
    "answered: replica, or primary (the replica was down or had just failed).", ["served_by"])


_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered. prometheus_client validates the labels and
    takes a lock on every `labels()` call; a request asks for about ten children, always
    the same few, so each is looked up once per process. Label values
    are bounded (see above), and so is this dictionary."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


class _SettledWorkerFiles(MultiProcessCollector):
    """prometheus_client's MultiProcessCollector, minus the files still empty.

    A worker creates its file (`open(..., "a+b")`) and sizes it a moment later. A scrape
    that globs the directory in between reads zero bytes, and the stock collector fails on
    them (struct.error): /metrics answered 500, seen in a drill right after gunicorn
    started. A worker killed in that moment would leave the empty file, and every scrape
    would fail after it. An empty file holds no sample, so skipping it loses nothing.
    """

    def collect(self):
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= 8:  # the header: how much of the file is used
                    files.append(path)
            except FileNotFoundError:  # a dead worker's live gauge, removed since the glob
                continue
        return self.merge(files, accumulate=True)


def summed_registry() -> Any:
    """Where every worker's values are summed: a registry over PROMETHEUS_MULTIPROC_DIR
    under gunicorn, the process's own registry without it (development server, tests)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    _SettledWorkerFiles(registry)
    return registry

"""GET /health: is this instance able to take webhooks?

The database is required (no database, no 2xx): 503 "unhealthy" takes the instance out
of the load balancer. Redis only makes the service faster and feeds the stream, so its
absence is 200 "degraded". A read replica (DATABASE_READ_URL) is reported when one is
configured, and never changes the status: the read API and the console fall back to the
primary without it, and webhooks never use it. The checks run side by side in threads and the probe waits
for them at most CHECK_TIMEOUT: a dependency that accepts connections but never answers
(a frozen server) is reported unavailable instead of hanging the probe, while its thread
is left to finish whenever the dependency does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ChecksTimedOut

from flask import Blueprint, jsonify
from flask.wrappers import Response

from .current import services

CHECK_TIMEOUT = 1.0

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> Response:
    svc = services()
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="health")
    database = pool.submit(svc.storage.database_status, CHECK_TIMEOUT)
    redis = pool.submit(svc.redis_status)
    replica = pool.submit(svc.storage.reads.check, CHECK_TIMEOUT) if svc.storage.reads.replica else None
    pool.shutdown(wait=False)  # never wait for a hung check beyond the deadlines below
    try:
        database_status = database.result(timeout=CHECK_TIMEOUT + 0.5)
    except ChecksTimedOut:
        database_status = "unavailable"
    try:
        redis_status = redis.result(timeout=CHECK_TIMEOUT)
    except ChecksTimedOut:
        redis_status = "unavailable"
    if database_status != "ok":
        status, code = "unhealthy", 503
    elif redis_status == "unavailable":
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    checks = {"database": database_status, "redis": redis_status}
    if replica is not None:
        try:
            checks["replica"] = "ok" if replica.result(timeout=CHECK_TIMEOUT) else "unavailable"
        except ChecksTimedOut:
            checks["replica"] = "unavailable"
    response = jsonify(status=status, checks=checks)
    response.status_code = code
    return response


@blueprint.get("/health/live")
def live() -> Response:
    """This process answers HTTP: for liveness and readiness probes.

    No dependency is checked, on purpose. During a database outage the instance still
    answers each webhook with 503 and a short Retry-After, which the vendors honour; a
    readiness probe on /health would take every instance out of the load balancer at
    once, and the vendors would get the proxy's own 503 without Retry-After instead.
    """
    return jsonify(status="alive")

"""GET /health: is this instance able to take webhooks?

The database is required (no database, no 2xx): 503 "unhealthy" takes the instance out
of the load balancer. Redis only makes the service faster and feeds the stream, so its
absence is 200 "degraded". Each check is bounded to about a second, so a hung
dependency never hangs the probe.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.wrappers import Response

from .services import services

CHECK_TIMEOUT = 1.0

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> Response:
    svc = services()
    database = "ok" if svc.storage.check(CHECK_TIMEOUT) else "unavailable"
    redis = svc.redis_status()
    if database != "ok":
        status, code = "unhealthy", 503
    elif redis == "unavailable":
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    response = jsonify(status=status, checks={"database": database, "redis": redis})
    response.status_code = code
    return response

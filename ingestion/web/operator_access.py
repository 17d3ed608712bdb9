"""Who may read the operator endpoints (/metrics, /openapi.yaml).

Both are open unless configured: Prometheus usually scrapes each instance directly, and
nginx does not route /metrics from outside. Where gunicorn is reachable by others, an
operator can require a bearer token (METRICS_TOKEN, rotation with METRICS_TOKEN_PREVIOUS)
and/or a client address inside METRICS_ALLOWED_NETWORKS; with both set, both must pass.
The client address is the one rate limiting uses (the socket peer, or the entry the
TRUSTED_PROXY_COUNT-th proxy appended to X-Forwarded-For).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

from flask import request

from ..config import Settings
from ..errors import OperatorForbidden, OperatorUnauthorized
from ..verifiers import any_equal

log = logging.getLogger(__name__)


def _address_allowed(networks: tuple) -> bool:
    try:
        address = ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def operator_only(settings: Settings) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator enforcing METRICS_ALLOWED_NETWORKS and METRICS_TOKEN."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if settings.metrics_allowed_networks and not _address_allowed(settings.metrics_allowed_networks):
                raise OperatorForbidden()
            if settings.metrics_tokens:
                scheme, _, provided = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not any_equal(provided.strip(), settings.metrics_tokens):
                    raise OperatorUnauthorized()
            return view(*args, **kwargs)

        return guarded

    return decorate


def log_posture(settings: Settings) -> None:
    """Once at start: say whether the operator endpoints are open."""
    if not settings.metrics_tokens and not settings.metrics_allowed_networks:
        log.info("/metrics and /openapi.yaml answer every client that reaches this process; "
                 "set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS to restrict them")

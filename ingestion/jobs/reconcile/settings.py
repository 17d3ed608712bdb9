"""The reconciler's settings (RECONCILE_*), read once from the environment beside the
service's own. The vendors' API access is part of the service's settings
(`Settings.vendor_apis`: each vendor's export.py reads its own variables, vetted with
every other credential); a vendor whose API is not configured is not reconciled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ...variables import number


@dataclass(frozen=True)
class ReconcileSettings:
    #: Seconds between passes of `python -m ingestion reconcile`.
    interval: int = 900
    #: Seconds a time-based export (Freshdesk, Intercom, HubSpot) starts before where the
    #: last pass got to.
    overlap: int = 300
    #: How far back the very first pass looks (seconds), when no cursor is stored yet.
    lookback: int = 86400
    requests_per_minute: float = 10.0
    timeout: float = 30.0
    max_attempts: int = 5
    metrics_port: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ReconcileSettings":
        env = os.environ if env is None else env
        return cls(
            interval=number(env, "RECONCILE_INTERVAL", 900, 1, 86400),
            overlap=number(env, "RECONCILE_OVERLAP", 300, 0, 86400),
            lookback=number(env, "RECONCILE_LOOKBACK", 86400, 60, 366 * 86400),
            requests_per_minute=number(env, "RECONCILE_REQUESTS_PER_MINUTE", 10.0, 0.1, 6000.0, kind=float),
            timeout=number(env, "RECONCILE_TIMEOUT", 30.0, 0.1, 600.0, kind=float),
            max_attempts=number(env, "RECONCILE_MAX_ATTEMPTS", 5, 1, 100),
            metrics_port=number(env, "RECONCILE_METRICS_PORT", 0, 0, 65535),
        )

"""Reconcilers for tests: each against the fake vendor API (fake_vendor_api.py) and the
real PostgreSQL, with a client whose waits are recorded instead of slept."""

from __future__ import annotations

from collections.abc import Mapping

from ingestion.jobs.reconcile.client import VendorAPI
from ingestion.jobs.reconcile.engine import Reconciler
from ingestion.jobs.reconcile.settings import ReconcileSettings
from ingestion.storage import Storage
from ingestion.vendors import VENDORS, load_settings


class Reconcilers:
    """`build(vendor, **overrides)`: a Reconciler of the environment (with overrides);
    `sleeps`: every wait its clients asked for; `close()` closes their storages."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = environment
        self.sleeps: list[float] = []
        self._opened: list[Storage] = []

    def __call__(self, vendor: str, **overrides: str) -> Reconciler:
        env = {**self.environment, **overrides}
        settings, options = load_settings(env), ReconcileSettings.from_env(env)
        storage = Storage(settings)
        self._opened.append(storage)
        access = settings.vendor_apis[vendor]
        client = VendorAPI(vendor, access, requests_per_minute=options.requests_per_minute,
                           timeout=options.timeout, max_attempts=options.max_attempts,
                           breaker_threshold=settings.circuit_breaker_threshold,
                           breaker_timeout=settings.circuit_breaker_timeout, sleep=self.sleeps.append)
        return Reconciler(settings, options, {v.name: v for v in VENDORS}[vendor], access, storage, client=client)

    def close(self) -> None:
        for storage in self._opened:
            storage.close()


def events(db, kind: str = "reconciliation") -> list[dict]:
    """(external_id, outcome) of the stored events of a kind, in order."""
    return db.execute("SELECT t.external_id, e.outcome FROM events e JOIN tickets t ON t.id = e.ticket_id "
                      "WHERE e.event_type = %s ORDER BY e.id", (kind,)).fetchall()

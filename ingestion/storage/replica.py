"""Display-only reads from a streaming replica (DATABASE_READ_URL), the primary as fallback.

Why: the read API and the console scan history (events pages, payload searches, the
overview's counts); on a busy primary those scans compete with the webhook path for CPU,
cache and I/O. A hot standby answers them from the same data, a little behind.

What reads here, and what never does:
- here: reads whose answer is only shown (the read API's ticket and its events, the
  console's events, ticket, overview, quarantine list and entry);
- never: the webhook path, the jobs (relay, reconcile, rebuild, redact, replay), and any
  read that decides a write or shows what the reader has just changed (the bulk replay's
  count and progress, an entry right after its replay). A replica may lag, and those must
  see the primary.

When the replica cannot answer (down, refusing connections, a query cancelled by recovery
that three attempts did not get past), the read goes to the primary, and this process
leaves the replica alone for REPLICA_RETRY_SECONDS before trying it again: a replica that
is down costs one short wait per worker every few seconds, never a failed page. Replication
lag is not measured: a page may be a moment behind the webhook that was just answered
(README: Read replica).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from ..config import Settings
from ..errors import DatabaseUnavailable
from ..metrics import REPLICA_READS, child
from .pool import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long a read waits for a replica connection before it goes to the primary.
REPLICA_WAIT = 0.25
#: After a failed replica read, how long this process reads from the primary only.
REPLICA_RETRY_SECONDS = 5.0


class Reads:
    """`run` for display-only reads: on the replica when one is configured and answering."""

    def __init__(self, settings: Settings, primary: Database) -> None:
        self.primary = primary
        self.replica = Database(settings, settings.database_read_url, role="replica") \
            if settings.database_read_url else None
        self._skip_until = 0.0

    def open(self) -> None:
        if self.replica is not None:
            self.replica.open()

    def close(self) -> None:
        if self.replica is not None:
            self.replica.close()

    def check(self, timeout: float = 1.0) -> bool:
        """True when the replica lends a connection within `timeout` and answers (/health)."""
        return self.replica is not None and self.replica.check(timeout)

    def run(self, operation: str, work: Callable[[psycopg.Connection], T]) -> T:
        if self.replica is None:
            return self.primary.run(operation, work)
        if time.monotonic() >= self._skip_until:
            try:
                result = self.replica.run(operation, work, timeout=REPLICA_WAIT)
            except DatabaseUnavailable:
                self._skip_until = time.monotonic() + REPLICA_RETRY_SECONDS
                log.warning("replica unavailable: reading from the primary", extra={
                    "operation": operation, "retry_in_seconds": REPLICA_RETRY_SECONDS})
            else:
                child(REPLICA_READS, "replica").inc()
                return result
        result = self.primary.run(operation, work)
        child(REPLICA_READS, "primary").inc()
        return result

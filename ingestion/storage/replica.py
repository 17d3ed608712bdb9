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
is down costs one short wait per worker every few seconds, never a failed page.

A frozen replica (SIGSTOPped, or a host that vanished while its kernel still answers)
never answers a query already sent, and its statement_timeout is enforced by the frozen
server itself: a read would hold its worker until gunicorn's timeout. So each replica
read has a watchdog: past DB_STATEMENT_TIMEOUT_MS and a second, it shuts the
connection's socket, psycopg raises, and the read goes to the primary. Replication
lag is not measured: a page may be a moment behind the webhook that was just answered
(README: Read replica).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
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
#: Beyond the statement timeout, how long a replica read may take before its watchdog cuts it.
WATCHDOG_MARGIN = 1.0


def _cut(conn: psycopg.Connection) -> None:
    """Shut `conn`'s socket under the read blocked on it: the read returns at once, and
    psycopg raises OperationalError (the connection is then broken, and dropped)."""
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg.Error):  # already closed: nothing to cut
        pass
    log.warning("replica read cut by its watchdog: the replica does not answer")


class Reads:
    """`run` for display-only reads: on the replica when one is configured and answering."""

    def __init__(self, settings: Settings, primary: Database) -> None:
        self.primary = primary
        self.replica = Database(settings, settings.database_read_url, role="replica") \
            if settings.database_read_url else None
        self._skip_until = 0.0
        self.read_limit = settings.db_statement_timeout_ms / 1000 + WATCHDOG_MARGIN

    def open(self) -> None:
        if self.replica is not None:
            self.replica.open()

    def close(self) -> None:
        if self.replica is not None:
            self.replica.close()

    def _watched(self, work: Callable[[psycopg.Connection], T]) -> Callable[[psycopg.Connection], T]:
        def watched(conn: psycopg.Connection) -> T:
            watchdog = threading.Timer(self.read_limit, _cut, (conn,))
            watchdog.daemon = True
            watchdog.start()
            try:
                return work(conn)
            finally:
                watchdog.cancel()

        return watched

    def check(self, timeout: float = 1.0) -> bool:
        """True when the replica lends a connection within `timeout` and answers (/health)."""
        return self.replica is not None and self.replica.check(timeout)

    def run(self, operation: str, work: Callable[[psycopg.Connection], T]) -> T:
        if self.replica is None:
            return self.primary.run(operation, work)
        if time.monotonic() >= self._skip_until:
            try:
                result = self.replica.run(operation, self._watched(work), timeout=REPLICA_WAIT)
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

"""PostgreSQL: every query the service runs, and the one place its errors become ours.

- replica.py: `Reads.run`, for reads that are only shown (the read API, the console):
  on the replica (DATABASE_READ_URL) when there is one and it answers;
- pool.py: the connection pool, and `Database.run`, through which every operation goes,
  on the request path and in the offline jobs alike (metrics, a retry when a pooled
  connection broke while idle, database errors translated into the service's);
- one module per concern, each with its named queries and the operations that run them:
  tickets.py (the webhook path, the read API), quarantine.py, outbox.py (the relay,
  delivery retention), history.py (rebuild, redaction, event retention), reconcile.py,
  sources.py (vendor accounts and their sealed credentials);
- functions.sql: the ticket logic in SQL, each function defined once; migrate.py and
  migrations/: the versioned schema.
Nothing outside this package writes SQL.
"""

from __future__ import annotations

from ..config import Settings
from .console_events import ConsoleEventStore
from .console_overview import ConsoleOverviewStore
from .console_quarantine import ConsoleQuarantineStore
from .console_ticket import ConsoleTicketStore
from .history import HistoryStore
from .outbox import OutboxStore
from .pool import Database
from .quarantine import QuarantineStore
from .reconcile import ReconcileStore
from .replica import Reads
from .sources import SourceStore
from .tickets import TicketStore


class Storage(TicketStore, QuarantineStore, OutboxStore, HistoryStore, ReconcileStore, SourceStore,
              ConsoleTicketStore, ConsoleQuarantineStore, ConsoleEventStore, ConsoleOverviewStore):
    """Every operation on PostgreSQL, by concern (the mixins' modules), over one pool, and
    a replica's for display-only reads when DATABASE_READ_URL is set (`reads`: replica.py)."""

    def __init__(self, settings: Settings) -> None:
        self.database = Database(settings)
        self.reads = Reads(settings, self.database)

    def open(self) -> None:
        """Open the pools in this process (gunicorn calls it after the fork)."""
        self.database.open()
        self.reads.open()

    def close(self) -> None:
        self.reads.close()
        self.database.close()


__all__ = ["Database", "Storage"]

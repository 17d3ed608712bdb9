"""The connection pool's lifecycle, and the one place database errors become domain errors.

Why it works this way: docs/design.md, "Database errors, in one place".
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import set_json_dumps
from psycopg_pool import ConnectionPool, PoolTimeout

from ..config import Settings
from ..errors import DatabaseUnavailable, SchemaMissing, UnstorablePayload
from ..json_body import dumps as json_text
from ..metrics import DB_DURATION, DB_OPERATIONS, child

log = logging.getLogger(__name__)
#: Every JSON value the service sends PostgreSQL (Jsonb: a ticket's fields and changes, a
#: rebuild's readings, summaries) is written as the body sent it: a number past a float's
#: range (`1e400`, a BigNumber) as its text, where psycopg's default json.dumps wrote
#: `Infinity`, which PostgreSQL refuses (a 422 "database refused" for a valid body).
set_json_dumps(json_text)
T = TypeVar("T")
#: While the database is known to be down (the last operation could not reach it), a
#: request waits this long for a connection instead of DB_POOL_TIMEOUT. Vendors retry
#: in bursts: with every worker busy for the full timeout, requests would queue behind
#: each other and their 503s take a multiple of it. The pool keeps reconnecting in the
#: background, and the first operation that succeeds ends the outage.
OUTAGE_WAIT = 0.25

#: A connection that broke while idle in the pool (the server restarted) fails on first
#: use; retrying on a fresh connection hides that from the vendor. Ingestion is idempotent,
#: so a retry can at worst report `already_exists` for a write whose reply was lost.
ATTEMPTS = 3

#: Health check: proves a connection can be borrowed, the server answers, and the
#: database holds the schema (a wrong database in DATABASE_URL answers `SELECT 1` too, and
#: then every webhook got a 503 while /health said healthy).
PING = "SELECT 1 FROM schema_migrations LIMIT 1"
#: What the database says when a table, function or column the code names is not there.
_NO_SCHEMA = (pg_errors.UndefinedTable, pg_errors.UndefinedFunction, pg_errors.UndefinedColumn)


#: How long past DB_STATEMENT_TIMEOUT_MS a connection waits for the server's answer. A
#: live server ends a statement at its timeout itself; one that is frozen (SIGSTOPped, a
#: host gone while its kernel still acknowledges) never answers, and every sync worker
#: would wait on it until gunicorn's timeout, /health queued behind them.
ANSWER_MARGIN = 1.0
#: The longest statement_timeout an operation sets for itself, past DB_STATEMENT_TIMEOUT_MS
#: when that is set lower: the console's searches (console_events.SEARCH_TIMEOUT_MS). The
#: wait for an answer covers it, so such a search ends in its own "took too long" page.
LONGEST_OWN_TIMEOUT_MS = 3000


class AnswerBoundConnection(psycopg.Connection):
    """A connection whose every wait for the server ends after `answer_within` seconds
    (psycopg's own wait timeout: no thread, no timer), raising its _WaitTimeout, an
    OperationalError; the connection is then closed (Database._attempt), since its
    protocol state is unknown."""

    answer_within: float | None = None

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):  # type: ignore[override]
        return super().wait(gen, interval, self.answer_within if timeout is None else timeout)


#: What PostgreSQL (or the driver, encoding a parameter) says of a value it cannot store.
REFUSED_VALUES = (psycopg.DataError, pg_errors.ProgramLimitExceeded, UnicodeEncodeError)


def unstorable(error: BaseException) -> UnstorablePayload:
    """The service's error for a value refused (one of REFUSED_VALUES): a 422, never a 500."""
    if isinstance(error, UnicodeEncodeError):
        return UnstorablePayload("The payload contains text that cannot be encoded as UTF-8")
    reason = getattr(getattr(error, "diag", None), "message_primary", None) or str(error)
    return UnstorablePayload(f"The database refused a value in the payload: {reason}")


class Database:
    """Owns one psycopg pool per process. Created closed; opened in the process that uses it."""

    def __init__(self, settings: Settings, url: str | None = None, role: str = "") -> None:
        """`url` and `role`: a second pool (storage/replica.py) to `url`, whose operations
        are counted as `<role>_<operation>`, so a replica's trouble never reads as the primary's."""
        self.retry_after = settings.retry_after_seconds
        self.pool_timeout = settings.db_pool_timeout
        self.prefix = f"{role}_" if role else ""
        self.role = role or "primary"
        self._in_outage = False
        self._pid: int | None = None
        self._pool = ConnectionPool(
            url or settings.database_url,
            # Never connect before gunicorn forks: sockets must not be shared by workers.
            open=False,
            # A sync worker runs one request at a time: one connection (DB_POOL_SIZE) is
            # enough; more only helps threaded workers. A replica's pool connects when first
            # asked: a replica that is down at start is then tried when a read wants it
            # rather than by a reconnect loop in every worker.
            min_size=0 if role else 1,
            max_size=settings.db_pool_size,
            # How long a request waits for a connection before answering 503: short, so
            # an outage gives a fast 503 + Retry-After, never a hang until gunicorn's timeout.
            timeout=settings.db_pool_timeout,
            # Give up on a failing reconnection quickly; the next request that needs a
            # connection starts a new attempt, so recovery follows the database within seconds
            # instead of waiting out the pool's exponential backoff.
            reconnect_timeout=2.0,
            name=f"ingestion{'-' + role if role else ''}",
            connection_class=type("AnswerBound", (AnswerBoundConnection,), {
                "answer_within": max(settings.db_statement_timeout_ms, LONGEST_OWN_TIMEOUT_MS) / 1000 + ANSWER_MARGIN}),
            kwargs={
                # Each webhook is a single statement, so autocommit makes it exactly one
                # round trip and one transaction (no separate BEGIN / COMMIT).
                "autocommit": True,
                "connect_timeout": settings.db_connect_timeout,
                "application_name": f"ingestion{'-' + role if role else ''}",
                # Times come back in UTC whatever the server's or the database's zone: in
                # another zone, a time at the calendar's edge (9999-12-31T23:59:59Z, which
                # vendors' placeholders use) lies past year 9999, which Python cannot hold,
                # and a stored ticket could no longer be read.
                "options": f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC",
                # A peer that vanishes without closing (a partition, a dead host) is noticed
                # in seconds rather than at gunicorn's timeout: unacknowledged writes give up
                # after 5 s, idle connections are probed.
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
                "tcp_user_timeout": 5000,
            },
        )

    def open(self) -> None:
        """Open the pool in this process (idempotent). gunicorn calls it after the fork."""
        if self._pid != os.getpid():
            self._pool.open(wait=False)
            self._pid = os.getpid()

    def close(self) -> None:
        if self._pid == os.getpid():
            self._pool.close()
            self._pid = None

    def run(self, operation: str, work: Callable[[psycopg.Connection], T], timeout: float | None = None) -> T:
        """Every database operation: metrics, a retry when a pooled connection turns out
        broken, error translation. `work` gets an autocommit connection (it opens a
        transaction when it needs several statements in one) and may run again, from the
        start, on a fresh connection: it must be safe to repeat (every operation here is:
        a rolled-back transaction left nothing behind)."""
        started = time.perf_counter()
        status = "error"
        if timeout is None:
            timeout = OUTAGE_WAIT if self._in_outage else self.pool_timeout
        try:
            result = self._attempt(work, timeout)
            status = "ok"
            self._in_outage = False
            return result
        except DatabaseUnavailable:
            status = "unavailable"
            self._in_outage = True
            raise
        finally:
            child(DB_OPERATIONS, self.prefix + operation, status).inc()
            child(DB_DURATION, self.prefix + operation).observe(time.perf_counter() - started)

    def _attempt(self, work: Callable[[psycopg.Connection], T], timeout: float | None) -> T:
        self.open()
        for attempt in range(1, ATTEMPTS + 1):
            broken = False
            try:
                with self._pool.connection(timeout=timeout) as conn:
                    try:
                        return work(conn)
                    except pg_errors._WaitTimeout:
                        conn.close()  # mid-protocol: never lent again
                        raise
                    except psycopg.OperationalError:
                        broken = conn.broken
                        raise
            except PoolTimeout:
                raise DatabaseUnavailable(self.retry_after) from None
            except pg_errors._WaitTimeout:
                log.warning("the database did not answer in time", extra={"database": self.role})
                raise DatabaseUnavailable(self.retry_after) from None
            except REFUSED_VALUES as error:
                raise unstorable(error) from None
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as error:
                # A deadlock or serialization failure: two transactions of several statements
                # (batches) took the same tickets' locks in another order. PostgreSQL rolled
                # this one back whole, so running it again is safe.
                if attempt < ATTEMPTS:
                    log.info("transaction rolled back by the database, retrying", extra={
                        "attempt": attempt, "sqlstate": error.sqlstate})
                    continue
                raise DatabaseUnavailable(self.retry_after) from None
            except psycopg.OperationalError as error:
                if broken and attempt < ATTEMPTS:
                    log.warning("database connection lost, retrying on a fresh one", extra={
                        "attempt": attempt, "database": self.role})
                    continue
                log.warning("database unavailable", extra={"error": type(error).__name__, "database": self.role})
                raise DatabaseUnavailable(self.retry_after) from None
            except _NO_SCHEMA as error:
                log.error("the database has no schema for this release: run `python -m ingestion migrate`",
                          extra={"sqlstate": error.sqlstate, "database": self.role})
                raise SchemaMissing(self.retry_after) from None
            except psycopg.Error as error:
                # Anything else the database says (a standby refusing writes during a
                # failover, a pooler losing a prepared statement...) is trouble on our side
                # that may pass: 503 lets the vendor retry, where a 500 would lose the ticket.
                log.error("database error", extra={"error": type(error).__name__, "sqlstate": error.sqlstate,
                                                   "database": self.role})
                raise DatabaseUnavailable(self.retry_after) from None
        raise AssertionError("unreachable")

    def check(self, timeout: float = 1.0) -> bool:
        """True when a connection can be borrowed within `timeout` seconds and answers."""
        return self.status(timeout) == "ok"

    def status(self, timeout: float = 1.0) -> str:
        """"ok", "unavailable", or "no schema" (it answers, but was never migrated)."""
        try:
            self.run("ping", lambda conn: conn.execute(PING).fetchone(), timeout=timeout)
        except SchemaMissing:
            return "no schema"
        except DatabaseUnavailable:
            return "unavailable"
        return "ok"

    def in_batches(self, operation: str, query: str, days: int, batch: int, **params: object) -> int:
        """A retention statement (`%(days)s`, `%(batch)s`, and `params`) run batch after
        batch, each its own short transaction, so pruning never holds locks for long.
        Returns the rows."""
        total = 0
        values = {"days": days, "batch": batch, **params}
        while True:
            count = self.run(operation, lambda conn: conn.execute(query, values).rowcount)
            total += count
            if count < batch:
                return total

"""Versioned schema migrations: numbered SQL files applied once each, in order.

`python -m ingestion migrate` (and `make run`) apply what is pending; starting the
service never changes the schema. Each file runs in its own transaction with a short
`lock_timeout`: a migration that would queue behind a long reader (and hold every
webhook behind itself meanwhile) gives up instead, and can be run again. An advisory
lock lets one migrator at a time proceed when several instances start together, and
`schema_migrations` records what was applied.

Files: `migrations/NNNN_name.sql`. An upgrade is a new file; a file that was released is
never edited. A file whose first line is `-- migrate: outside a transaction` runs its
statements one by one instead (each still under `lock_timeout`), for what PostgreSQL
refuses inside a transaction: `CREATE INDEX CONCURRENTLY`, which builds an index on a
large table without blocking its writers. Such a file holds plain statements, each ended
by `;` at the end of a line (no `$$` bodies), and must be safe to run again from the
start (`IF NOT EXISTS`), since a failure leaves the statements before it applied; an
index an interrupted `CONCURRENTLY` build left invalid is dropped and built again.

A migration that must work in many transactions (converting a large table while the
service writes to it) is a Python file, `migrations/NNNN_name.py`, with a function
`apply(conn, lock_timeout)` that gets the autocommit connection: it takes its own
transactions, each under `lock_timeout`, and must be safe to run again from wherever an
earlier run stopped.

Migrations change tables. The SQL functions live in `functions.sql`, each defined once:
after the pending migrations, migrate applies that file whenever its text changed (its
checksum is kept in `schema_functions`), in one transaction, so a change to a rule is
an edit of that file and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ..errors import DatabaseUnavailable, MigrationError

log = logging.getLogger(__name__)

DIRECTORY = Path(__file__).resolve().parent / "migrations"
FUNCTIONS = Path(__file__).resolve().parent / "functions.sql"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.(sql|py)")
#: The first line of a migration that runs outside a transaction (see above).
OUTSIDE_A_TRANSACTION = "-- migrate: outside a transaction"
_CONCURRENT_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(\w+)",
                               re.IGNORECASE)
#: An index of that name that an interrupted build left behind, not usable (indisvalid).
INVALID_INDEX = """
SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relname = %s AND NOT i.indisvalid
"""

#: Serializes migrators across processes and hosts (session-level advisory lock). Taken
#: by polling, not by waiting in pg_advisory_lock(): a migrator waiting inside a
#: statement holds a snapshot, which a CREATE INDEX CONCURRENTLY of the migrator holding
#: the lock would wait for in turn (a deadlock).
MIGRATE_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('ingestion.migrate'))"
LOCK_POLL_SECONDS = 0.2
MIGRATE_UNLOCK = "SELECT pg_advisory_unlock(hashtext('ingestion.migrate'))"
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
#: Applied versions; read by `migrate` and by the start-up check of the service.
APPLIED = "SELECT version FROM schema_migrations ORDER BY version"
#: The checksum of the functions.sql last applied (one row).
FUNCTIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_functions (
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
FUNCTIONS_APPLIED = "SELECT checksum FROM schema_functions"
FUNCTIONS_FORGET = "DELETE FROM schema_functions"
FUNCTIONS_RECORD = "INSERT INTO schema_functions (checksum) VALUES (%s)"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def python(self) -> bool:
        return self.path.suffix == ".py"

    @property
    def transactional(self) -> bool:
        return not self.python and not self.sql.startswith(OUTSIDE_A_TRANSACTION)

    def statements(self) -> list[str]:
        """The statements of a migration that runs outside a transaction, one by one."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        if any("$$" in line for line in lines):
            raise MigrationError(f"{self.path.name}: a migration outside a transaction holds no $$ bodies")
        found, current = [], []
        for line in lines:
            current.append(line)
            if line.rstrip().endswith(";"):
                found.append("\n".join(current).strip())
                current = []
        if "".join(current).strip():
            raise MigrationError(f"{self.path.name}: its last statement does not end with ';'")
        return found


def available(directory: Path = DIRECTORY) -> list[Migration]:
    found = []
    for path in sorted([*directory.glob("*.sql"), *directory.glob("*.py")]):
        if path.name == "__init__.py":
            continue
        match = _NAME.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql (or .py)")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    return sorted(found, key=lambda migration: migration.version)


def latest_version(directory: Path = DIRECTORY) -> int:
    return max(m.version for m in available(directory))


def applied_versions(conn: psycopg.Connection) -> list[int]:
    """Versions applied to this database ([] when migrations never ran)."""
    cursor = conn.cursor(row_factory=tuple_row)
    exists = cursor.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    return [row[0] for row in cursor.execute(APPLIED)] if exists else []


@dataclass
class Applied:
    """What one `migrate` did: the migrations applied, and whether functions.sql was."""

    migrations: list[Migration] = field(default_factory=list)
    functions: bool = False


def functions_checksum(path: Path = FUNCTIONS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migrate(database_url: str, lock_timeout: str = "5s", directory: Path = DIRECTORY,
            functions: Path = FUNCTIONS) -> Applied:
    """Apply every pending migration, then functions.sql if its text changed; returns what
    was applied (nothing: already up to date)."""
    done = Applied()
    try:
        conn = psycopg.connect(database_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        raise DatabaseUnavailable(retry_after=5) from None
    with conn:
        while not conn.execute(MIGRATE_TRY_LOCK).fetchone()[0]:
            time.sleep(LOCK_POLL_SECONDS)
        try:
            conn.execute(VERSION_TABLE)
            conn.execute(FUNCTIONS_TABLE)
            applied = set(applied_versions(conn))
            for migration in available(directory):
                if migration.version in applied:
                    continue
                what = f"migration {migration.version} ({migration.name})"
                record = ("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                          (migration.version, migration.name))
                if migration.python:
                    _apply_python(conn, what, migration, lock_timeout, record)
                elif migration.transactional:
                    _apply(conn, what, migration.sql, lock_timeout, record)
                else:
                    _apply_outside_a_transaction(conn, what, migration, lock_timeout, record)
                log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
                done.migrations.append(migration)
            checksum = functions_checksum(functions)
            if conn.execute(FUNCTIONS_APPLIED).fetchone() != (checksum,):
                _apply(conn, functions.name, functions.read_text(), lock_timeout, (FUNCTIONS_FORGET, ()),
                       (FUNCTIONS_RECORD, (checksum,)))
                log.info("functions applied", extra={"checksum": checksum[:12]})
                done.functions = True
        finally:
            conn.execute(MIGRATE_UNLOCK)
    return done


def _apply(conn: psycopg.Connection, what: str, sql: str, lock_timeout: str, *records: tuple[str, tuple]) -> None:
    """Run `sql` and its bookkeeping in one transaction under `lock_timeout`."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
            conn.execute(sql)
            for statement, params in records:
                conn.execute(statement, params)
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(f"{what} waited more than {lock_timeout} for a lock (a long transaction holds the "
                             "table); nothing was changed by it, run migrate again") from None
    except psycopg.Error as error:
        raise MigrationError(f"{what} failed: {error}") from None


def _apply_python(conn: psycopg.Connection, what: str, migration: Migration, lock_timeout: str,
                  record: tuple[str, tuple]) -> None:
    """Run a Python migration's `apply(conn, lock_timeout)`, then record it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"ingestion_migration_{migration.version}", migration.path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    try:
        module.apply(conn, lock_timeout)
        conn.execute(*record)
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(f"{what} waited more than {lock_timeout} for a lock (a long transaction holds the "
                             "table); what it finished stays done, run migrate again to go on") from None
    except psycopg.Error as error:
        raise MigrationError(f"{what} failed: {error}; what it finished stays done, run migrate again") from None
    finally:
        conn.execute("RESET lock_timeout")


def _apply_outside_a_transaction(conn: psycopg.Connection, what: str, migration: Migration, lock_timeout: str,
                                 record: tuple[str, tuple]) -> None:
    """Run a migration's statements one at a time on the autocommit connection, each under
    `lock_timeout`, then record it. An index left invalid by an earlier, interrupted run
    of the same statement is dropped first (CONCURRENTLY, too), so that the run again
    builds it instead of `IF NOT EXISTS` keeping a useless one."""
    statements = migration.statements()
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    try:
        for number, statement in enumerate(statements, 1):
            index = _CONCURRENT_INDEX.search(statement)
            try:
                if index and conn.execute(INVALID_INDEX, (index.group(1),)).fetchone():
                    log.warning("dropping an index an interrupted migration left invalid",
                                extra={"index": index.group(1)})
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(index.group(1))))
                conn.execute(statement)
            except psycopg.errors.LockNotAvailable:
                raise MigrationError(f"{what} waited more than {lock_timeout} for a lock at its statement {number} "
                                     f"of {len(statements)} (a long transaction holds the table); the statements "
                                     "before it took effect, run migrate again to finish it") from None
            except psycopg.Error as error:
                raise MigrationError(f"{what} failed at its statement {number} of {len(statements)}: {error}; "
                                     "the statements before it took effect") from None
        conn.execute(*record)
    finally:
        conn.execute("RESET lock_timeout")

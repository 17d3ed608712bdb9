"""Versioned schema migrations: numbered SQL files applied once each, in order.

`python -m ingestion migrate` (and `make run`) apply what is pending; starting the
service never changes the schema. Each file runs in its own transaction with a short
`lock_timeout`: a migration that would queue behind a long reader (and hold every
webhook behind itself meanwhile) gives up instead, and can be run again. An advisory
lock lets one migrator at a time proceed when several instances start together, and
`schema_migrations` records what was applied.

Files: `migrations/NNNN_name.sql`. An upgrade is a new file; a file that was released is
never edited. Migrations change tables. The SQL functions live in `functions.sql`, each
defined once: after the pending migrations, migrate applies that file whenever its text
changed (its checksum is kept in `schema_functions`), in one transaction, so a change to
a rule is an edit of that file and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from ..errors import DatabaseUnavailable, MigrationError

log = logging.getLogger(__name__)

DIRECTORY = Path(__file__).resolve().parent / "migrations"
FUNCTIONS = Path(__file__).resolve().parent / "functions.sql"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

#: Serializes migrators across processes and hosts (session-level advisory lock).
MIGRATE_LOCK = "SELECT pg_advisory_lock(hashtext('ingestion.migrate'))"
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


def available(directory: Path = DIRECTORY) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    return found


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
        conn.execute(MIGRATE_LOCK)
        try:
            conn.execute(VERSION_TABLE)
            conn.execute(FUNCTIONS_TABLE)
            applied = set(applied_versions(conn))
            for migration in available(directory):
                if migration.version in applied:
                    continue
                _apply(conn, f"migration {migration.version} ({migration.name})", migration.sql, lock_timeout,
                       ("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name)))
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

"""Versioned schema migrations: numbered SQL files applied once each, in order.

`python -m ingestion migrate` (and `make run`) apply what is pending; starting the
service never changes the schema. Each file runs in its own transaction with a short
`lock_timeout`: a migration that would queue behind a long reader (and hold every
webhook behind itself meanwhile) gives up instead, and can be run again. An advisory
lock lets one migrator at a time proceed when several instances start together, and
`schema_migrations` records what was applied.

Files: `migrations/NNNN_name.sql`. An upgrade is a new file; a file that was released is
never edited.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

DIRECTORY = Path(__file__).resolve().parent / "migrations"
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


class MigrationError(RuntimeError):
    """A migration could not be applied (its lock was not granted in time, or it failed)."""


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


def migrate(database_url: str, lock_timeout: str = "5s", directory: Path = DIRECTORY) -> list[Migration]:
    """Apply every pending migration; returns those applied (none: already up to date)."""
    done: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(MIGRATE_LOCK)
        try:
            conn.execute(VERSION_TABLE)
            applied = set(applied_versions(conn))
            for migration in available(directory):
                if migration.version in applied:
                    continue
                try:
                    with conn.transaction():
                        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
                        conn.execute(migration.sql)
                        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                     (migration.version, migration.name))
                except psycopg.errors.LockNotAvailable:
                    raise MigrationError(f"migration {migration.version} ({migration.name}) waited more than "
                                         f"{lock_timeout} for a lock (a long transaction holds the table); "
                                         "nothing was changed by it, run migrate again") from None
                except psycopg.Error as error:
                    raise MigrationError(f"migration {migration.version} ({migration.name}) failed: {error}") from None
                log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
                done.append(migration)
        finally:
            conn.execute(MIGRATE_UNLOCK)
    return done

"""The live schema in one place: the migrations from an empty database produce exactly the
schema the code expects, which schema.sql (tables, indexes, constraints) and
ingestion/storage/functions.sql (the functions) state (as procrastinate's migration test
does). A migration that forgets something, or a schema.sql that drifts from them, fails here.

The comparison reads the catalog: every table's columns (type, nullability, default),
every constraint and index (by definition), every function (by its whole definition),
what each relation is (partitioned or not, and by what), the default partition, and
every trigger.
The monthly partitions of `events` are not compared: which months exist depends on the
day the schema was made (storage/partitions.py). Column order is not compared (migrations add columns at the end, schema.sql is written
to be read), nor whether a check was validated (migrations add widened checks NOT VALID,
so that no large table is scanned under a lock; new rows are checked either way).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg

from ingestion.storage.migrate import FUNCTIONS, migrate

ROOT = Path(__file__).resolve().parent.parent
#: migrate's own bookkeeping, not part of the schema the code reads.
BOOKKEEPING = ("schema_migrations", "schema_functions")

COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND a.attnum > 0 AND NOT a.attisdropped
   AND c.relname <> ALL(%s)
"""
CONSTRAINTS = """
SELECT c.relname, k.conname, regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '')
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND NOT c.relispartition AND c.relname <> ALL(%s)
"""
INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = 'public' AND NOT t.relispartition AND t.relname <> ALL(%s)
"""
#: What each relation is (a table, a partitioned table, a view, a sequence...), how a
#: partitioned one is partitioned and which default partition it has, and every trigger.
RELATIONS = """
SELECT c.relname, c.relkind, pg_get_partkeydef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
   AND c.relname <> ALL(%s)
"""
DEFAULT_PARTITIONS = """
SELECT parent.relname, child.relname
  FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid JOIN pg_class parent ON parent.oid = i.inhparent
 WHERE pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
"""
TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND NOT t.tgisinternal AND NOT c.relispartition
"""
FUNCTIONS_DEFINED = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
"""


def catalog(url: str) -> dict[str, set]:
    with psycopg.connect(url) as conn:
        return {name: set(conn.execute(query, (list(BOOKKEEPING),) if "%s" in query else ()).fetchall())
                for name, query in (("columns", COLUMNS), ("constraints", CONSTRAINTS), ("indexes", INDEXES),
                                    ("functions", FUNCTIONS_DEFINED), ("relations", RELATIONS),
                                    ("default partitions", DEFAULT_PARTITIONS), ("triggers", TRIGGERS))}


def test_the_migrations_from_empty_produce_exactly_schema_sql_and_functions_sql(postgres):
    migrated = postgres.create_database(f"schema_migrated_{uuid.uuid4().hex[:8]}")
    declared = postgres.create_database(f"schema_declared_{uuid.uuid4().hex[:8]}")
    migrate(migrated)
    with psycopg.connect(declared, autocommit=True) as conn:
        conn.execute((ROOT / "schema.sql").read_text())
        conn.execute(FUNCTIONS.read_text())
    got, expected = catalog(migrated), catalog(declared)
    for part in got:
        assert got[part] == expected[part], (part, sorted(got[part] - expected[part]), sorted(expected[part] - got[part]))
    assert len(expected["columns"]) > 50 and len(expected["functions"]) >= 8
    assert ("events", "p", "RANGE (received_at)") in expected["relations"]  # partitioned by month
    assert ("events", "events_default") in expected["default partitions"]


def defined(text: str) -> set[str]:
    return set(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)", text, re.IGNORECASE))


def test_each_function_is_defined_in_one_file():
    """Migrations change tables; a function's text lives in functions.sql (migrations 2 and
    6 restated ingest_event() whole before it existed, and stay as released). schema.sql
    holds only the ids' default, which tables need before functions.sql can run."""
    released = {"0001_baseline.sql", "0002_ticket_history.sql", "0006_vendor_deletions.sql",
                "0014_partitioned_events.py"}  # (its trigger function copies rows while it converts, then goes)
    migrations = sorted((ROOT / "ingestion" / "storage" / "migrations").glob("*"))
    assert any(path.suffix == ".py" for path in migrations)  # Python migrations are read too
    for path in migrations:
        if path.suffix in (".sql", ".py") and path.name not in released:
            assert not defined(path.read_text()), path.name
    assert defined((ROOT / "schema.sql").read_text()) == {"ingestion_uuid_v7"}
    assert "ingestion_uuid_v7" not in defined(FUNCTIONS.read_text())

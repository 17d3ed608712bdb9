"""Sources: the vendor accounts and their credentials (ingestion/sources.py), as stored.

Secrets arrive here sealed (Fernet tokens, ingestion/secret_box.py) and leave sealed:
nothing in this module sees a secret in clear. A credential named `env` holds no value:
it stands for the vendor's environment variable of its method.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .pool import Database

ENV = "env"

#: One source and its credentials (LEFT JOIN: a source may have none left).
SOURCE = """
SELECT s.enabled, c.method, c.name, c.current, c.previous
  FROM sources s LEFT JOIN source_credentials c ON c.vendor = s.vendor AND c.account = s.account
 WHERE s.vendor = %(vendor)s AND s.account = %(account)s
 ORDER BY c.method, c.name
"""

LIST = """
SELECT s.vendor, s.account, s.enabled, s.created_at, s.updated_at, i.vendor_account_id,
       c.method, c.name, c.current IS NOT NULL AS stored, c.previous IS NOT NULL AS rotating,
       c.updated_at AS credential_updated_at
  FROM sources s LEFT JOIN source_credentials c ON c.vendor = s.vendor AND c.account = s.account
       LEFT JOIN account_ids i ON i.vendor = s.vendor AND i.account = s.account
 WHERE %(vendor)s::text IS NULL OR s.vendor = %(vendor)s
 ORDER BY s.vendor, s.account, c.method, c.name
"""

#: The vendor's id for an account named otherwise: the one bound before, else this one,
#: bound now (the INSERT's row, or, when another request bound one first, that one).
BIND_ACCOUNT_ID = """
WITH bound AS (
    INSERT INTO account_ids (vendor, account, vendor_account_id) VALUES (%(vendor)s, %(account)s, %(claimed)s)
    ON CONFLICT (vendor, account) DO NOTHING
    RETURNING vendor_account_id
)
SELECT vendor_account_id FROM bound
UNION ALL
SELECT vendor_account_id FROM account_ids WHERE vendor = %(vendor)s AND account = %(account)s
LIMIT 1
"""

HAS_CREDENTIAL = """
SELECT 1 FROM source_credentials
 WHERE vendor = %(vendor)s AND account = %(account)s AND method = %(method)s AND name = %(name)s
"""

READ_ACCOUNT_ID = "SELECT vendor_account_id FROM account_ids WHERE vendor = %(vendor)s AND account = %(account)s"

UNBIND_ACCOUNT_ID = "DELETE FROM account_ids WHERE vendor = %(vendor)s AND account = %(account)s"

ADD_SOURCE = """
INSERT INTO sources (vendor, account) VALUES (%(vendor)s, %(account)s)
ON CONFLICT (vendor, account) DO NOTHING
"""

ADD_CREDENTIAL = """
INSERT INTO source_credentials (vendor, account, method, name, current)
VALUES (%(vendor)s, %(account)s, %(method)s, %(name)s, %(sealed)s)
ON CONFLICT (vendor, account, method, name) DO NOTHING
"""

#: The new value becomes current; the current one stays valid as previous until retired
#: (a previous value still there from an unfinished rotation is replaced).
ROTATE = """
UPDATE source_credentials SET previous = current, current = %(sealed)s, updated_at = now()
 WHERE vendor = %(vendor)s AND account = %(account)s AND method = %(method)s AND name = %(name)s
   AND name <> 'env'
"""

RETIRE_PREVIOUS = """
UPDATE source_credentials SET previous = NULL, updated_at = now()
 WHERE vendor = %(vendor)s AND account = %(account)s AND method = %(method)s AND name = %(name)s
   AND previous IS NOT NULL
"""

REMOVE_CREDENTIAL = """
DELETE FROM source_credentials
 WHERE vendor = %(vendor)s AND account = %(account)s AND method = %(method)s AND name = %(name)s
"""

SET_ENABLED = """
UPDATE sources SET enabled = %(enabled)s, updated_at = now() WHERE vendor = %(vendor)s AND account = %(account)s
"""

TOUCH = "UPDATE sources SET updated_at = now() WHERE vendor = %(vendor)s AND account = %(account)s"

REMOVE_SOURCE = """
WITH unbound AS (DELETE FROM account_ids WHERE vendor = %(vendor)s AND account = %(account)s)
DELETE FROM sources WHERE vendor = %(vendor)s AND account = %(account)s
"""

#: Every sealed value, for the key's start-up check and `sources rewrap`.
SEALED = """
SELECT vendor, account, method, name, current, previous FROM source_credentials
 WHERE current IS NOT NULL ORDER BY vendor, account, method, name
"""
REWRAP = """
UPDATE source_credentials SET current = %(current)s, previous = %(previous)s
 WHERE vendor = %(vendor)s AND account = %(account)s AND method = %(method)s AND name = %(name)s
"""


@dataclass(frozen=True)
class StoredCredential:
    method: str
    name: str
    current: bytes | None  # sealed; None for `env`
    previous: bytes | None


@dataclass(frozen=True)
class StoredSource:
    enabled: bool
    credentials: tuple[StoredCredential, ...]


class SourceStore:
    """Reading and managing sources (the webhook guard's lookups, `python -m ingestion sources`)."""

    database: Database

    def source(self, vendor: str, account: str) -> StoredSource | None:
        params = {"vendor": vendor, "account": account}
        rows = self.database.run("read_source", lambda conn: conn.execute(SOURCE, params).fetchall())
        if not rows:
            return None
        credentials = tuple(StoredCredential(method, name, _bytes(current), _bytes(previous))
                            for _, method, name, current, previous in rows if method is not None)
        return StoredSource(rows[0][0], credentials)

    def source_list(self, vendor: str | None = None) -> list[dict[str, Any]]:
        """Sources and their credentials' names (never a value), for `sources list`."""
        rows = self.database.run("list_sources", lambda conn: conn.cursor(row_factory=dict_row).execute(
            LIST, {"vendor": vendor}).fetchall())
        listed: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            entry = listed.setdefault((row["vendor"], row["account"]), {
                "vendor": row["vendor"], "account": row["account"], "enabled": row["enabled"],
                "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
                "vendor_account_id": row["vendor_account_id"], "credentials": []})
            if row["method"] is not None:
                entry["credentials"].append({
                    "method": row["method"], "name": row["name"],
                    "value": "stored" if row["stored"] else "the environment variable",
                    "rotating": row["rotating"], "updated_at": _iso(row["credential_updated_at"])})
        return list(listed.values())

    def add_credential(self, vendor: str, account: str, method: str, name: str, sealed: bytes | None) -> bool:
        """A new credential (and its source, if new). False: that credential exists."""
        params = {"vendor": vendor, "account": account, "method": method, "name": name, "sealed": sealed}

        def work(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                conn.execute(ADD_SOURCE, params)
                added = conn.execute(ADD_CREDENTIAL, params).rowcount == 1
                conn.execute(TOUCH, params)
                return added

        return self.database.run("add_source_credential", work)

    def rotate_credential(self, vendor: str, account: str, method: str, name: str, sealed: bytes) -> bool:
        return self._change("rotate_source_credential", ROTATE, vendor, account, method, name, sealed=sealed)

    def retire_credential(self, vendor: str, account: str, method: str, name: str, whole: bool = False) -> str | None:
        """Retire the previous value of a rotation; with none under way and `whole`, the
        credential itself. Returns what was retired ("previous", "credential"), "nothing"
        (the credential exists, no rotation, not `whole`), or None (no such credential)."""
        if self._change("retire_previous", RETIRE_PREVIOUS, vendor, account, method, name):
            return "previous"
        if not whole:
            return "nothing" if self._has_credential(vendor, account, method, name) else None
        if self._change("remove_source_credential", REMOVE_CREDENTIAL, vendor, account, method, name):
            return "credential"
        return None

    def _has_credential(self, vendor: str, account: str, method: str, name: str) -> bool:
        params = {"vendor": vendor, "account": account, "method": method, "name": name}
        return self.database.run("read_source_credential", lambda conn: conn.execute(
            HAS_CREDENTIAL, params).fetchone()) is not None

    def set_source_enabled(self, vendor: str, account: str, enabled: bool) -> bool:
        params = {"vendor": vendor, "account": account, "enabled": enabled}
        return self.database.run("set_source_enabled", lambda conn: conn.execute(SET_ENABLED, params).rowcount) == 1

    def remove_source(self, vendor: str, account: str) -> bool:
        params = {"vendor": vendor, "account": account}
        return self.database.run("remove_source", lambda conn: conn.execute(REMOVE_SOURCE, params).rowcount) == 1

    def bind_account_id(self, vendor: str, account: str, claimed: str | None) -> str | None:
        """The vendor's id of an account named otherwise in its URL: the one bound before,
        else `claimed`, bound from now on (None: only read; ingestion/sources.py)."""
        params = {"vendor": vendor, "account": account, "claimed": claimed}

        def work(conn: psycopg.Connection) -> str | None:
            row = conn.execute(BIND_ACCOUNT_ID if claimed is not None else READ_ACCOUNT_ID, params).fetchone()
            return row[0] if row else None

        return self.database.run("bind_account_id", work)

    def unbind_account_id(self, vendor: str, account: str) -> bool:
        params = {"vendor": vendor, "account": account}
        return self.database.run("unbind_account_id",
                                 lambda conn: conn.execute(UNBIND_ACCOUNT_ID, params).rowcount) == 1

    def sealed_credentials(self) -> Iterator[tuple[str, str, str, str, bytes, bytes | None]]:
        rows = self.database.run("read_sealed", lambda conn: conn.execute(SEALED).fetchall())
        for vendor, account, method, name, current, previous in rows:
            yield vendor, account, method, name, bytes(current), _bytes(previous)

    def rewrap_credential(self, vendor: str, account: str, method: str, name: str, current: bytes,
                          previous: bytes | None) -> None:
        params = {"vendor": vendor, "account": account, "method": method, "name": name, "current": current,
                  "previous": previous}
        self.database.run("rewrap_source_credential", lambda conn: conn.execute(REWRAP, params))

    def _change(self, operation: str, query: str, vendor: str, account: str, method: str, name: str,
                **extra: Any) -> bool:
        params = {"vendor": vendor, "account": account, "method": method, "name": name, **extra}

        def work(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                changed = conn.execute(query, params).rowcount == 1
                if changed:
                    conn.execute(TOUCH, params)
                return changed

        return self.database.run(operation, work)


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

"""Where a piece of personal data still is: every text, JSON, array or bytes column of
every table of the database, searched for it (the proof that forgetting forgot). Tables
are read from the catalog, so a table a later migration adds is searched too."""

from __future__ import annotations

COLUMNS = """
SELECT c.table_name, c.column_name, c.data_type
  FROM information_schema.columns c
  JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
   AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')
 ORDER BY c.table_name, c.ordinal_position
"""


def mentions(db, *needles: str) -> list[str]:
    """Every table.column that holds one of `needles`, any case."""
    found = []
    for column in db.execute(COLUMNS).fetchall():
        table, name = column["table_name"], column["column_name"]
        as_text = f"encode({name}, 'escape')" if column["data_type"] == "bytea" else f"{name}::text"
        for needle in needles:
            if db.execute(f"SELECT count(*) AS n FROM {table} WHERE {as_text} ILIKE %s",
                          (f"%{needle}%",)).fetchone()["n"]:
                found.append(f"{table}.{name}")
    return found

"""`python -m ingestion redact`: forget a person (or a ticket's personal data) on request.

`--email <address>`: every ticket whose requester or assignee has that address loses that
person's name, address and id; every event that mentions the address or the person's
names (in its raw payload, comment or changes, on any ticket: a person may be CC'd)
has each mention replaced by `[redacted]`; quarantined deliveries that contain the
address are deleted (they are unreadable bodies: there is nothing to keep once the
person is gone). Delivery rows hold no personal data.

`--ticket <vendor>/<id>`: the ticket's people, subject, description, organization, tags
and custom fields are emptied and its events lose their raw payload, comment and
changes; ids, types, times, outcomes and revisions stay: the same forgetting as a
vendor's permanent delete (SQL `forget_ticket()`), without marking the ticket deleted.

Each ticket is one transaction holding the ticket's row lock, so a webhook for it waits
and is then stored normally. A later webhook that brings the data back is stored: the
vendor is the source of truth (README: Personal data). A row in `redactions` records
that a redaction happened, its kind and how many rows it changed: never the address.
Running it again changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .storage import Storage, queries

MASK = "[redacted]"
PEOPLE = (("requester_name", "requester_email", "requester_id"), ("assignee_name", "assignee_email", "assignee_id"))


def _pattern(mentions: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({m.strip() for m in mentions if m and len(m.strip()) >= 3}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def masked(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` (JSON) with every mention replaced, keys included."""
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if isinstance(value, list):
        return [masked(item, pattern) for item in value]
    if isinstance(value, dict):
        return {masked(key, pattern): masked(item, pattern) for key, item in value.items()}
    return value


def _names(conn: psycopg.Connection, email: str) -> set[str]:
    """The names stored next to the address: the person's names to mask as well."""
    return {name for row in conn.execute(queries.REDACT_NAMES, {"email": email}).fetchall() for name in row if name}


def redact_email(storage: Storage, email: str) -> dict[str, int]:
    email = email.strip()
    changed = {"tickets": 0, "events": 0, "quarantine": 0}
    like = "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with storage.connection() as conn:
        pattern = _pattern([email, *_names(conn, email)])
        ticket_ids = [row[0] for row in conn.execute(queries.REDACT_TICKETS, {"email": email, "like": like})]
    for ticket_id in ticket_ids:
        with storage.connection() as conn, conn.transaction():
            cursor = conn.cursor(row_factory=dict_row)
            ticket = cursor.execute(queries.REDACT_LOCK, {"id": ticket_id}).fetchone()
            if ticket is None:
                continue
            cleared = [column for person in PEOPLE
                       if (ticket[person[1]] or "").lower() == email.lower() for column in person]
            if cleared:  # column names from PEOPLE, never from input
                cursor.execute("UPDATE tickets SET " + ", ".join(f"{c} = NULL" for c in cleared) +
                               ", updated_at = now() WHERE id = %(id)s", {"id": ticket_id})
                changed["tickets"] += 1
            changed["events"] += _mask_events(cursor, ticket_id, pattern)
    with storage.connection() as conn:
        changed["quarantine"] = conn.execute(queries.REDACT_QUARANTINE, {"like": like}).rowcount
    _record(storage, "email", changed)
    return changed


def _mask_events(cursor: psycopg.Cursor, ticket_id: Any, pattern: re.Pattern[str] | None) -> int:
    if pattern is None:
        return 0
    count = 0
    for event in cursor.execute(queries.REDACT_EVENTS, {"id": ticket_id}).fetchall():
        new = {key: masked(event[key], pattern) for key in ("payload", "comment_body", "comment_author", "changes")}
        if any(new[key] != event[key] for key in new):
            cursor.execute(queries.REDACT_EVENT, {
                "id": event["id"], "comment_body": new["comment_body"], "comment_author": new["comment_author"],
                "payload": Jsonb(new["payload"]) if new["payload"] is not None else None,
                "changes": Jsonb(new["changes"]) if new["changes"] is not None else None})
            count += 1
    return count


def redact_ticket(storage: Storage, vendor: str, account: str, external_id: str) -> dict[str, int]:
    changed = {"tickets": 0, "events": 0, "quarantine": 0}
    with storage.connection() as conn, conn.transaction():
        row = conn.execute(queries.REDACT_TICKET_LOCK,
                           {"vendor": vendor, "account": account, "external_id": external_id}).fetchone()
        if row is not None:
            changed["tickets"], changed["events"] = conn.execute(queries.REDACT_TICKET, {"id": row[0]}).fetchone()
    _record(storage, "ticket", changed)
    return changed


def _record(storage: Storage, kind: str, changed: dict[str, int]) -> None:
    with storage.connection() as conn:
        conn.execute(queries.REDACTION_RECORD, {"kind": kind, "changed": Jsonb(changed)})

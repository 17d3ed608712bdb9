"""`python -m ingestion rebuild`: tickets recomputed from their events.

After a normalizer upgrade, tickets stored from earlier payloads keep the fields the old
normalizer read. Rebuild runs every stored event's raw payload of a ticket through the
vendor's current normalizer and merges the results **in vendor order** (each event's
`updated_at` as the vendor sent it; its arrival time when it has none), which is also
how a late full snapshot and an earlier partial update combine best: the snapshot's
fields first, the newer partial on top. Merging follows the live rules (a field absent
from a payload keeps its value; custom fields merge one by one).

- A ticket whose every event kept its payload is recomputed from nothing. A ticket with
  events that have none (stored by the first release, or whose payload retention
  removed) starts from its stored fields instead: the payloads that remain refine it.
  The summary counts these as `partial`.
- Events the current normalizer refuses, or that now name another ticket, are left out
  (`skipped_events`); the ticket is still rebuilt from the others.
- Only a ticket whose fields change is written: its revision goes up by one and a
  `ticket.rebuilt` event records the changes (so the stream tells consumers). Running it
  again changes nothing.
- Each ticket is one transaction holding the ticket's row lock: a live delivery of that
  ticket waits for it and then merges onto the rebuilt state (or the rebuild waits for
  the delivery and includes its event). Safe while webhooks arrive.
- Progress is kept per scope in `rebuild_progress`: an interrupted rebuild resumes after
  the last ticket it finished (`--restart` starts over).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .errors import ApiError
from .storage import Storage, queries
from .tickets import TICKET_FIELDS
from .vendor import Vendor

BATCH = 200
_NO_TICKET = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Scope:
    """All tickets, one vendor's, or one ticket (vendor, account, external id)."""

    vendor: str | None = None
    account: str = ""
    external_id: str | None = None

    @property
    def key(self) -> str:
        if self.external_id is not None:
            return f"ticket:{self.vendor}/{self.account}/{self.external_id}"
        return f"vendor:{self.vendor}" if self.vendor else "all"


@dataclass
class Summary:
    tickets: int = 0
    changed: int = 0
    partial: int = 0
    skipped_events: int = 0
    resumed_after: str | None = None
    fields_changed: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"tickets": self.tickets, "changed": self.changed, "unchanged": self.tickets - self.changed,
                "partial": self.partial, "skipped_events": self.skipped_events,
                "resumed_after": self.resumed_after, "fields_changed": dict(sorted(self.fields_changed.items()))}


def stored_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket row's fields under their normalized names."""
    return {name: (list(row["tags"]) if name == "tags" else row["group_name"] if name == "group" else row[name])
            for name in TICKET_FIELDS}


def empty_fields() -> dict[str, Any]:
    return {name: [] if name == "tags" else {} if name == "custom_fields" else None for name in TICKET_FIELDS}


def merge(state: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """One event's fields onto the state, as ingest_event() merges them."""
    for name, value in fields.items():
        if name == "custom_fields":
            state[name] = {**(state[name] or {}), **(value or {})}
        elif name == "tags":
            state[name] = list(value or ())
        else:
            state[name] = value


def recompute(ticket: Mapping[str, Any], events: list[Mapping[str, Any]], vendor: Vendor,
              normalize: Callable[..., Any]) -> tuple[dict[str, Any], bool, int]:
    """(fields, partial, skipped events) for one ticket from its events."""
    partial = any(event["payload"] is None for event in events)
    readings: list[tuple[datetime, int, Mapping[str, Any]]] = []
    skipped = 0
    for event in events:
        if event["payload"] is None:
            continue
        headers = {vendor.event_header: event["event_type"]} if vendor.event_header else {}
        try:
            normalized = normalize(event["payload"], headers, ticket["account"] or None)
        except ApiError:
            normalized = None
        if normalized is None or not isinstance(event["payload"], dict) \
                or normalized.external_id != ticket["external_id"]:
            skipped += 1
            continue
        moment = normalized.fields.get("vendor_updated_at") or event["received_at"]
        readings.append((moment, event["id"], normalized.fields))
    state = stored_fields(ticket) if partial else empty_fields()
    for _, _, fields in sorted(readings, key=lambda reading: (reading[0], reading[1])):
        merge(state, fields)
    return state, partial, skipped


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def rebuild_ticket(conn: psycopg.Connection, ticket_id: Any, vendors: Mapping[str, Vendor],
                   normalizers: Mapping[str, Callable[..., Any]], summary: Summary,
                   on_locked: Callable[[], None] = lambda: None) -> None:
    """Rebuild one ticket inside the caller's transaction (see the module docstring)."""
    cursor = conn.cursor(row_factory=dict_row)
    ticket = cursor.execute(queries.REBUILD_LOCK, {"id": ticket_id}).fetchone()
    if ticket is None or ticket["vendor"] not in vendors:
        return
    on_locked()
    events = cursor.execute(queries.REBUILD_EVENTS, {"id": ticket_id}).fetchall()
    vendor = vendors[ticket["vendor"]]
    fields, partial, skipped = recompute(ticket, events, vendor, normalizers[vendor.name])
    summary.tickets += 1
    summary.partial += partial
    summary.skipped_events += skipped
    before = stored_fields(ticket)
    changes = {name: {"previous": _json(before[name]), "current": _json(fields[name])}
               for name in TICKET_FIELDS if fields[name] != before[name]}
    if not changes:
        return
    params = {**fields, "id": ticket_id, "custom_fields": Jsonb(fields["custom_fields"] or {})}
    revision = cursor.execute(queries.REBUILD_UPDATE, params).fetchone()["revision"]
    cursor.execute(queries.REBUILD_EVENT, {"id": ticket_id, "revision": revision,
                                           "changes": Jsonb(json.loads(json.dumps(changes, default=str)))})
    summary.changed += 1
    for name in changes:
        summary.fields_changed[name] = summary.fields_changed.get(name, 0) + 1


def _tickets(storage: Storage, scope: Scope, after: str) -> Iterator[Any]:
    while True:
        params = {"after": after, "vendor": scope.vendor, "account": scope.account,
                  "external_id": scope.external_id, "limit": BATCH}
        with storage.connection() as conn:
            ids = [row[0] for row in conn.execute(queries.REBUILD_TICKETS, params).fetchall()]
        yield from ids
        if len(ids) < BATCH:
            return
        after = str(ids[-1])


def count(storage: Storage, scope: Scope, restart: bool = False) -> int:
    return sum(1 for _ in _tickets(storage, scope, _start(storage, scope, restart) or _NO_TICKET))


def _start(storage: Storage, scope: Scope, restart: bool) -> str | None:
    with storage.connection() as conn:
        if restart:
            conn.execute(queries.REBUILD_DONE, {"scope": scope.key})
            return None
        row = conn.execute(queries.REBUILD_PROGRESS, {"scope": scope.key}).fetchone()
    return str(row[0]) if row and row[0] else None


def rebuild(storage: Storage, vendors: Mapping[str, Vendor], normalizers: Mapping[str, Callable[..., Any]],
            scope: Scope, restart: bool = False, on_ticket: Callable[[], None] = lambda: None,
            on_locked: Callable[[], None] = lambda: None) -> Summary:
    resumed = _start(storage, scope, restart)
    summary = Summary(resumed_after=resumed)
    for ticket_id in _tickets(storage, scope, resumed or _NO_TICKET):
        with storage.connection() as conn, conn.transaction():
            rebuild_ticket(conn, ticket_id, vendors, normalizers, summary, on_locked)
            conn.execute(queries.REBUILD_ADVANCE, {"scope": scope.key, "last": ticket_id})
        on_ticket()
    with storage.connection() as conn:
        conn.execute(queries.REBUILD_DONE, {"scope": scope.key})
    return summary

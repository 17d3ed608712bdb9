"""`python -m ingestion rebuild`: tickets recomputed from their history with today's normalizer.

Why it works this way: docs/design.md, "Rebuild".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from ..cli import Context, job, known_vendor, ticket_named
from ..errors import ApiError
from ..json_body import parse_json_object
from ..normalize.events import SNAPSHOT
from ..storage import Storage
from ..tickets import RECONCILIATION
from ..vendor import Normalizer, Vendor

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


def event_headers(vendor: Vendor, event_type: str) -> dict[str, str]:
    """The headers a vendor's normalizer read the event's name from, as the delivery sent
    them: Help Scout names its events only in X-HelpScout-Event, and a delivery that came
    without it was stored as a snapshot (and must be read again as one)."""
    if vendor.event_header is None or event_type == SNAPSHOT:
        return {}
    return {vendor.event_header: event_type}


def readings(vendor: Vendor, normalize: Normalizer, ticket: Mapping[str, Any],
             events: list[Mapping[str, Any]]) -> tuple[dict[str, Any], int]:
    """Today's fields of each event whose payload can be read again ({event id: fields}),
    and how many payloads today's normalizer refused (or read another ticket from)."""
    found: dict[str, Any] = {}
    skipped = 0
    for event in events:
        if event["payload"] is None:
            continue  # nothing to read again: the stored fields take part
        try:
            payload, _ = parse_json_object(event["payload"].encode("utf-8"))
            normalized = normalize(payload, event_headers(vendor, event["event_type"]), ticket["account"] or None)
        except ApiError:
            normalized = None
        if normalized is None or normalized.external_id != ticket["external_id"]:
            skipped += 1
            continue
        fields = normalized.fields_json()
        if event["event_type"] == RECONCILIATION:
            # The reconciler decides the deletion from the export's own flag, beside the
            # ticket it stores (jobs/reconcile/engine.py): as it decided, not re-derived.
            fields.pop("deletion", None)
            if event["deletion"] is not None:
                fields["deletion"] = event["deletion"]
        found[str(event["id"])] = fields
    return found, skipped


def _tickets(storage: Storage, scope: Scope, after: str) -> Iterator[Any]:
    while True:
        ids = storage.rebuild_ticket_ids(scope.vendor, scope.account, scope.external_id, after, BATCH)
        yield from ids
        if len(ids) < BATCH:
            return
        after = str(ids[-1])


def count(storage: Storage, scope: Scope, restart: bool = False) -> int:
    return sum(1 for _ in _tickets(storage, scope, storage.rebuild_progress(scope.key, restart) or _NO_TICKET))


def rebuild(storage: Storage, vendors: Mapping[str, Vendor], normalizers: Mapping[str, Normalizer],
            scope: Scope, restart: bool = False, on_ticket: Callable[[], None] = lambda: None,
            on_locked: Callable[[], None] = lambda: None) -> Summary:
    resumed = storage.rebuild_progress(scope.key, restart)
    summary = Summary(resumed_after=resumed)
    for ticket_id in _tickets(storage, scope, resumed or _NO_TICKET):
        def read(ticket: dict[str, Any], events: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
            vendor = vendors.get(ticket["vendor"])
            if vendor is None:  # a vendor no longer registered: its history replays as stored
                return {}, 0
            return readings(vendor, normalizers[vendor.name], ticket, events)

        rebuilt = storage.rebuild(ticket_id, scope.key, read, on_locked)
        if rebuilt is not None:
            summary.tickets += 1
            summary.partial += rebuilt.partial
            summary.skipped_events += rebuilt.skipped
            if rebuilt.changes:
                summary.changed += 1
                for name in rebuilt.changes:
                    summary.fields_changed[name] = summary.fields_changed.get(name, 0) + 1
        on_ticket()
    storage.rebuild_finished(scope.key)
    return summary


@click.command("rebuild")
@click.option("--vendor", help="Only this vendor's tickets.")
@click.option("--ticket", help="Only this ticket: <vendor>/<external id> (with --account for a named account).")
@click.option("--account", default="", help="The vendor account of --ticket (default: none).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted rebuild.")
@job
def command(context: Context, vendor: str | None, ticket: str | None, account: str, restart: bool) -> None:
    """Recompute tickets from their history with today's normalizer.

    Safe while webhooks arrive; resumes where an interrupted run stopped. A progress bar
    on a terminal; one JSON summary line at the end.
    """
    from ..vendors import VENDORS

    vendors = {v.name: v for v in VENDORS}
    external_id = None
    if ticket is not None:
        vendor, external_id = ticket_named(ticket)
    known_vendor(vendor)
    scope = Scope(vendor, account, external_id)
    normalizers = {name: v.normalizer(context.settings) for name, v in vendors.items()}
    storage = context.storage
    if sys.stderr.isatty():
        with click.progressbar(length=count(storage, scope, restart), label="rebuilding", show_eta=True,
                               show_pos=True, file=sys.stderr) as bar:
            summary = rebuild(storage, vendors, normalizers, scope, restart, lambda: bar.update(1))
    else:
        summary = rebuild(storage, vendors, normalizers, scope, restart)
    click.echo(json.dumps(summary.as_json()))

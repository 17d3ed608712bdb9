"""Replaying a quarantined delivery through today's normalizer: the one replay the
command (`python -m ingestion replay`, jobs/replay.py) and the console's buttons
(web/console/quarantine*.py) share.

Each entry (ingestion/quarantine.py) goes through the same steps as a live webhook,
minus authentication, which it passed when it arrived: parse, normalize with the vendor's
current normalizer, store through the Ingestor (the same merge, staleness and
idempotency rules, the same outbox, so the relay publishes its stream event). What now
reads leaves quarantine; what still fails stays, with its new error and one more attempt
counted. Replaying twice changes nothing: an ingested entry has left quarantine.

An entry is deleted only after its delivery was stored, so an interrupted replay repeats
at most one delivery, which the idempotency rules then answer `already_exists`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import batches
from .duplicates import request_key
from .errors import ApiError, UnreadableBody
from .json_body import parse_json_object
from .quarantine import StoredHeaders, clean_text
from .services import Services
from .tickets import Outcome
from .vendor import Normalizer

BATCH = 100


@dataclass
class Selection:
    """Which entries to replay: all, one vendor, one id, a time range (received_at)."""

    vendor: str | None = None
    entry_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Result:
    entry_id: int
    vendor: str
    outcome: str  # created, updated, ..., ignored; or "failed"; dry run: "would_ingest"
    detail: str = ""
    #: The tickets the delivery was stored into (their ids), for the console's links.
    tickets: tuple[str, ...] = ()


@dataclass
class Summary:
    dry_run: bool
    outcomes: Counter = field(default_factory=Counter)

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] += 1

    def as_json(self) -> dict[str, Any]:
        total = sum(self.outcomes.values())
        failed = self.outcomes.get("failed", 0)
        return {"replayed": total, "ingested": total - failed if not self.dry_run else 0, "failed": failed,
                "dry_run": self.dry_run, "outcomes": dict(sorted(self.outcomes.items()))}


def selected(services: Services, selection: Selection) -> Iterator[dict[str, Any]]:
    """The entries to replay, oldest first, read in batches (a cursor over ids, so entries
    deleted while replaying do not shift the pages)."""
    after = 0
    while True:
        rows = services.storage.replay_candidates(after, BATCH, selection.vendor, selection.entry_id,
                                                  selection.since, selection.until)
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1]["id"]


def count(services: Services, selection: Selection) -> int:
    return sum(1 for _ in selected(services, selection))


def vendor_splitters() -> dict[str, batches.Splitter | None]:
    """Each vendor's batch splitter (ingestion/batches.py), None for those that post one event."""
    from .vendors import VENDORS  # (as the command does: the registry is read when a job runs)

    return {vendor.name: vendor.batch for vendor in VENDORS}


def replay_batch(services: Services, entry: dict[str, Any], items: list[batches.BatchItem], dry_run: bool) -> Result:
    """A quarantined batch (ingestion/batches.py), all or none, as it would have been live."""
    if dry_run:
        return Result(entry["id"], entry["vendor"], "would_ingest", f"a batch of {len(items)} events")
    answers = services.ingestor.store_batch(entry["vendor"], entry["account"] or "", items, f"replay-{entry['id']}")
    services.storage.release(entry["id"])
    counted = Counter(stored.outcome.value for stored in answers)
    return Result(entry["id"], entry["vendor"], "batch",
                  f"{len(answers)} events: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counted.items())),
                  tuple(dict.fromkeys(stored.ticket_id for stored in answers if stored.ticket_id)))


def replay_one(services: Services, normalizers: dict[str, Normalizer], entry: dict[str, Any],
               dry_run: bool, splitters: Mapping[str, batches.Splitter | None] | None = None) -> Result:
    vendor, body = entry["vendor"], bytes(entry["body"])
    account = entry["account"] or None
    normalize = normalizers.get(vendor)
    if splitters is None:
        splitters = vendor_splitters()
    split = splitters.get(vendor)
    try:
        if normalize is None:
            raise ApiError(f"Vendor {vendor!r} is no longer configured")
        payload, text = parse_json_object(body, arrays=split is not None)
        events = batches.events_of(split, payload)
        if events is not None:
            return replay_batch(services, entry, batches.read(events, normalize, StoredHeaders(entry["headers"]), account),
                                dry_run)
        if not isinstance(payload, dict):
            raise UnreadableBody("JSON body must be an object, got an array", "not_object")
        event = normalize(payload, StoredHeaders(entry["headers"]), account)
        if dry_run:
            what = "ignored" if event is None else f"{event.event_type} for ticket {event.external_id}"
            return Result(entry["id"], vendor, "would_ingest", what)
        request_id = f"replay-{entry['id']}"
        if event is None:
            stored = services.ingestor.ignore(vendor, account or "", request_id)
        else:
            stored = services.ingestor.store(event, body, text, request_id, request_key(vendor, account, body))
    except ApiError as error:
        if error.status >= 500:
            raise  # the database: stop here, nothing was decided about this entry
        if not dry_run:
            services.storage.failed_again(entry["id"], error=clean_text(error.message), reason=error.reason,
                                          status=error.status)
        return Result(entry["id"], vendor, "failed", error.message)
    services.storage.release(entry["id"])
    detail = "" if stored.outcome is Outcome.IGNORED else f"ticket {stored.ticket_id} event {stored.event_id}"
    return Result(entry["id"], vendor, stored.outcome.value, detail, (stored.ticket_id,) if stored.ticket_id else ())


def replay(services: Services, normalizers: dict[str, Normalizer], selection: Selection, dry_run: bool = False,
           on_result: Callable[[Result], None] = lambda result: None) -> Summary:
    summary = Summary(dry_run)
    for entry in selected(services, selection):
        result = replay_one(services, normalizers, entry, dry_run)
        summary.add(result)
        on_result(result)
    return summary

"""Retention (`python -m ingestion prune`, and hourly in the relay): delivery rows past
DELIVERY_RETENTION_DAYS (never an event), the personal data of events past
EVENT_RETENTION_DAYS (when set: the rows stay, with what a rebuild needs), quarantine
entries past QUARANTINE_RETENTION_DAYS; in short batches that never hold long locks."""

from __future__ import annotations

import logging

import click

from ..cli import Context, job
from ..config import Settings
from ..metrics import PRUNED, QUARANTINE_REMOVED, child
from ..storage import Storage

log = logging.getLogger(__name__)


def prune(storage: Storage, settings: Settings) -> dict[str, int]:
    """Returns the rows pruned of each kind. The months of events are maintained first:
    those past EVENT_RETENTION_DAYS go whole (jobs/maintain.py), so only the month the
    cut-off falls in is emptied row by row."""
    from .maintain import maintain

    maintain(storage, settings)
    pruned = {"deliveries": storage.prune_deliveries(settings.delivery_retention_days),
              "event_payloads": storage.prune_event_payloads(settings.event_retention_days,
                                                             keep_unpublished=settings.has_stream)
              if settings.event_retention_days else 0,
              "quarantine": storage.prune_quarantine(settings.quarantine_retention_days)}
    for kind, count in pruned.items():
        if count:
            child(PRUNED, kind).inc(count)
    if pruned["quarantine"]:
        child(QUARANTINE_REMOVED, "retention").inc(pruned["quarantine"])
    if any(pruned.values()):
        log.info("retention pruned old rows", extra=pruned)
    return pruned


@click.command("prune")
@job
def command(context: Context) -> None:
    """Retention: delivery rows past DELIVERY_RETENTION_DAYS (never an event), the personal
    data of events past EVENT_RETENTION_DAYS (when set), quarantine entries past
    QUARANTINE_RETENTION_DAYS. The relay does this hourly: run it from cron without one."""
    pruned = prune(context.storage, context.settings)
    click.echo(f"deleted {pruned['deliveries']} delivery rows and {pruned['quarantine']} quarantine entries; "
               f"emptied the personal data of {pruned['event_payloads']} events")

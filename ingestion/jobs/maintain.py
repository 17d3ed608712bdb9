"""`python -m ingestion maintain`: the monthly partitions of `events` made ahead, and with
EVENT_RETENTION_DAYS set, the months past it dropped whole (storage/partitions.py). The
relay does it hourly with the rest of retention; run it from cron without a relay."""

from __future__ import annotations

import logging

import click

from ..cli import Context, job
from ..config import Settings
from ..storage import Storage

log = logging.getLogger(__name__)


def maintain(storage: Storage, settings: Settings) -> tuple[list[str], list[str]]:
    made, dropped = storage.maintain_partitions(None, settings.event_retention_days, settings.has_stream)
    if made or dropped:
        log.info("event partitions maintained", extra={"made": made, "dropped": dropped})
    return made, dropped


@click.command("maintain")
@job
def command(context: Context) -> None:
    """Make the months of events ahead; drop those past EVENT_RETENTION_DAYS (when set)."""
    made, dropped = maintain(context.storage, context.settings)
    click.echo(f"made {len(made)} partitions ({', '.join(made) or 'none needed'}); "
               f"dropped {len(dropped)} ({', '.join(dropped) or 'none past retention'})")

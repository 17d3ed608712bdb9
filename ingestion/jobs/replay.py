"""`python -m ingestion replay`: quarantined deliveries through today's normalizer
(ingestion/replaying.py says how)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from ..cli import Context, job, known_vendor
from ..replaying import Result, Selection, count, replay

_MOMENT = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


@click.command("replay")
@click.option("--vendor", help="Only this vendor's entries.")
@click.option("--id", "entry_id", type=click.IntRange(min=1, max=2**63 - 1), help="Only this quarantine entry.")
@click.option("--since", type=_MOMENT, help="Only entries received at or after this moment (UTC).")
@click.option("--until", type=_MOMENT, help="Only entries received before this moment (UTC).")
@click.option("--dry-run", is_flag=True, help="Normalize only: print what would happen, change nothing.")
@job
def command(context: Context, vendor: str | None, entry_id: int | None, since: datetime | None,
            until: datetime | None, dry_run: bool) -> None:
    """Ingest quarantined deliveries with today's normalizer; what still fails stays.

    A progress bar on a terminal; one JSON summary line at the end (and one JSON line per
    entry with --dry-run). Exit status 1 when some entry still fails.
    """
    from ..vendors import VENDORS

    normalizers = {v.name: v.normalizer(context.settings) for v in VENDORS}
    known_vendor(vendor)
    if since is not None and until is not None and since >= until:
        raise click.ClickException("--since must be before --until: the range holds no moment")
    utc = [moment.replace(tzinfo=timezone.utc) if moment is not None else None for moment in (since, until)]
    selection = Selection(vendor, entry_id, *utc)
    services = context.services
    services.storage.open()

    def show(result: Result) -> None:
        if dry_run:
            click.echo(json.dumps({"quarantine_id": result.entry_id, "vendor": result.vendor,
                                   "outcome": result.outcome, "detail": result.detail}))

    if sys.stderr.isatty() and not dry_run:
        with click.progressbar(length=count(services, selection), label="replaying", show_eta=True,
                               show_pos=True, file=sys.stderr) as bar:
            summary = replay(services, normalizers, selection, dry_run, lambda result: bar.update(1))
    else:
        summary = replay(services, normalizers, selection, dry_run, show)
    click.echo(json.dumps(summary.as_json()))
    if summary.outcomes.get("failed"):
        sys.exit(1)

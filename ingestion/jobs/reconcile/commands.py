"""`python -m ingestion reconcile` and `backfill` (runner.py says how each runs)."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import click

from ...cli import Context, job, known_vendor
from ...errors import ConfigError
from ..daemon import serve_metrics, stop_on_signals
from .engine import reconcilers, restore_lag_gauges
from .runner import ProgressLine, run_forever, summary
from .settings import ReconcileSettings


def _unconfigured() -> str:
    """What to set, from the vendors' declarations: each export's API secret variable."""
    from ...vendors import VENDORS

    secrets = [vendor.export.secret_variable for vendor in VENDORS if vendor.export is not None]
    return f"no vendor API is configured: set one of {', '.join(secrets)} and its companions (README: Reconciliation)"


UNCONFIGURED = _unconfigured()


def _options() -> ReconcileSettings:
    try:
        return ReconcileSettings.from_env()
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None


@click.command("reconcile")
@click.option("--once", is_flag=True, help="Run one pass per vendor and exit (cron, tests).")
@job
def reconcile(context: Context, once: bool) -> None:
    """Every RECONCILE_INTERVAL, pull what changed from each configured vendor's API and
    repair what the webhooks missed. One JSON line per pass with --once."""
    options = _options()
    stop = stop_on_signals() if not once else None
    runs = reconcilers(context.settings, options, context.storage, stop)
    if once:
        if not runs:
            raise click.ClickException(UNCONFIGURED)
        for run in runs:
            click.echo(summary(run.run("reconcile")))
        return
    serve_metrics(context.settings, options.metrics_port, "reconcile")
    if not runs:  # idle, not a crash loop: compose and Kubernetes ship it unconfigured
        logging.getLogger("ingestion.reconcile").warning(UNCONFIGURED + "; the reconciler idles")
    restore_lag_gauges(context.storage)
    run_forever(runs, options.interval, should_stop=stop.is_set, sleep=stop.wait)


_MOMENT = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


@click.command("backfill")
@click.argument("vendor")
@click.option("--since", required=True, type=_MOMENT, help="Import tickets changed at or after this moment (UTC).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted backfill.")
@job
def backfill(context: Context, vendor: str, since: datetime, restart: bool) -> None:
    """Import every ticket of VENDOR changed since a date through the webhooks' path.

    A progress bar with an ETA on a terminal; one JSON summary line at the end; exit
    status 1 when the vendor's API stopped it (run it again to resume)."""
    options = _options()
    stop = stop_on_signals()
    found = [run for run in reconcilers(context.settings, options, context.storage, stop) if run.vendor.name == vendor]
    if not found:
        known_vendor(vendor)
        raise click.ClickException(f"{vendor!r} has no API configured (README: Reconciliation)")
    progress = ProgressLine() if sys.stderr.isatty() else None
    result = found[0].run("backfill", since=since.replace(tzinfo=timezone.utc), restart=restart,
                          progress=progress, should_stop=stop.is_set)
    click.echo(summary(result))
    if result.error or result.skipped or not result.caught_up:
        sys.exit(1)

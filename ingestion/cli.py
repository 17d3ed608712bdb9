"""Command line: `python -m ingestion <command>`.

- `migrate`     apply the pending schema migrations to DATABASE_URL (`init-db` is the
                first release's name for it, still accepted)
- `relay`       publish committed ticket changes from the outbox to the Redis stream
- `prune`       retention: delivery rows, events' personal data and quarantine entries
                past their days (the relay does this hourly; run it from cron when no
                relay runs)
- `replay`      ingest quarantined deliveries with today's normalizer (README: When a
                webhook is refused)
- `rebuild`     recompute tickets from their stored events with today's normalizer
- `redact`      forget a person (--email) or a ticket's personal data (--ticket)
- `reconcile`   pull ticket changes from the vendors' APIs every RECONCILE_INTERVAL and
                repair what the webhooks missed (README: Reconciliation)
- `backfill`    import a vendor's tickets changed since a date, once, with a progress bar
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading

import click

# Only configuration at import time: each command validates its settings before it
# imports what uses prometheus_client (see ingestion/__init__.py).
from ._version import version
from .config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None


@click.group()
@click.version_option(version(), prog_name="helpdesk-ingestion", message="%(prog)s %(version)s")
def main() -> None:
    """Helpdesk webhook ingestion service."""


@main.command()
@click.option("--lock-timeout", default="5s", show_default=True,
              help="How long a migration waits for a table lock before giving up (nothing is changed then).")
def migrate(lock_timeout: str) -> None:
    """Apply the pending schema migrations to DATABASE_URL (safe to run again)."""
    settings = _settings()
    from .storage.migrate import MigrationError, latest_version
    from .storage.migrate import migrate as apply

    try:
        applied = apply(settings.database_url, lock_timeout)
    except MigrationError as error:
        raise click.ClickException(str(error)) from None
    for migration in applied:
        click.echo(f"applied migration {migration.version} ({migration.name})")
    click.echo(f"schema at version {latest_version()}")


@main.command("init-db", hidden=True)
@click.pass_context
def init_db(context: click.Context) -> None:
    """The first release's name for `migrate`."""
    context.invoke(migrate)


@main.command()
def relay() -> None:
    """Publish pending events to the stream `ingestion:tickets` until stopped."""
    settings = _settings()  # before anything imports prometheus_client (ingestion/__init__.py)
    if not settings.redis_url:
        raise click.ClickException("configuration error: REDIS_URL: is required for the relay")
    from . import logs
    from .outbox import Relay
    from .redis_guard import GuardedRedis
    from .storage import Storage

    logs.configure(settings.log_level)
    _serve_relay_metrics(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    storage = Storage(settings)
    guarded = GuardedRedis(settings)
    guarded.start_state_reporter()
    try:
        Relay(settings, storage, guarded).run_forever(should_stop=stop.is_set)
    finally:
        storage.close()


def _serve_relay_metrics(settings: Settings, port: int | None = None) -> None:
    """A worker process's metrics (the relay's, the reconciler's): in
    PROMETHEUS_MULTIPROC_DIR when one is shared with gunicorn (they then appear in the
    app's /metrics), and on its own port (RELAY_METRICS_PORT, RECONCILE_METRICS_PORT) when set."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    port = settings.relay_metrics_port if port is None else port

    registry = REGISTRY
    if settings.prometheus_multiproc_dir:
        atexit.register(multiprocess.mark_process_dead, os.getpid())
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    if port:
        start_http_server(port, registry=registry)


@main.command()
def prune() -> None:
    """Retention: delivery rows past DELIVERY_RETENTION_DAYS (never an event), the personal
    data of events past EVENT_RETENTION_DAYS (when set), quarantine entries past
    QUARANTINE_RETENTION_DAYS."""
    settings = _settings()
    from .outbox import prune as run_prune
    from .storage import Storage

    storage = Storage(settings)
    try:
        pruned = run_prune(storage, settings)
    finally:
        storage.close()
    click.echo(f"deleted {pruned['deliveries']} delivery rows and {pruned['quarantine']} quarantine entries; "
               f"emptied the personal data of {pruned['event_payloads']} events")



_MOMENT = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


@main.command()
@click.option("--vendor", help="Only this vendor's entries.")
@click.option("--id", "entry_id", type=click.IntRange(min=1), help="Only this quarantine entry.")
@click.option("--since", type=_MOMENT, help="Only entries received at or after this moment (UTC).")
@click.option("--until", type=_MOMENT, help="Only entries received before this moment (UTC).")
@click.option("--dry-run", is_flag=True, help="Normalize only: print what would happen, change nothing.")
def replay(vendor: str | None, entry_id: int | None, since, until, dry_run: bool) -> None:
    """Ingest quarantined deliveries with today's normalizer; what still fails stays.

    A progress bar on a terminal; one JSON summary line at the end (and one JSON line per
    entry with --dry-run). Exit status 1 when some entry still fails.
    """
    settings = _settings()
    import json
    import sys
    from datetime import timezone

    from . import logs
    from .errors import DatabaseUnavailable
    from .replay import Selection, count
    from .replay import replay as run_replay
    from .services import Services
    from .vendors import VENDORS

    logs.configure(settings.log_level)
    normalizers = {v.name: v.normalizer(settings) for v in VENDORS}
    if vendor is not None and vendor not in normalizers:
        raise click.ClickException(f"unknown vendor {vendor!r} (one of: {', '.join(normalizers)})")
    utc = [m.replace(tzinfo=timezone.utc) if m is not None else None for m in (since, until)]
    selection = Selection(vendor, entry_id, *utc)
    services = Services.build(settings)
    services.storage.open()

    def show(result) -> None:
        if dry_run:
            click.echo(json.dumps({"quarantine_id": result.entry_id, "vendor": result.vendor,
                                   "outcome": result.outcome, "detail": result.detail}))

    try:
        if sys.stderr.isatty() and not dry_run:
            with click.progressbar(length=count(services, selection), label="replaying", show_eta=True,
                                   show_pos=True, file=sys.stderr) as bar:
                summary = run_replay(services, normalizers, selection, dry_run, lambda result: bar.update(1))
        else:
            summary = run_replay(services, normalizers, selection, dry_run, show)
    except DatabaseUnavailable:
        raise click.ClickException("database unavailable: the entries not yet replayed stay in quarantine") from None
    finally:
        services.storage.close()
    click.echo(json.dumps(summary.as_json()))
    if summary.outcomes.get("failed"):
        sys.exit(1)



@main.command()
@click.option("--vendor", help="Only this vendor's tickets.")
@click.option("--ticket", help="Only this ticket: <vendor>/<external id> (with --account for a named account).")
@click.option("--account", default="", help="The vendor account of --ticket (default: none).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted rebuild.")
def rebuild(vendor: str | None, ticket: str | None, account: str, restart: bool) -> None:
    """Recompute tickets from their stored events with today's normalizer.

    Safe while webhooks arrive; resumes where an interrupted run stopped. A progress bar
    on a terminal; one JSON summary line at the end.
    """
    settings = _settings()
    import json
    import sys

    from . import logs
    from .rebuild import Scope, count
    from .rebuild import rebuild as run_rebuild
    from .storage import Storage
    from .vendors import VENDORS

    logs.configure(settings.log_level)
    vendors = {v.name: v for v in VENDORS}
    external_id = None
    if ticket is not None:
        vendor, _, external_id = ticket.partition("/")
        if not external_id:
            raise click.ClickException("--ticket must be <vendor>/<external id>")
    if vendor is not None and vendor not in vendors:
        raise click.ClickException(f"unknown vendor {vendor!r} (one of: {', '.join(vendors)})")
    scope = Scope(vendor, account, external_id)
    normalizers = {name: v.normalizer(settings) for name, v in vendors.items()}
    storage = Storage(settings)
    try:
        if sys.stderr.isatty():
            with click.progressbar(length=count(storage, scope, restart), label="rebuilding", show_eta=True,
                                   show_pos=True, file=sys.stderr) as bar:
                summary = run_rebuild(storage, vendors, normalizers, scope, restart, lambda: bar.update(1))
        else:
            summary = run_rebuild(storage, vendors, normalizers, scope, restart)
    finally:
        storage.close()
    click.echo(json.dumps(summary.as_json()))



@main.command()
@click.option("--email", help="Forget this person: their fields on tickets, every mention in events, quarantine.")
@click.option("--ticket", help="Empty this ticket's personal data: <vendor>/<external id>.")
@click.option("--account", default="", help="The vendor account of --ticket (default: none).")
def redact(email: str | None, ticket: str | None, account: str) -> None:
    """Remove personal data on request (README: Personal data); prints what it changed."""
    settings = _settings()
    import json

    from .redact import redact_email, redact_ticket
    from .storage import Storage

    if (email is None) == (ticket is None):
        raise click.ClickException("give exactly one of --email and --ticket")
    if email is not None and "@" not in email:
        raise click.ClickException("--email must be an email address")
    storage = Storage(settings)
    try:
        if email is not None:
            changed = redact_email(storage, email)
        else:
            vendor, _, external_id = ticket.partition("/")
            if not vendor or not external_id:
                raise click.ClickException("--ticket must be <vendor>/<external id>")
            changed = redact_ticket(storage, vendor, account, external_id)
    finally:
        storage.close()
    click.echo(json.dumps({"redacted": changed}))


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`, from a thread of their own: a handler runs between
    two bytecodes of the main thread, which may hold the event's lock inside wait()."""
    def handler(*_: object) -> None:
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _reconcile_settings():
    from .reconcile.settings import ReconcileSettings

    try:
        return ReconcileSettings.from_env()
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None


@main.command()
@click.option("--once", is_flag=True, help="Run one pass per vendor and exit (cron, tests).")
def reconcile(once: bool) -> None:
    """Every RECONCILE_INTERVAL, pull what changed from each configured vendor's API and
    repair what the webhooks missed. One JSON line per pass with --once."""
    settings = _settings()
    options = _reconcile_settings()
    from . import logs
    from .reconcile.engine import reconcilers, restore_lag_gauges
    from .reconcile.runner import run_forever, summary

    logs.configure(settings.log_level)
    stop = threading.Event()
    runs = reconcilers(settings, options, stop)
    unconfigured = ("no vendor API is configured: set ZENDESK_API_EMAIL and ZENDESK_API_TOKEN (with "
                    "ZENDESK_SUBDOMAIN), or FRESHDESK_API_KEY (with FRESHDESK_DOMAIN)")
    if once:
        if not runs:
            raise click.ClickException(unconfigured)
        for run in runs:
            click.echo(summary(run.run("reconcile")))
        return
    _serve_relay_metrics(settings, options.metrics_port)
    if not runs:  # idle, not a crash loop: compose and Kubernetes ship it unconfigured
        logging.getLogger("ingestion.reconcile").warning(unconfigured + "; the reconciler idles")
    _stop_on_signals(stop)
    try:
        restore_lag_gauges(settings)
    except Exception:  # the database away at start: the first pass retries it
        pass
    run_forever(runs, options.interval, should_stop=stop.is_set, sleep=stop.wait)


@main.command()
@click.argument("vendor")
@click.option("--since", required=True, type=_MOMENT, help="Import tickets changed at or after this moment (UTC).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted backfill.")
def backfill(vendor: str, since, restart: bool) -> None:
    """Import every ticket of VENDOR changed since a date through the webhooks' path.

    A progress bar with an ETA on a terminal; one JSON summary line at the end; exit
    status 1 when the vendor's API stopped it (run it again to resume)."""
    settings = _settings()
    options = _reconcile_settings()
    import sys
    from datetime import timezone

    from . import logs
    from .reconcile.engine import reconcilers
    from .reconcile.runner import ProgressLine, summary

    logs.configure(settings.log_level)
    stop = threading.Event()
    found = [run for run in reconcilers(settings, options, stop) if run.vendor.name == vendor]
    if not found:
        raise click.ClickException(f"{vendor!r} has no API configured (README: Reconciliation)")
    _stop_on_signals(stop)
    progress = ProgressLine() if sys.stderr.isatty() else None
    result = found[0].run("backfill", since=since.replace(tzinfo=timezone.utc), restart=restart,
                          progress=progress, should_stop=stop.is_set)
    click.echo(summary(result))
    if result.error or result.skipped or not result.caught_up:
        sys.exit(1)


if __name__ == "__main__":
    main()

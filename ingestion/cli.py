"""Command line: `python -m ingestion <command>`, also installed as `ingestion`.

Each command lives beside what it serves (COMMANDS names its module); this module is the
scaffold: the group, and the one set-up every command shares (`job`): settings read and
validated once, JSON logs, a storage opened on demand and closed at the end, and a
database outage said in one line with exit status 1 (never a traceback).

Import order holds by construction. prometheus_client reads PROMETHEUS_MULTIPROC_DIR when
the first module that records a metric is imported, and a directory that does not exist
would be a traceback there. `main()` checks that variable before anything else, and a
command's module is imported only when that command runs.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

import click

from ._version import version
from .config import Settings
from .errors import ApiError, ConfigError, DatabaseUnavailable, MigrationError, SchemaMissing, SourcesKeyError
from .normalize.values import storable
from .variables import directory

#: name -> (module:attribute of the command, one line for the command list).
COMMANDS = {
    "migrate": ("ingestion.jobs.schema:command", "Apply the pending schema migrations to DATABASE_URL."),
    "relay": ("ingestion.jobs.relay:command", "Publish committed ticket changes to the Redis stream."),
    "prune": ("ingestion.jobs.retention:command", "Retention: old deliveries, events' personal data, quarantine."),
    "maintain": ("ingestion.jobs.maintain:command", "Make the months of events ahead; drop those past retention."),
    "replay": ("ingestion.jobs.replay:command", "Ingest quarantined deliveries with today's normalizer."),
    "rebuild": ("ingestion.jobs.rebuild:command", "Recompute tickets from their history with today's normalizer."),
    "redact": ("ingestion.jobs.redact:command", "Forget a person (--email) or a ticket's personal data (--ticket)."),
    "reconcile": ("ingestion.jobs.reconcile.commands:reconcile", "Repair from the vendors' APIs what webhooks missed."),
    "backfill": ("ingestion.jobs.reconcile.commands:backfill", "Import a vendor's tickets changed since a date."),
    "sources": ("ingestion.jobs.sources:command", "Vendor accounts and their credentials: add, list, rotate, retire..."),
}
#: Older names still accepted.
ALIASES = {"init-db": "migrate"}


class Commands(click.Group):
    """Commands imported when they run (list and help come from COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        name = ALIASES.get(name, name)
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name][0].partition(":")
        return getattr(import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, help_text) in COMMANDS.items()])

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """The metrics directory first (see the module docstring), then the command."""
        try:
            directory(os.environ, "PROMETHEUS_MULTIPROC_DIR")
        except ConfigError as error:
            sys.exit(f"configuration error: {error}")
        return super().main(*args, **kwargs)


@click.group(cls=Commands)
@click.version_option(version(), prog_name="helpdesk-ingestion", message="%(prog)s %(version)s")
def main() -> None:
    """Helpdesk webhook ingestion service."""


class Context:
    """What a command gets: the settings, and what it opens on demand (closed at the end)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._storage = None
        self._services = None

    @property
    def storage(self):
        if self._services is not None:
            return self._services.storage
        if self._storage is None:
            from .storage import Storage

            self._storage = Storage(self.settings)
        return self._storage

    @property
    def services(self):
        """The app's services (storage, Redis, the ingestor): what replay stores through."""
        if self._services is None:
            from .services import Services

            self._services = Services.build(self.settings)
            if self._storage is not None:
                self._storage.close()
                self._storage = None
        return self._services

    def close(self) -> None:
        for storage in (self._storage, self._services.storage if self._services else None):
            if storage is not None:
                storage.close()


def load_settings() -> Settings:
    from .vendors import load_settings as load

    try:
        return load()
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None


def known_vendor(name: str | None) -> str | None:
    """`name` when the registry has that vendor (None passes: "every vendor"); else the one
    line every command refuses it with."""
    from .vendors import vendor_names

    if name is not None and name not in vendor_names():
        raise click.ClickException(f"unknown vendor {name!r} (one of: {', '.join(vendor_names())})")
    return name


def ticket_named(text: str) -> tuple[str, str]:
    """(vendor, external id) of a `--ticket <vendor>/<external id>`, the vendor known."""
    vendor, _, external_id = text.partition("/")
    if not vendor or not external_id:
        raise click.ClickException("--ticket must be <vendor>/<external id>")
    return known_vendor(vendor) or vendor, external_id


def job(function: Callable[..., Any]) -> Callable[..., Any]:
    """The set-up every command shares; the command gets a `Context` first."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        from . import logs

        for name, value in kwargs.items():  # bytes that are not UTF-8 arrive as lone surrogates
            if isinstance(value, str) and not storable(value):
                raise click.ClickException(f"{name.replace('_', '-')}: not valid UTF-8 text")
        context = Context(load_settings())
        logs.configure(context.settings.log_level)
        # psycopg_pool logs a WARNING for each failed connection attempt. A command says
        # an outage itself (the one line below; the relay and reconciler log their own
        # "retrying"), so the pool's lines would only bury that one line.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        for deprecation in context.settings.deprecations:
            logging.getLogger("ingestion").warning("deprecated variable: %s", deprecation)
        try:
            return function(context, *args, **kwargs)
        except SchemaMissing as error:
            raise click.ClickException(f"{error.message} (DATABASE_URL names a database without it)") from None
        except DatabaseUnavailable:
            raise click.ClickException("database unavailable (DATABASE_URL): what this step had not finished "
                                       "is unchanged; run the command again once it answers") from None
        except MigrationError as error:
            raise click.ClickException(str(error)) from None
        except SourcesKeyError as error:
            raise click.ClickException(f"configuration error: {error}") from None
        except ApiError as error:  # a value the database refused (storage/pool.py), say
            raise click.ClickException(error.message) from None
        finally:
            context.close()

    return run


if __name__ == "__main__":
    main()

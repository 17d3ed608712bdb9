"""`python -m ingestion migrate`: the pending schema migrations, then functions.sql when
it changed (storage/migrate.py). `make run`, compose's `schema` service and the Kubernetes
init container run it; starting the service never does."""

from __future__ import annotations

import click

from ..cli import Context, job
from ..storage.migrate import latest_version, migrate


@click.command("migrate")
@click.option("--lock-timeout", default="5s", show_default=True,
              help="How long a migration waits for a table lock before giving up (nothing is changed then).")
@job
def command(context: Context, lock_timeout: str) -> None:
    """Apply the pending schema migrations to DATABASE_URL (safe to run again)."""
    applied = migrate(context.settings.database_url, lock_timeout)
    for migration in applied.migrations:
        click.echo(f"applied migration {migration.version} ({migration.name})")
    if applied.functions:
        click.echo("applied functions.sql")
    click.echo(f"schema at version {latest_version()}")

"""`python -m ingestion sources ...`: the vendor accounts webhooks may write into, and their credentials.

Every answer is one JSON document on standard output; a secret is read from standard
input (never an argument, which `ps` and shell histories show) and never printed,
logged or put in an error. Production refuses a guessable secret (strength.py) and any
secret without SOURCES_ENCRYPTION_KEY. Changes reach every worker within
SOURCES_CACHE_SECONDS (ingestion/sources.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..cli import Context, job, known_vendor
from ..config import Settings
from ..normalize.values import storable
from ..secret_box import SecretBox, new_key
from ..sources import webhook_path
from ..storage.sources import ENV
from ..strength import MIN_PASSWORD_LENGTH, MIN_SECRET_LENGTH, weakness
from ..variables import ACCOUNT
from ..vendor import Vendor
from ..vendors import VENDORS

BY_NAME = {vendor.name: vendor for vendor in VENDORS}
NAME = ACCOUNT  # a credential's name: the same plain characters as an account
DEFAULT_NAME = "default"


def _vendor(name: str) -> Vendor:
    return BY_NAME[known_vendor(name) or name]


def _account(account: str) -> str:
    if not ACCOUNT.fullmatch(account):
        raise click.ClickException("the account is written as the webhook URL's last segment: letters, digits, '.', '_' and '-', "
                      "at most 100 (a Zendesk account is its account id, as X-Zendesk-Account-Id sends it)")
    return account


def _method(vendor: Vendor, method: str) -> str:
    if method not in vendor.methods:
        raise click.ClickException(f"{vendor.name} has no {method!r} method: one of {', '.join(vendor.methods)}")
    return method


def _name(name: str) -> str:
    if name == ENV or not NAME.fullmatch(name):
        raise click.ClickException("a credential's name is letters, digits, '.', '_' and '-' (and not 'env', which stands for "
                      "the environment variable: --env)")
    return name


def read_secret(vendor: Vendor, method: str, settings: Settings) -> str:
    """The secret from standard input (one line; a trailing newline is not part of it),
    vetted as production vets the environment's."""
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret.strip():
        raise click.ClickException("no secret on standard input (for example: printf %s \"$SECRET\" | python -m ingestion sources ...)")
    if not storable(secret):
        raise click.ClickException("the secret on standard input is not UTF-8 text (or holds a NUL)")
    if secret != secret.strip():
        raise click.ClickException("the secret starts or ends with whitespace: give it exactly")
    credential = vendor.credential_for(method)
    assert credential is not None
    if credential.kind == "basic":
        user, colon, password = secret.partition(":")
        if not colon or not user or not password:
            raise click.ClickException("a basic credential is user:password")
        problem = weakness(password, MIN_PASSWORD_LENGTH)
        if problem is None and password.lower() == user.lower():
            problem = "is the user name"
        problem = f"has a password that {problem}" if problem else None
    else:
        problem = weakness(secret, MIN_SECRET_LENGTH, vendor.public_test_secrets)
    if problem:
        if not settings.development:
            raise click.ClickException(f"refused: the secret {problem} (production refuses guessable secrets; "
                          "`openssl rand -hex 24` makes a good one)")
        click.echo(f"warning: the secret {problem} (accepted in development only)", err=True)
    return secret


def _box(settings: Settings) -> SecretBox:
    box = SecretBox(settings.sources_keys)
    if not box.ready:
        raise click.ClickException("SOURCES_ENCRYPTION_KEY is not set: sources' secrets are stored encrypted under it "
                      "(`python -m ingestion sources new-key` makes one; give every process the same)")
    return box


def _print(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, ensure_ascii=False))


def _where(vendor: Vendor, account: str, method: str, name: str) -> dict[str, Any]:
    return {"vendor": vendor.name, "account": account, "method": method, "name": name}


@click.group("sources")
def command() -> None:
    """The vendor accounts webhooks may write into, and their credentials."""


@command.command("add")
@click.argument("vendor")
@click.argument("account")
@click.option("--method", "method", required=True, help="hmac, signing, token or basic (the vendor's own methods).")
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="The credential's name, one per webhook (a Zendesk trigger webhook and an event one: two).")
@click.option("--env", "environment", is_flag=True,
              help="No secret: the vendor's environment variable of this method writes into this account too.")
@job
def add(context: Context, vendor: str, account: str, method: str, name: str, environment: bool) -> None:
    """Add a source (or a credential to one): the secret is read from standard input."""
    declared = _vendor(vendor)
    account, method = _account(account), _method(declared, method)
    if environment:
        name, sealed = ENV, None
    else:
        name = _name(name)
        box = _box(context.settings)
        sealed = box.seal(read_secret(declared, method, context.settings))
    if not context.storage.add_credential(vendor, account, method, name, sealed):
        raise click.ClickException(f"{vendor}/{account} already has the {method} credential {name!r}: "
                      "`sources rotate` replaces its value")
    _print({"added": _where(declared, account, method, name), "webhook_path": f"{webhook_path(vendor)}/{account}"})


@command.command("list")
@click.option("--vendor", default=None, help="Only this vendor's sources.")
@job
def list_sources(context: Context, vendor: str | None) -> None:
    """Every source and its credentials' names (never a value)."""
    if vendor is not None:
        _vendor(vendor)
    sources = context.storage.source_list(vendor)
    for source in sources:
        source["webhook_path"] = f"{webhook_path(source['vendor'])}/{source['account']}"
    defaults = {name: {"account": context.settings.default_accounts.get(name, ""),
                       "webhook_path": webhook_path(name),
                       "methods": [c.method for c in v.credentials if context.settings.credential(c.variable)]}
                for name, v in BY_NAME.items() if vendor in (None, name)}
    _print({"sources": sources, "default_sources": defaults})


@command.command("rotate")
@click.argument("vendor")
@click.argument("account")
@click.option("--method", "method", required=True)
@click.option("--name", default=DEFAULT_NAME, show_default=True)
@job
def rotate(context: Context, vendor: str, account: str, method: str, name: str) -> None:
    """Give a credential a new value (from standard input); the old one stays valid as
    previous until `retire`."""
    declared = _vendor(vendor)
    account, method, name = _account(account), _method(declared, method), _name(name)
    box = _box(context.settings)
    sealed = box.seal(read_secret(declared, method, context.settings))
    if not context.storage.rotate_credential(vendor, account, method, name, sealed):
        raise click.ClickException(f"{vendor}/{account} has no {method} credential {name!r} (`sources list` shows them)")
    _print({"rotated": _where(declared, account, method, name), "previous": "valid until `sources retire`"})


@command.command("retire")
@click.argument("vendor")
@click.argument("account")
@click.option("--method", "method", required=True)
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="'env' ends the environment variable's link to this account.")
@click.option("--credential", "whole", is_flag=True,
              help="Retire the credential itself (no rotation under way): its webhooks stop authenticating.")
@job
def retire(context: Context, vendor: str, account: str, method: str, name: str, whole: bool) -> None:
    """End a rotation: the previous value stops working. With --credential (or --name env),
    the credential itself. Retiring a live credential by accident would lock its webhooks
    out, so without a rotation under way and without --credential nothing changes."""
    declared = _vendor(vendor)
    account, method = _account(account), _method(declared, method)
    if name != ENV:
        name = _name(name)
    retired = context.storage.retire_credential(vendor, account, method, name, whole or name == ENV)
    if retired is None:
        raise click.ClickException(f"{vendor}/{account} has no {method} credential {name!r} (`sources list` shows them)")
    if retired == "nothing":
        raise click.ClickException(f"{vendor}/{account} {method}:{name} has no rotation under way (no previous value); to retire "
                      "the credential itself, and refuse its webhooks, add --credential")
    _print({"retired": _where(declared, account, method, name), "what": retired})


def _switch(context: Context, vendor: str, account: str, enabled: bool) -> None:
    declared = _vendor(vendor)
    account = _account(account)
    if not context.storage.set_source_enabled(vendor, account, enabled):
        raise click.ClickException(f"no source {vendor}/{account}")
    _print({"vendor": declared.name, "account": account, "enabled": enabled})


@command.command("disable")
@click.argument("vendor")
@click.argument("account")
@job
def disable(context: Context, vendor: str, account: str) -> None:
    """Refuse everything the source sends (401), credentials kept."""
    _switch(context, vendor, account, False)


@command.command("enable")
@click.argument("vendor")
@click.argument("account")
@job
def enable(context: Context, vendor: str, account: str) -> None:
    """Accept the source's webhooks again."""
    _switch(context, vendor, account, True)


@command.command("remove")
@click.argument("vendor")
@click.argument("account")
@job
def remove(context: Context, vendor: str, account: str) -> None:
    """Remove a source and its credentials; its tickets stay."""
    declared = _vendor(vendor)
    account = _account(account)
    if not context.storage.remove_source(vendor, account):
        raise click.ClickException(f"no source {vendor}/{account}")
    _print({"removed": {"vendor": declared.name, "account": account}, "tickets": "kept"})


@command.command("unbind")
@click.argument("vendor")
@click.argument("account")
@job
def unbind(context: Context, vendor: str, account: str) -> None:
    """Forget the vendor account id a source named otherwise was bound to (the next
    authentic delivery binds one again)."""
    declared = _vendor(vendor)
    account = _account(account)
    if not context.storage.unbind_account_id(vendor, account):
        raise click.ClickException(f"{vendor}/{account} is bound to no account id")
    _print({"unbound": {"vendor": declared.name, "account": account}})


@command.command("new-key")
def new_key_command() -> None:
    """Print a new Fernet key for SOURCES_ENCRYPTION_KEY."""
    click.echo(new_key())


@command.command("rewrap")
@job
def rewrap(context: Context) -> None:
    """After putting a new key first in SOURCES_ENCRYPTION_KEY: re-encrypt every stored
    secret under it, so the old key can then be dropped."""
    box = _box(context.settings)
    count = 0
    for vendor, account, method, name, current, previous in context.storage.sealed_credentials():
        context.storage.rewrap_credential(vendor, account, method, name, box.rewrap(current),
                                          box.rewrap(previous) if previous is not None else None)
        count += 1
    _print({"rewrapped": count})


def check_key(settings: Settings, storage: Any) -> int:
    """Start-up: the key opens what is stored (one value per source suffices: every value
    was sealed under a key of the same list). Returns how many sources it checked; raises
    SourcesKeyError naming the source it cannot open."""
    box = SecretBox(settings.sources_keys)
    seen = set()
    for vendor, account, method, name, current, _ in storage.sealed_credentials():
        if (vendor, account) in seen:
            continue
        seen.add((vendor, account))
        box.open(current, f"{vendor}/{account} {method}:{name}")
    return len(seen)


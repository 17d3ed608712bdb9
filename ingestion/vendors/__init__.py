"""The helpdesk vendors the service takes webhooks from: the registry.

Each vendor is a folder here (its normalizer, its credentials, its quirks' docstring and
its payload schema); `ingestion/vendor.py` says what a folder declares. Adding a vendor
is adding its folder and its name to NAMES, as Zulip's integrations list does.
Everything else (settings, routes, guards, the OpenAPI description, the test signers)
reads VENDORS.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from ..config import Settings
from ..vendor import Vendor

#: The vendor folders, in the order the service lists them.
NAMES = ("freshdesk", "zendesk", "helpscout", "front", "intercom", "hubspot", "jira")

VENDORS: tuple[Vendor, ...] = tuple(import_module(f"{__name__}.{name}").VENDOR for name in NAMES)


def vendor_names() -> tuple[str, ...]:
    return tuple(vendor.name for vendor in VENDORS)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The service's settings from the environment, with every registered vendor's
    variables: what every entry point builds (raises ConfigError naming a bad variable)."""
    return Settings.from_env(env, VENDORS)

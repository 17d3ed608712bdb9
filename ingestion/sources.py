"""Sources: every credential belongs to one vendor account, and nothing else writes there.

A source is (vendor, account) with its credentials: any of the vendor's methods, each
with any number of named values (one per Zendesk webhook), each value with a current and,
during a rotation, a previous one. Sources live in PostgreSQL, their secrets encrypted
(secret_box.py); `python -m ingestion sources ...` manages them (jobs/sources.py).

Which source a webhook is checked against, and so which account its ticket is stored
under, is decided by the URL, never by the body:
- `/webhook/<vendor>/<account>`: that account's source, with its credentials only. An
  account without a source is 404 (unless it is the default source's pinned account);
  a disabled source is 401. Nothing falls back to another source's secret.
- `/webhook/<vendor>` (the bare URL): the vendor's default source, whose credentials are
  the environment variables (FRESHDESK_WEBHOOK_AUTH, ZENDESK_SIGNING_SECRET, ...). Its
  account is `<VENDOR>_ACCOUNT` when set (pinned). Unpinned, it is the account the
  delivery names in a header (Zendesk's X-Zendesk-Account-Id), or none, as before sources
  existed; but an account that has a source of its own is that source's: its credentials
  decide, not the environment's.
- A delivery that names an account (Zendesk's header or body `account_id`) other than
  its source's is refused with 403 before anything is stored. Only the unpinned default
  source with no account yet takes the name the body gives (an event subscription's
  `account_id` without the header), unless that account has a source of its own.
- A source named otherwise than the vendor's account id (`/zendesk/acme`, as the URL
  segment was documented before sources, while Zendesk names 1234567) is bound to the
  first id an authentic delivery names in its body (an event's `account_id`, which the
  signature covers; table account_ids): that one is accepted from then on, in the body
  or the header, and any other refused with 403. The header alone never binds (it is not
  signed: a forged one would lock the source's webhooks out), and until a binding exists
  the source's own credentials decide alone. `sources unbind` forgets a binding, `sources
  list` shows it.
A credential named `env` links a source to the environment's value of its method: the
upgrade gives one to every account that already had tickets, so deployments keep working
as they did, and `sources retire --name env` ends it.

Each worker reads a source from PostgreSQL at most once per SOURCES_CACHE_SECONDS (2 s;
never more than 5), so a change made with the CLI reaches every worker and instance within
that time, without a restart or any messaging. While the database cannot answer, a source
read before keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .errors import (
    AccountMismatch,
    DatabaseUnavailable,
    ServiceUnavailable,
    SourceDisabled,
    SourcesKeyError,
    SourceUnknown,
    Unauthorized,
)
from .secret_box import SecretBox
from .storage.sources import ENV, StoredSource
from .vendor import Vendor
from .verifiers import Verifier

log = logging.getLogger(__name__)

#: Where webhooks arrive: `<prefix>/<vendor>` is a vendor's default source,
#: `<prefix>/<vendor>/<account>` an account's (web/webhook.py routes them).
WEBHOOK_PREFIX = "/api/v1/ingest/webhook"


def webhook_path(vendor: str) -> str:
    return f"{WEBHOOK_PREFIX}/{vendor}"

#: Cached lookups per worker, at most; past it expired entries go, then all.
CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class Source:
    vendor: str
    account: str
    verifiers: tuple[Verifier, ...]
    #: A row of `sources` (else the vendor's default source, from the environment).
    stored: bool
    #: The default source's account came from <VENDOR>_ACCOUNT.
    pinned: bool = False

    @property
    def name(self) -> str:
        return f"{self.vendor}/{self.account}"


class SourceDirectory:
    """Resolves a webhook's source; one per process (Services), caching what it read."""

    def __init__(self, settings: Settings, vendors: Mapping[str, Vendor], lookup: Callable[[str, str], Any],
                 bind: Callable[[str, str, str | None], str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic
                 ) -> None:
        """`lookup(vendor, account)`: the stored source or None (Storage.source);
        `bind(vendor, account, claimed)`: the account's bound vendor id, binding `claimed`
        (None: only read) when it has none (Storage.bind_account_id; no `bind`: nothing
        binds, and a source named otherwise takes any claim)."""
        self.settings = settings
        self.vendors = vendors
        self.box = SecretBox(settings.sources_keys)
        self._lookup = lookup
        self._bind = bind
        self._bound: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, StoredSource | None]] = {}
        self._built: dict[tuple[str, str], tuple[StoredSource, Source]] = {}
        self._lock = threading.Lock()
        self._environment = {name: vendor.verifiers(settings) for name, vendor in vendors.items()}

    # --- resolution -------------------------------------------------------------------
    def resolve(self, vendor: str, url_account: str | None, headers: Mapping[str, str]) -> Source:
        """The source a request is checked against (see the module docstring)."""
        pinned = self.settings.default_accounts.get(vendor)
        if url_account is not None:
            stored = self._stored(vendor, url_account)
            if stored is not None:
                return self._source(vendor, url_account, stored)
            if url_account == pinned:
                return self._default(vendor, url_account, pinned=True)
            raise SourceUnknown(vendor, url_account)
        account = pinned
        if account is None:
            header = self.vendors[vendor].account_header
            account = (header(headers) if header else None) or ""
        stored = self._stored(vendor, account) if account else None
        if stored is not None:
            return self._source(vendor, account, stored)
        return self._default(vendor, account, pinned=pinned is not None)

    def settle_account(self, source: Source, payload: Mapping[str, Any], headers: Mapping[str, str]) -> str:
        """The account the delivery is stored under: its source's. Raises AccountMismatch
        when the delivery names another one (the unpinned default source with no account
        yet takes the name, as before sources existed, unless it has a source of its own)."""
        vendor = self.vendors[source.vendor]
        if vendor.claimed_accounts is None:
            return source.account
        named = vendor.claimed_accounts(payload, headers)
        account = source.account
        signed: tuple[str, ...] | None = None  # the claims of the body alone, read when needed
        for claimed in named:
            if claimed == account:
                continue
            adoptable = not source.stored and not source.pinned and account == "" and len(named) == 1
            if adoptable:
                own = self._stored(source.vendor, claimed)
                if own is None or (own.enabled and any(c.name == ENV for c in own.credentials)):
                    account = claimed
                    continue
            named_otherwise = account != "" and vendor.is_account_id is not None and not vendor.is_account_id(account)
            if named_otherwise:
                # Only what the credential covered binds (the body): an unsigned header
                # could otherwise bind the source to a forged id and lock its webhooks out.
                signed = signed if signed is not None else vendor.claimed_accounts(payload, {})
                bound = self._bound_id(source.vendor, account, claimed if claimed in signed else None)
                if bound is None or bound == claimed:
                    continue
            raise AccountMismatch(source.vendor, account, claimed)
        return account

    def _bound_id(self, vendor: str, account: str, claimed: str | None) -> str | None:
        """The vendor id an account named otherwise is bound to, binding `claimed` (a claim
        from the signed body) when it has none; None: not bound. Cached like sources: an
        `unbind` reaches every worker within the period."""
        if self._bind is None:
            return None
        key = (vendor, account)
        now = self._clock()
        cached = self._bound.get(key)
        if cached is not None and cached[0] > now and (cached[1] is not None or claimed is None):
            return cached[1]
        bound = self._bind(vendor, account, claimed)
        with self._lock:
            if len(self._bound) >= CACHE_ENTRIES:
                self._bound.clear()
            self._bound[key] = (now + self.settings.sources_cache_seconds, bound)
        return bound

    # --- what a source verifies with ----------------------------------------------------
    def _default(self, vendor: str, account: str, pinned: bool) -> Source:
        return Source(vendor, account, self._environment[vendor], stored=False, pinned=pinned)

    def _source(self, vendor: str, account: str, stored: StoredSource) -> Source:
        """The stored source, ready to verify: built (its secrets decrypted, its HMAC keys
        prepared) once per read of it, not once per request."""
        if not stored.enabled:
            raise SourceDisabled(vendor, account)
        if not stored.credentials:  # all retired: nothing may write here (development included)
            raise Unauthorized(f"Source {vendor}/{account} has no credentials", "no_credentials")
        built = self._built.get((vendor, account))
        if built is not None and built[0] is stored:
            return built[1]
        try:
            verifiers = self.verifiers(vendor, account, stored)
        except SourcesKeyError as error:
            # Stored under another key than this process holds (the CLI ran with another
            # SOURCES_ENCRYPTION_KEY, or with one where the service has none): the operator
            # must fix the key; until then the vendor retries (503), nothing is lost.
            log.error("source %s/%s cannot be checked: %s", vendor, account, error)
            raise ServiceUnavailable(f"Source {vendor}/{account} cannot be checked now (its stored secret does not "
                                     "open with this service's SOURCES_ENCRYPTION_KEY); please retry later",
                                     self.settings.retry_after_seconds) from None
        source = Source(vendor, account, verifiers, stored=True)
        with self._lock:
            self._built[(vendor, account)] = (stored, source)
        return source

    def verifiers(self, vendor: str, account: str, stored: StoredSource) -> tuple[Verifier, ...]:
        """One verifier per method, over the source's values of it, each labelled
        `<method>:<name>` (` (previous)` for a rotation's old value)."""
        declared = self.vendors[vendor]
        values: dict[Any, list[tuple[str, Any]]] = {}  # the vendor's Credential -> (label, value)
        for credential in stored.credentials:
            declaration = declared.credential_for(credential.method)
            if declaration is None:  # a method this vendor no longer has
                continue
            found = values.setdefault(declaration, [])
            if credential.name == ENV:
                found.extend(declaration.environment_values(self.settings))
                continue
            for sealed, suffix in ((credential.current, ""), (credential.previous, " (previous)")):
                if sealed is not None:
                    where = f"{vendor}/{account} {credential.method}:{credential.name}"
                    secret = self.box.open(sealed, where)
                    value: Any = tuple(secret.split(":", 1)) if declaration.kind == "basic" else secret
                    found.append((f"{credential.method}:{credential.name}{suffix}", value))
        return tuple(declaration.verifier(tuple(pairs), self.settings) for declaration, pairs in values.items() if pairs)

    # --- the cache ------------------------------------------------------------------------
    def _stored(self, vendor: str, account: str) -> StoredSource | None:
        key = (vendor, account)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            stored = self._lookup(vendor, account)
        except DatabaseUnavailable:
            if cached is not None:  # what was read before keeps serving while the database is away
                return cached[1]
            raise
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= CACHE_ENTRIES:
                    self._cache.clear()
                self._built = {k: v for k, v in self._built.items() if k in self._cache}
            self._cache[key] = (now + self.settings.sources_cache_seconds, stored)
        return stored

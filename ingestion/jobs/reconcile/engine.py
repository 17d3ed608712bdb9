"""One reconciler run: pull a vendor's ticket export page by page and store each ticket
through the webhooks' own path, so the store becomes complete whatever the webhooks did.

Why it works this way: docs/design.md, "A reconciler run".
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ...config import Settings
from ...errors import ApiError, Stopped, UnstorablePayload, VendorAPIError
from ...ingest import identity
from ...json_body import dumps
from ...metrics import RECONCILE_LAST_SUCCESS, RECONCILE_PAGES, RECONCILE_TICKETS, child
from ...normalize.values import storable
from ...storage import Storage
from ...storage.reconcile import KEPT, ReconcileRun
from ...storage.tickets import ingest_params
from ...tickets import RECONCILIATION, Deletion, Outcome
from ...vendor import APIAccess, ExportRequest, Vendor
from .client import VendorAPI
from .settings import ReconcileSettings

log = logging.getLogger(__name__)

EVENT_TYPE = RECONCILIATION
MODES = ("reconcile", "backfill")


@dataclass
class RunResult:
    vendor: str
    account: str
    mode: str
    since: datetime | None = None
    reached: datetime | None = None
    pages: int = 0
    outcomes: Counter = field(default_factory=Counter)
    caught_up: bool = False
    skipped: bool = False  # another reconciler holds the lock
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "account": self.account, "mode": self.mode,
                "since": self.since.isoformat() if self.since else None,
                "reached": self.reached.isoformat() if self.reached else None, "pages": self.pages,
                "tickets": dict(self.outcomes), "caught_up": self.caught_up, "skipped": self.skipped,
                "error": self.error}


#: (result so far) -> None: called after each page (the backfill's progress bar).
Progress = Callable[[RunResult], None]


class Reconciler:
    """Runs of one vendor's export, for one account."""

    def __init__(self, settings: Settings, options: ReconcileSettings, vendor: Vendor, access: APIAccess,
                 storage: Storage, client: VendorAPI | None = None, clock: Callable[[], datetime] | None = None,
                 stop: threading.Event | None = None) -> None:
        assert vendor.export is not None
        self.settings, self.options, self.vendor, self.access = settings, options, vendor, access
        self.storage = storage
        self.export = vendor.export
        self.normalize = vendor.normalizer(settings)
        self.client = client or VendorAPI(
            vendor.name, access, requests_per_minute=options.requests_per_minute, timeout=options.timeout,
            max_attempts=options.max_attempts, breaker_threshold=settings.circuit_breaker_threshold,
            breaker_timeout=settings.circuit_breaker_timeout,
            **({"sleep": stop.wait, "stopping": stop.is_set} if stop is not None else {}))
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._accounts: list[str] | None = None
        self._warned = False

    @property
    def account(self) -> str:
        """The account of the run's cursor and lock: the configured one, or "" (found per ticket)."""
        return self.access.account or ""

    def run(self, mode: str, since: datetime | None = None, restart: bool = False, progress: Progress | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> RunResult:
        """One run: a reconcile pass (from the stored cursor, or RECONCILE_LOOKBACK ago the
        first time) or a backfill (from `since`, resuming an interrupted one from the same
        `since` unless `restart`). Stops at the end of the export, on `should_stop`, or on an
        API error (saved in the cursor row; the next run resumes)."""
        assert mode in MODES
        result = RunResult(self.vendor.name, self.account, mode)
        where = {"vendor": self.vendor.name, "account": self.account, "mode": mode}

        def locked(run: ReconcileRun | None) -> RunResult:
            if run is None:
                log.info("another reconciler is running for this account", extra=where)
                result.skipped = True
            else:
                self._run(run, result, since, restart, progress, should_stop)
            return result

        return self.storage.reconcile_run(f"{self.vendor.name}/{self.account}/{mode}", where, locked)

    def _run(self, run: ReconcileRun, result: RunResult, since: datetime | None,
             restart: bool, progress: Progress | None, should_stop: Callable[[], bool]) -> None:
        stored = run.cursor()
        begin = stored is None or restart or (result.mode == "backfill" and since is not None and stored[0] != since)
        if result.mode == "reconcile" and stored is not None and stored[1] is None and not restart:
            begin = True  # a first pass that never got a page
        self._accounts = None  # the stored accounts, looked up once per run when needed
        if begin:
            since = since or self.clock() - timedelta(seconds=self.options.lookback)
            run.begin(since)
            cursor, reached = None, None
        else:
            since, cursor, reached, _ = stored
        result.since, result.reached = since, reached
        while not should_stop():
            try:
                account_problem = self._check_accounts(run)
                if account_problem:
                    raise ValueError(account_problem)
                request = ExportRequest.of(self.export.start(since) if cursor is None else self.export.resume(cursor))
                body, headers = self.client.send(request)
                page = self.export.read(body, headers, cursor, reached or since, self.options.overlap)
            except Stopped:
                return  # SIGTERM during a wait: the cursor is where the last page left it
            except (VendorAPIError, ValueError) as error:
                message = str(error)
                result.error = message
                run.failed(message)
                log.warning("reconcile run stopped; the next one resumes here", extra={**run.where, "error": message})
                return
            for ticket in page.tickets:
                outcome = self._store(run, ticket)
                result.outcomes[outcome] += 1
                child(RECONCILE_TICKETS, self.vendor.name, outcome).inc()
            if page.position is not None and (reached is None or page.position > reached):
                reached = page.position
            cursor = page.cursor
            run.advance(cursor, reached, page.done)
            child(RECONCILE_PAGES, self.vendor.name).inc()
            result.pages += 1
            result.reached = reached
            if page.done:
                result.caught_up = True
                if result.mode == "reconcile":
                    RECONCILE_LAST_SUCCESS.labels(self.vendor.name, self.account).set(self.clock().timestamp())
            if progress is not None:
                progress(result)
            if page.done:
                return

    def _store(self, run: ReconcileRun, ticket: dict[str, Any]) -> str:
        body, updated_at, deleted = self.export.snapshot(ticket)
        try:
            event = self.normalize(body, {}, self.access.account or None)
        except ApiError as error:
            return self._unreadable(ticket, str(error))
        if event is None:
            return self._unreadable(ticket, "not a ticket")
        raw = dumps(body)  # a number past a float's range as the API sent it
        if not storable(raw):  # a lone surrogate in a field the normalizer does not read
            return self._unreadable(ticket, "a value PostgreSQL cannot store")
        # A ticket without updated_at: a digest of its content is its version (never the
        # content itself, which would outlive a permanent delete in the delivery key).
        version = updated_at or "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
        event = replace(event, account=self._account_for(), event_type=EVENT_TYPE,
                        vendor_event_id=f"reconcile:{version}"[:200], comment=None, changes=None,
                        deletion=Deletion.SOFT if deleted else Deletion.RESTORED)
        key, _ = identity(event, raw.encode())
        params = ingest_params(event, key, None, raw, "reconcile")
        try:
            outcome, stored_version, existed = run.store(params)
        except UnstorablePayload as error:  # a value PostgreSQL cannot store: skip, go on
            return self._unreadable(ticket, str(error))
        if outcome is Outcome.STALE:
            return "stale"
        if outcome not in KEPT:
            return "unchanged"
        new_version = event.fields.get("vendor_updated_at")
        if not existed or (stored_version is not None and new_version is not None and new_version > stored_version):
            return "repaired"
        return "enriched"


    def _check_accounts(self, run: ReconcileRun) -> str | None:
        """Without a configured account, the one account the vendor's tickets are stored
        under ("" when none are yet). With several, which one an exported ticket belongs
        to cannot be told (ticket numbers are per account, so a number match would merge
        two customers' tickets): the run refuses, naming the variable to set."""
        if self.access.account is not None or self._accounts:
            return None
        variable = f"{self.vendor.name.upper()}_API_ACCOUNT"
        self._accounts = run.accounts(self.vendor.name)
        if len(self._accounts) > 1:
            self._accounts = None
            return (f"{self.vendor.name} tickets are stored under several accounts: set {variable} to the "
                    "account this API belongs to")
        if not self._accounts and not self._warned:  # asked again each page until some are stored
            self._warned = True
            log.warning(f"no {self.vendor.name} ticket is stored yet and {variable} is not set: reconciled "
                        f"tickets go to the empty account; if your webhooks name an account (Zendesk's account "
                        f"id, Intercom's workspace, HubSpot's portal), set {variable} to it", extra={"vendor": self.vendor.name})
        return None

    def _account_for(self) -> str:
        """The account the webhooks store tickets under: the configured one
        (<VENDOR>_API_ACCOUNT: ZENDESK_API_ACCOUNT, HUBSPOT_API_ACCOUNT, ...), else the one
        in use, else ""."""
        if self.access.account is not None:
            return self.access.account
        return self._accounts[0] if self._accounts else ""

    def _unreadable(self, ticket: dict[str, Any], why: str) -> str:
        log.warning("an exported ticket could not be stored; the run goes on",
                    extra={"vendor": self.vendor.name, "id": str(ticket.get("id"))[:100], "error": why[:300]})
        return "unreadable"


def reconcilers(settings: Settings, options: ReconcileSettings, storage: Storage,
                stop: threading.Event | None = None) -> list[Reconciler]:
    """One per vendor whose API is configured. `stop`: set on SIGTERM, it cuts every wait short."""
    from ...vendors import VENDORS

    return [Reconciler(settings, options, vendor, settings.vendor_apis[vendor.name], storage, stop=stop)
            for vendor in VENDORS if vendor.name in settings.vendor_apis]


def restore_lag_gauges(storage: Storage) -> None:
    """After a restart, the lag gauge starts from the last pass that caught up, not from
    zero (which would look like an hour-long outage to the alert)."""
    for vendor, account, caught_up_at in storage.caught_up():
        RECONCILE_LAST_SUCCESS.labels(vendor, account).set(caught_up_at.timestamp())

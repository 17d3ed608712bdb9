"""/console/quarantine: the refused authentic deliveries, and their replay from the browser.

The entries of the operator's scope, newest first with keyset pagination (`before`, an
id), filtered by vendor, account, reason and a time range kept in the URL (a plain GET
form: a view can be shared). Each shows its reason, error, attempts, the headers kept
with it (ingestion/quarantine.py keeps identifying headers only; they are filtered again
here, so an entry stored before that rule shows no credential either) and its raw body,
folded: UTF-8 as text, anything else escaped byte by byte, control characters escaped,
so no body can break the page. The list shows a body's first PREVIEW_BYTES; the
entry's own page shows it whole.

Replay of one entry (a POST with the CSRF token) goes through ingestion/replaying.py's
`replay_one`, the path of `python -m ingestion replay` (batches included), and shows
what became of it: ingested as created, updated... with links to the tickets, or still
failing with its new reason. The bulk replay of everything a filter matches, with its
count, confirmation, progress and cancel, is quarantine_bulk.py (its docstring says how
it runs in a synchronous gunicorn worker).

Every query takes the operator's scope (storage/console_quarantine.py): another
account's entry is a 404, like one that does not exist. Logs carry ids and outcomes only,
never a body, a header or an error message (they may quote personal data).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, g, render_template, request

from ...config import Settings
from ...errors import BadFilter
from ... import replaying
from ..current import services
from .access import console_page
from .quarantine_reading import (
    KNOWN_REASONS,
    MAX_ID,
    PAGE_SIZE,
    PREVIEW_BYTES,
    cursor,
    filter_args,
    present,
    read_filter,
    scoped_entry,
)

log = logging.getLogger(__name__)


def routes(blueprint: Blueprint, settings: Settings) -> None:
    from ...vendors import VENDORS
    from . import quarantine_bulk

    vendor_names = [vendor.name for vendor in VENDORS]
    normalizers = {vendor.name: vendor.normalizer(settings) for vendor in VENDORS}
    splitters = replaying.vendor_splitters()

    def replay(entry: dict[str, Any]) -> replaying.Result:
        """One entry through the CLI's path; the outcome is logged, nothing of its content."""
        result = replaying.replay_one(services(), normalizers, entry, dry_run=False, splitters=splitters)
        log.info("console replay", extra={"quarantine_id": result.entry_id, "vendor": result.vendor,
                                          "outcome": result.outcome})
        return result

    @blueprint.get("/quarantine", endpoint="quarantine")
    @console_page(settings)
    def quarantine() -> Any:
        storage, scope = services().storage, g.operator.scope
        jobs = storage.console_replays(scope)
        try:
            found = read_filter(request.args, vendor_names)
            before = cursor(request.args.get("before"))
        except BadFilter as error:
            return render_template("console/quarantine.html", problem=str(error), entries=[], more=False,
                                   jobs=jobs, filters=filter_args(request.args), reasons=KNOWN_REASONS), 400
        rows, more = storage.console_quarantine_page(found, scope, before, PAGE_SIZE, PREVIEW_BYTES)
        return render_template("console/quarantine.html", problem=None, entries=[present(r) for r in rows],
                               more=more, jobs=jobs, filters=filter_args(request.args), reasons=KNOWN_REASONS,
                               paged=before != MAX_ID)

    @blueprint.get("/quarantine/<entry>", endpoint="quarantine_entry")
    @console_page(settings)
    def one(entry: str) -> str:
        return render_template("console/quarantine_entry.html", entry=present(scoped_entry(entry)))

    @blueprint.post("/quarantine/<entry>/replay", endpoint="quarantine_replay")
    @console_page(settings)
    def replay_entry(entry: str) -> str:
        storage, scope = services().storage, g.operator.scope
        row = scoped_entry(entry, fresh=True)
        result = replay(row)
        tickets = storage.console_tickets(list(result.tickets), scope) if result.tickets else []
        after = storage.console_quarantine_entry(row["id"], scope, fresh=True) if result.outcome == "failed" else None
        return render_template("console/quarantine_result.html", result=result, tickets=tickets,
                               entry=present(after) if after else None)

    quarantine_bulk.routes(blueprint, settings, vendor_names, replay)

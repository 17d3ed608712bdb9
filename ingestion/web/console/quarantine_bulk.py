"""The quarantine's bulk replay: everything a filter matches, not just the page shown.

A job is a row (`console_replays`, migration 13) moved forward by the requests that look at
it, a bounded batch per poll, each entry claimed under a lease so two polls never replay it
twice. Why it works this way: docs/design.md, "Bulk replay from the console".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.wrappers import Response

from ...config import Settings
from ...errors import ApiError, BadFilter
from ...replaying import Result
from ..current import services
from ...storage import Storage
from ...storage.console_quarantine import QuarantineFilter
from .access import console_page
from .quarantine_reading import an_id, entry_id, filter_args, read_filter

log = logging.getLogger(__name__)

BATCH = 20
BUDGET_SECONDS = 5.0
LEASE_SECONDS = 60.0


def advance(storage: Storage, job: dict[str, Any], replay: Callable[[dict[str, Any]], Result]) -> None:
    """Replay up to BATCH of the job's entries, one claim at a time (see the docstring)."""
    deadline = time.monotonic() + BUDGET_SECONDS
    for _ in range(BATCH):
        taken, entry = storage.console_replay_claim(job, LEASE_SECONDS)
        if not taken:
            return
        if entry is None:
            log.info("console bulk replay done", extra={"replay_job": job["id"]})
            return
        try:
            failed = replay(entry).outcome == "failed"
        except ApiError:
            raise  # the database: the lease runs out and the entry is taken again later
        except Exception:  # noqa: BLE001 (one entry that breaks the replay must not stall the job)
            log.exception("console bulk replay: an entry broke the replay", extra={
                "replay_job": job["id"], "quarantine_id": entry["id"]})
            failed = True
        storage.console_replay_finish(job["id"], entry["id"], failed)
        if time.monotonic() > deadline:
            return


def job_or_404(job: str) -> dict[str, Any]:
    found = services().storage.console_replay(entry_id(job, "bulk replay"), g.operator.scope)
    if found is None:
        abort(404, "No such bulk replay")
    return found


def seen_number(name: str) -> int:
    """The count or the id the operator confirmed (0 is a count, never an id)."""
    text = request.form.get(name, "")
    found = 0 if text == "0" and name == "count" else an_id(text)
    if found is None:
        raise BadFilter(f"The confirmation lacks its '{name}': count again")
    return found


def routes(blueprint: Blueprint, settings: Settings, vendors: list[str],
           replay: Callable[[dict[str, Any]], Result]) -> None:

    def confirmation(found: QuarantineFilter, args: dict[str, str], problem: str | None = None,
                     status: int = 200) -> tuple[str, int]:
        count, max_id = services().storage.console_quarantine_count(found, g.operator.scope)
        return render_template("console/quarantine_bulk.html", count=count, max_id=max_id, filters=args,
                               problem=problem), status

    @blueprint.get("/quarantine/bulk", endpoint="quarantine_bulk")
    @console_page(settings)
    def bulk() -> Any:
        try:
            found = read_filter(request.args, vendors)
        except BadFilter as error:
            return render_template("console/quarantine_bulk.html", count=None, max_id=0,
                                   filters=filter_args(request.args), problem=str(error)), 400
        return confirmation(found, filter_args(request.args))

    @blueprint.post("/quarantine/bulk", endpoint="quarantine_bulk_confirm")
    @console_page(settings)
    def confirm() -> Any:
        storage, scope = services().storage, g.operator.scope
        try:
            found = read_filter(request.form, vendors)
            seen, max_id = seen_number("count"), seen_number("max_id")
        except BadFilter as error:
            return render_template("console/quarantine_bulk.html", count=None, max_id=0,
                                   filters=filter_args(request.form), problem=str(error)), 400
        running = next((job for job in storage.console_replays(scope) if job["state"] == "running"), None)
        if running is not None:  # one at a time per scope: a second confirmation (a double click,
            # another tab) would replay the same entries again
            return redirect(url_for("console.quarantine_job", job=running["id"]), code=303)
        count, newest = storage.console_quarantine_count(found, scope, up_to=max_id)
        max_id = min(max_id, newest or 0)  # the server's snapshot, never beyond what it counted
        if count > seen:
            return confirmation(found, filter_args(request.form), status=409, problem=(
                f"The filter now matches more entries than the {seen} you confirmed: confirm the new count."))
        if count == 0:
            return confirmation(found, filter_args(request.form), problem="Nothing left to replay.")
        job = storage.console_replay_create(found, scope, max_id, count)
        log.info("console bulk replay confirmed", extra={"replay_job": job, "entries": count})
        return redirect(url_for("console.quarantine_job", job=job), code=303)

    @blueprint.get("/quarantine/replays/<job>", endpoint="quarantine_job")
    @console_page(settings)
    def show(job: str) -> str:
        return render_template("console/quarantine_job.html", job=job_or_404(job))

    @blueprint.post("/quarantine/replays/<job>/advance", endpoint="quarantine_job_advance")
    @console_page(settings)
    def step(job: str) -> Any:
        found = job_or_404(job)
        if found["state"] == "running":
            advance(services().storage, found, replay)
            found = job_or_404(job)
        if request.headers.get("HX-Request"):
            return render_template("console/quarantine_progress.html", job=found)
        return redirect(url_for("console.quarantine_job", job=found["id"]), code=303)

    @blueprint.post("/quarantine/replays/<job>/cancel", endpoint="quarantine_job_cancel")
    @console_page(settings)
    def cancel(job: str) -> Response:
        found = job_or_404(job)
        if services().storage.console_replay_cancel(found["id"], g.operator.scope):
            log.info("console bulk replay cancelled", extra={"replay_job": found["id"]})
        return redirect(url_for("console.quarantine_job", job=found["id"]), code=303)

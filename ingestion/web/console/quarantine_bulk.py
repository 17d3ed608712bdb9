"""The quarantine's bulk replay: everything a filter matches, not just the page shown.

How it runs in a synchronous gunicorn app. A sync worker answers one request at a time
within its timeout, so a bulk replay cannot run inside the request that confirms it, nor
in a thread of the worker (killed with it, unseen by the others). It is a row instead,
`console_replays` (migration 13), moved forward by the requests that look at it:

1. GET /console/quarantine/bulk?<filter>: how many entries of the operator's scope the
   filter matches, and the highest of their ids (the snapshot);
2. the confirmation, a POST (with the CSRF token) of the filter, that count and that
   id. The server counts again up to that id: more than the operator saw (a forged form)
   is refused and asked again, fewer (entries replayed or evicted meanwhile) is fine.
   The job keeps the filter, the scope, the id range (entries with id <= max_id: what
   arrives later is not part of it) and the count confirmed;
3. the job's page, /console/quarantine/replays/<id>, shows its progress, which htmx
   refreshes every 2 s by posting the page's advance form (a POST with the CSRF token:
   it changes things). Each post replays a bounded batch (BATCH entries, at most
   BUDGET_SECONDS) and answers the counts; once the job is done or cancelled the answer
   no longer polls. Without JavaScript the same form is a "Continue" button that
   advances one batch per POST. A job nobody polls
   (the tab was closed) waits where it stands; the quarantine page lists the jobs, and
   opening one resumes it;
4. cancel sets the state: the next entry is never taken, the one under way (if any)
   completes and is counted.

One job runs at a time per scope: a second confirmation while one runs (a double click,
another tab) is sent to the running job, since two jobs over the same entries would
replay each twice. The job covers the ids the server counted at confirmation, never
more than the form says. An entry whose replay breaks (an error that is not the
service's) is counted failed and the job goes on; a database outage stops the poll, and
the entry is taken again once its lease ends.

Two polls at once (two tabs, a slow answer overtaken by the next poll) never replay one
entry twice: every entry is claimed by one UPDATE that succeeds only while no request
holds the job (its lease, claimed_until, has passed) and only from where the job stands
(last_id as read), so of two claims one takes the entry and the other nothing. Why a
lease in the row rather than a PostgreSQL advisory lock: an advisory lock belongs to a
connection, which would stay pinned for the whole batch while replay_one needs a
connection of its own, and a sync worker's pool holds one (DB_POOL_SIZE=1). A worker
killed mid-entry leaves its claim, which expires after LEASE_SECONDS; the entry is then
replayed again, which replay_one makes safe (stored but not yet released, it is a
redelivery: `already_exists`).

Scope: the job keeps the confirming token's scope and every claim applies it and the
filter in SQL; a job is read, advanced and cancelled only within the operator's scope,
so a token scoped to one account gets 404 for another's job.
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

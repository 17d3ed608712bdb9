"""/console/tickets/<vendor>/<external_id>?account=&after=: a ticket as it stands and its
timeline, oldest first.

The page answers what an operator asks of one ticket: what it looks like now, and how it
got there. Each event shows its outcome, its comment (public or private), its changes as
a diff, its raw payload folded, its request id and credential; marks say what no longer
stands as it arrived: a `stale` event (older than the ticket, kept but not applied), a
payload a redaction masked, a redaction's own record (outcome `forget`), a payload
removed by retention or forgotten with the ticket's content (a permanent delete or
`redact --ticket`, the events before its `forget` record).

`account` defaults to empty, as in the read API (and is checked the same way). The
timeline pages by event id (`after`), PAGE_EVENTS at a time and fewer once the payloads
reach storage.PAGE_BUDGET_BYTES. A ticket that does not exist and one outside a scoped
token's account are the same 404 page (the scope is applied in SQL: storage/console_ticket.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, g, render_template

from ...config import Settings
from ...errors import BadRequest
from ...normalize.values import storable
from ..current import services
from ..read_api import _account, _int_arg
from .access import console_page

#: Events per page of the timeline (fewer when their payloads are large).
PAGE_EVENTS = 200
#: How deep a diff follows nested changes (custom fields) before showing the rest as JSON.
DIFF_DEPTH = 4
NOT_FOUND = "Ticket not found"


@dataclass(frozen=True)
class Change:
    """One line of an event's diff. `kind`: "change" (previous → current), "tags"
    (previous: removed, current: added) or "set" (only the new value is known).
    Values are display text; None is a null (shown as "none")."""

    field: str
    kind: str
    previous: str | None
    current: str | None


def shown(value: Any) -> str | None:
    """A JSON value as an operator reads it: strings as they are, null as None, the rest
    as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def diff(changes: Any, path: str = "", depth: int = 0) -> list[Change]:
    """The `changes` column ({field: {previous, current}}, with nested custom fields and
    Zendesk's {tags: {added, removed}}) as flat diff lines, in the order stored."""
    if not isinstance(changes, dict):
        return [Change(path or "changes", "set", None, shown(changes))]
    lines = []
    for name, value in changes.items():
        where = f"{path}.{name}" if path else str(name)
        keys = set(value) if isinstance(value, dict) else set()
        if keys and keys <= {"previous", "current"}:
            if "previous" in keys:
                lines.append(Change(where, "change", shown(value["previous"]), shown(value.get("current"))))
            else:
                lines.append(Change(where, "set", None, shown(value["current"])))
        elif keys and keys <= {"added", "removed"}:
            lines.append(Change(where, "tags", shown(value.get("removed") or []), shown(value.get("added") or [])))
        elif keys and depth < DIFF_DEPTH:
            lines.extend(diff(value, where, depth + 1))
        else:
            lines.append(Change(where, "set", None, shown(value)))
    return lines


def parsed(text: str | None) -> Any:
    """Stored JSON text (changes, custom fields) as values; text that is too deep to
    parse here stays text (shown as it is)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def redaction(changes: Any) -> str:
    """What a `forget` event's summary says was forgotten (field names and counts, never
    a value: storage/history.py)."""
    if not isinstance(changes, dict):
        return "A redaction's record (its summary was removed by retention)."
    fields = ", ".join(str(name) for name in changes.get("fields") or []) or "none"
    count = changes.get("events")
    rewritten = f"; {count} event(s) rewritten" if isinstance(count, int) else ""
    if changes.get("forgotten") == "person":
        return f"A person was redacted: ticket fields {fields}{rewritten}."
    return f"The ticket's content was forgotten: fields {fields}{rewritten}."


def payload_state(event: dict[str, Any], ticket: dict[str, Any]) -> str:
    """Why an event shows the payload it shows: "kept", "redacted" (masked by a
    redaction), "record" (a redaction's record: never a delivery), "forgotten" (with the
    ticket's content), "retention" (emptied past EVENT_RETENTION_DAYS) or "none"."""
    if event["outcome"] == "forget":
        return "record"
    if event["payload"] is not None:
        return "redacted" if event["payload_redacted"] else "kept"
    forgotten_at = ticket["forgotten_at_event"]
    if ticket["purged_at"] is not None or (forgotten_at is not None and event["id"] < forgotten_at):
        return "forgotten"
    return "retention" if event["fields_retained"] else "none"


def timeline(events: list[dict[str, Any]], ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """The events as the template shows them: each row with its diff (or its redaction
    summary) and the state of its payload."""
    shown_events = []
    for event in events:
        changes = parsed(event["changes"])
        is_record = event["outcome"] == "forget"
        shown_events.append({**event, "diff": [] if is_record or changes is None else diff(changes),
                             "redaction": redaction(changes) if is_record else None,
                             "payload_state": payload_state(event, ticket)})
    return shown_events


def custom_fields(text: str) -> list[tuple[str, str | None]]:
    values = parsed(text)
    if not isinstance(values, dict):
        return [("(custom fields)", shown(values))]
    return [(str(name), shown(value)) for name, value in values.items()]


def _query() -> tuple[str, int]:
    """`account` (as the read API reads it) and `after` (the timeline's cursor); a bad
    value is a 400 page that says what is wrong."""
    try:
        return _account(), _int_arg("after", 0, 0, 2**63 - 1)
    except BadRequest as error:
        abort(400, error.message)


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/tickets/<vendor>/<path:external_id>", endpoint="ticket")
    @console_page(settings)
    def ticket(vendor: str, external_id: str) -> str:
        account, after = _query()
        if not (storable(vendor) and storable(external_id)):  # no ticket has such an id
            abort(404, NOT_FOUND)
        page = services().storage.console_ticket(vendor, account, external_id, g.operator.scope, after, PAGE_EVENTS)
        if page is None:  # absent, or outside the scope: the same answer
            abort(404, NOT_FOUND)
        row = page.ticket
        return render_template(
            "console/ticket.html", ticket=row, account=account, after=after, more=page.more,
            custom_fields=custom_fields(row["custom_fields"]), events=timeline(page.events, row),
            next_after=page.events[-1]["id"] if page.more and page.events else None)

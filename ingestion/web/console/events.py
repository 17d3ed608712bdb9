"""/console/events: every stored event, newest first, a page at a time, filtered; and its
live tail, /console/events/tail, which htmx polls every 5 s for the rows newer than
the newest shown.

The filters are a plain GET form, so a view lives in its URL and can be shared; they
combine (AND). Each value is checked here, and a bad one is a message on the page
(400), never a query and never a 500: an unknown vendor or outcome, a time that is not
one, a payload search that is not a JSON object. Times are UTC, whatever the browser's
zone (a time written without one is read as UTC). The payload search is JSON
containment (`{"status": 5}` finds the payloads holding that), on a GIN index.

Pages are keyset pages (`before` / `after`: an event id; storage/console_events.py),
never OFFSET. The live tail is off unless the URL says `tail=1`: then the newest page
carries a hidden row that htmx replaces every 5 s by itself (with the next cursor) and
the rows that arrived, so they appear on top. Without JavaScript nothing polls, and the
"Refresh" link beside it is the tail. A scoped token sees its account's events only:
the scope is part of every query (storage), so another account's events, cursors
included, are simply not there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, g, render_template, request, url_for

from ...config import Settings
from ...errors import UnstorablePayload
from ...json_body import MAX_NESTING, nesting
from ...normalize.values import whole_number
from ..current import services
from ...storage.console_events import EventPage
from ...vendors import vendor_names
from .access import console_page

PAGE_SIZE = 50
#: The outcomes an event can have (the events table's check).
OUTCOMES = ("created", "updated", "recorded", "stale", "deleted", "forget")
#: The URL's filter fields, in the form's order; `from` is storage's `since`.
TEXT_FIELDS = ("account", "event_type", "external_id", "email")
URL_FIELDS = ("vendor", "account", "event_type", "outcome", "from", "until", "external_id", "email", "contains")
MAX_CURSOR = 2**63 - 1


@dataclass
class Query:
    """What the URL asks for, checked: the filters (storage's names), the cursor, the
    tail, and the messages of whatever could not be read."""

    filters: dict[str, Any] = field(default_factory=dict)
    before: int | None = None
    after: int | None = None
    tail: bool = False
    problems: list[str] = field(default_factory=list)
    #: The fields as the form shows them again (times normalized to UTC).
    shown: dict[str, str] = field(default_factory=dict)

    def args(self, tail: bool | None = None, **extra: Any) -> dict[str, Any]:
        """The URL arguments of this view (its filters, its tail unless `tail` says
        otherwise), plus `extra` (a cursor)."""
        kept = {name: value for name, value in self.shown.items() if value}
        if self.tail if tail is None else tail:
            kept["tail"] = "1"
        return {**kept, **{name: value for name, value in extra.items() if value is not None}}


def read_query(args: Any, vendors: list[str]) -> Query:
    """The URL's filters, cursor and tail, each checked (see the module's docstring)."""
    query = Query(tail=args.get("tail") == "1")
    query.shown = {name: args.get(name, "").strip() for name in URL_FIELDS}
    for name, value in query.shown.items():
        if "\x00" in value:  # PostgreSQL's text cannot hold one: say so, rather than fail
            query.problems.append(f"The field {name} holds a NUL character.")
            query.shown[name] = ""
    read_choice(query, "vendor", vendors)
    read_choice(query, "outcome", OUTCOMES)
    query.filters.update((name, query.shown[name]) for name in TEXT_FIELDS if query.shown[name])
    read_times(query)
    if query.shown["contains"]:
        problem = containment_problem(query.shown["contains"])
        if problem:
            query.problems.append(f"Payload search: {problem}")
        else:
            query.filters["contains"] = query.shown["contains"]
    for name in ("before", "after"):
        value = args.get(name, "")
        number = whole_number(value, 1, MAX_CURSOR)
        if number is not None:
            setattr(query, name, number)
        elif value:
            query.problems.append(f"The page cursor {name}={value!r} is not an event id.")
    if query.before is not None and query.after is not None:
        query.problems.append("A page is either before or after an event, not both.")
    return query


def read_choice(query: Query, name: str, choices: Sequence[str]) -> None:
    value = query.shown[name]
    if value in choices:
        query.filters[name] = value
    elif value:
        query.problems.append(f"Unknown {name} {value!r}: one of {', '.join(choices)}.")


def read_times(query: Query) -> None:
    """The time range: `from` (included) and `until` (excluded), shown again in UTC."""
    for name, storage_name in (("from", "since"), ("until", "until")):
        text = query.shown[name]
        if not text:
            continue
        moment = read_time(text)
        if moment is None:
            query.problems.append(f"{name.capitalize()}: {text!r} is not a time; write it 2025-01-31T14:00 (UTC) "
                                  "or with its offset.")
        else:
            query.filters[storage_name] = moment
            query.shown[name] = moment.replace(tzinfo=None).isoformat(timespec="seconds")  # year 99 as 0099
    since, until = query.filters.get("since"), query.filters.get("until")
    if since is not None and until is not None and since >= until:
        query.problems.append("The time range is empty: “from” must be before “until”.")


def read_time(text: str) -> datetime | None:
    """An ISO 8601 time (date alone: its midnight); without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # (year 1 at +01:00 is before the first UTC moment)
        return None


def containment_problem(text: str) -> str | None:
    """Why `text` cannot be searched for by JSON containment (None: it can)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    if nesting(text) > MAX_NESTING:  # json.loads recurses: as deep as a webhook body may be, no deeper
        return f"this nests deeper than {MAX_NESTING} levels."
    try:
        value = json.loads(text, parse_constant=refuse)
    except ValueError as error:
        return f"this is not JSON ({error}); write an object such as {{\"status\": 5}}."
    if not isinstance(value, dict):
        return f"{text!r} is JSON but not an object; write an object such as {{\"status\": 5}}."
    return None


def find(query: Query) -> EventPage | None:
    """The page the query asks for, within the operator's scope; None (and a problem
    more) when the database cannot use a value: JSON that Python reads and PostgreSQL
    does not (a \\u0000 escape, a lone surrogate)."""
    try:
        return services().storage.console_events(query.filters, g.operator.scope, before=query.before,
                                                 after=query.after, limit=PAGE_SIZE)
    except UnstorablePayload as error:
        query.problems.append(f"Payload search: {error.message}.")
        return None


def routes(blueprint: Blueprint, settings: Settings) -> None:
    vendors = list(vendor_names())

    @blueprint.get("/events", endpoint="events")
    @console_page(settings)
    def events() -> Any:
        query = read_query(request.args, vendors)
        page = None if query.problems else find(query)
        on_top = query.before is None and query.after is None
        tail_url = (url_for("console.events_tail", **query.args(after=page.rows[0]["id"] if page.rows else None))
                    if page is not None and on_top and query.tail else None)
        body = render_template("console/events.html", query=query, page=page, outcomes=OUTCOMES, on_top=on_top,
                               tail_url=tail_url)
        return body, 400 if query.problems else 200

    @blueprint.get("/events/tail", endpoint="events_tail")
    @console_page(settings)
    def tail() -> Any:
        """The rows newer than `after` (the newest shown), oldest of them last, under the
        poller that asks again from the newest of them."""
        query = read_query(request.args, vendors)
        query.before, query.tail = None, True
        page = None if query.problems else find(query)
        if page is None:
            return "", 400
        top = page.rows[0]["id"] if page.rows else query.after
        return render_template("console/events_tail.html", page=page,
                               tail_url=url_for("console.events_tail", **query.args(after=top)))

"""Freshdesk's ticket list, filtered by `updated_since` and ordered by `updated_at`
ascending: what the reconciler pulls.

`GET /api/v2/tickets?updated_since=<ISO>&order_by=updated_at&order_type=asc&per_page=100
&page=<n>`: at most 100 tickets a page (and at most 300 pages a listing). Page numbers
shift when a ticket is updated while the pages are read (it moves to the end), so each
page is asked as page 1 of a new listing from the previous page's latest updated_at
(keyset paging; a few tickets are read twice: their versions are already stored); only
a page that lies within one second goes on to the next page number. A page shorter than
100 without a next link is the last: the next pass starts from the latest updated_at seen, minus
RECONCILE_OVERLAP (a ticket updated while the pages were read moves to the end of the
listing; the overlap catches what a clock or a shifting page would miss). A `Link`
header with rel="next" also says more pages follow (Freshdesk sends one). Deleted
(trashed) tickets are not listed. Limits are per account and plan (from 50 calls a
minute on a trial); a 429 says how long to wait in `Retry-After`.
Authentication: the API key as the Basic user, `X` as the password.
https://developers.freshdesk.com/api/#list_all_tickets
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ...normalize.values import timestamp
from ...vendor import APIAccess, ExportPage, TicketExport
from .. import exports

PATH = "/api/v2/tickets"
PER_PAGE = 100
MAX_PAGE = 300


def access(env: Mapping[str, str]) -> APIAccess | None:
    """FRESHDESK_API_KEY, at FRESHDESK_API_URL or FRESHDESK_DOMAIN's host."""
    key = exports.value(env, "FRESHDESK_API_KEY")
    if not key:
        return None
    default = exports.host_label(env, "FRESHDESK_DOMAIN", ".freshdesk.com")
    return APIAccess(base_url=exports.base_url(env, "FRESHDESK_API_URL", default, "FRESHDESK_DOMAIN"),
                     user=key, password="X", account=exports.account(env, "FRESHDESK_API_ACCOUNT"))


def _query(since: datetime, page: int) -> tuple[str, dict[str, str]]:
    return PATH, {"updated_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "order_by": "updated_at",
                  "order_type": "asc", "per_page": str(PER_PAGE), "page": str(page)}


def _cursor(since: datetime, page: int) -> str:
    return f"{since.isoformat()}|{page}"


def _parse(cursor: str) -> tuple[datetime, int]:
    since, _, page = cursor.rpartition("|")
    parsed = timestamp(since, "cursor")
    if parsed is None or not page.isdigit():
        raise ValueError(f"not a Freshdesk export cursor: {cursor!r}")
    return parsed, int(page)


def start(since: datetime) -> tuple[str, dict[str, str]]:
    return _query(since, 1)


def resume(cursor: str) -> tuple[str, dict[str, str]]:
    return _query(*_parse(cursor))


def read(body: Any, headers: Mapping[str, str], cursor: str | None, reached: datetime,
         overlap: int) -> ExportPage:
    if not isinstance(body, list):
        raise ValueError("not a ticket list (a JSON array)")
    tickets = tuple(t for t in body if isinstance(t, dict))
    window, page = _parse(cursor) if cursor else (reached, 1)
    last = exports.latest(tickets)
    more = 'rel="next"' in headers.get("link", "") or len(body) >= PER_PAGE
    if not more:  # the last page: the next pass starts from what was reached
        latest = max(filter(None, (last, reached, window)))
        # (at least a second back: updated_since may be exclusive)
        return ExportPage(tickets, _cursor(latest - timedelta(seconds=max(overlap, 1)), 1), True, last)
    # Each page starts again from the last one's latest update (a second before it, in
    # case updated_since is exclusive): a ticket updated meanwhile moves to the end of
    # the listing and shifts page numbers, which must not skip anyone. Tickets of that
    # second are read twice; their versions are stored already.
    following = last - timedelta(seconds=1) if last is not None else None
    if following is not None and following > window:
        return ExportPage(tickets, _cursor(following, 1), False, last)
    if page < MAX_PAGE:  # a page all within one second (or unreadable times): the next page number
        return ExportPage(tickets, _cursor(window, page + 1), False, last)
    # Freshdesk serves no page past 300: more than 30,000 tickets in one second (or pages
    # without readable times). Step past the second rather than stop here for ever.
    return ExportPage(tickets, _cursor(window + timedelta(seconds=1), 1), False, last)


def snapshot(ticket: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, bool]:
    return {"ticket": ticket}, exports.snapshot_time(ticket), ticket.get("deleted") is True


EXPORT = TicketExport(access=access, secret_variable="FRESHDESK_API_KEY",
                      url_variable="FRESHDESK_API_URL", start=start, resume=resume, read=read, snapshot=snapshot)

"""HubSpot's CRM ticket search, by `hs_lastmodifieddate`: what the reconciler pulls.

Sources: developers.hubspot.com/docs/api/crm/search ("Search the CRM": filters,
sorting, paging, limitations) and /docs/api/crm/tickets.
- `POST /crm/v3/objects/tickets/search` with a JSON body: `filterGroups` (here one
  filter, `hs_lastmodifieddate` GTE the start in Unix milliseconds; dates are taken as
  ISO 8601 or Unix ms), `sorts` ("Only one sorting rule can be applied to any search":
  `hs_lastmodifieddate` ASCENDING), `properties` (PROPERTIES: without it a search answers
  only the default ones), `limit` (at most 200 a page) and `after` (the previous page's
  `paging.next.after`; no `paging.next` on the last page).
- "The search endpoints are limited to 10,000 total results for any given query.
  Attempting to page beyond 10,000 will result in a 400 error." And `after` is an
  offset into the results sorted by modification time: a ticket modified while the pages
  are read moves to the end and shifts every offset, so an offset page would skip a
  ticket. So each page is asked as a new search from the previous page's latest
  `hs_lastmodifieddate` (GTE: the tickets of that millisecond are read again; their
  versions are stored already, `unchanged`), which also keeps every search far under the
  10,000 cap. Only a page all within one millisecond goes on with `after`; past 10,000 in
  one millisecond, the export steps past it rather than stop there for ever.
- "It may take a few moments for newly created or updated CRM objects to appear in
  search results": a pass starts from the latest modification it saw, less
  RECONCILE_OVERLAP (5 minutes by default).
- Results are CRM objects `{id, properties, createdAt, updatedAt, archived}` (objects.py
  reads them as snapshots). The search lists no archived (deleted) ticket: deletions are
  the webhooks' (`ticket.deletion`).
- Authentication: a private app's access token (Settings > Integrations > Private apps,
  scope `tickets`), sent as `Authorization: Bearer <token>`. Host: api.hubapi.com.
- Limits: "The search endpoints are rate limited to five requests per second per
  account", and their responses carry none of the rate-limit headers; a 429 is waited
  out (`Retry-After` when sent, else the client's default minute).
- The account: the API names no portal in a ticket, and the webhooks store tickets under
  the `portalId`. HUBSPOT_API_ACCOUNT says which (unset: the one portal the stored HubSpot
  tickets have).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ...vendor import APIAccess, ExportPage, ExportRequest, TicketExport
from .. import exports
from . import objects, properties

PATH = "/crm/v3/objects/tickets/search"
LIMIT = 200
MAX_RESULTS = 10_000
MODIFIED = "hs_lastmodifieddate"
#: What each ticket is asked for: every property the normalizer maps, the pipeline (kept
#: in custom_fields, as its webhook events keep it) and the object's times.
PROPERTIES = (*properties.MAPPED, "hs_pipeline", "createdate", MODIFIED)
DEFAULT_URL = "https://api.hubapi.com"
TOKEN, URL, ACCOUNT = "HUBSPOT_API_TOKEN", "HUBSPOT_API_URL", "HUBSPOT_API_ACCOUNT"


def access(env: Mapping[str, str]) -> APIAccess | None:
    """HUBSPOT_API_TOKEN, at HUBSPOT_API_URL or api.hubapi.com."""
    return exports.bearer_access(env, TOKEN, URL, DEFAULT_URL, ACCOUNT)


def _search(since: int, after: str | None) -> ExportRequest:
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "GTE", "value": str(since)}]}],
        "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
        "properties": list(PROPERTIES),
        "limit": LIMIT,
    }
    if after:
        body["after"] = after
    return ExportRequest(PATH, method="POST", body=body)


def _ms(moment: datetime) -> int:
    return max(0, int(moment.timestamp() * 1000))


def _cursor(since: int, after: str | None) -> str:
    return f"{since}|{after or ''}"


def _parse(cursor: str) -> tuple[int, str | None]:
    since, bar, after = cursor.partition("|")
    if not bar or not since.isascii() or not since.isdigit():
        raise ValueError(f"not a HubSpot export cursor: {cursor[:100]!r}")
    return int(since), after or None


def start(since: datetime) -> ExportRequest:
    return _search(_ms(since), None)


def resume(cursor: str) -> ExportRequest:
    return _search(*_parse(cursor))


def read(body: Any, headers: Mapping[str, str], cursor: str | None, reached: datetime,
         overlap: int) -> ExportPage:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ValueError("not a CRM search page (results)")
    tickets = tuple(t for t in body["results"] if isinstance(t, dict))
    window = _parse(cursor)[0] if cursor else _ms(reached)
    times = [moment for ticket in tickets if (moment := objects.updated_at(ticket)[1]) is not None]
    last = max(times) if times else None
    paging = body.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    if after is None or after == "":
        # The last page: the next pass starts from the latest modification seen (this
        # run's pages included), less the overlap (the search index lags a little).
        latest = max(filter(None, (last, reached, datetime.fromtimestamp(window / 1000, timezone.utc))))
        return ExportPage(tickets, _cursor(_ms(latest - timedelta(seconds=overlap)), None), True, last)
    if last is not None and _ms(last) > window:  # a new search from this page's latest
        return ExportPage(tickets, _cursor(_ms(last), None), False, last)
    after = str(after)
    if not (after.isascii() and after.isdigit()) or int(after) < MAX_RESULTS:
        return ExportPage(tickets, _cursor(window, after), False, last)  # a page all in one millisecond
    # More than 10,000 tickets modified in one millisecond (or pages without readable
    # times): HubSpot serves no page past 10,000. Step past the millisecond.
    return ExportPage(tickets, _cursor(window + 1, None), False, last)


def snapshot(ticket: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, bool]:
    """The CRM object itself: the normalizer reads it as a `ticket.snapshot`."""
    sent, _ = objects.updated_at(ticket)
    return ticket, sent, ticket.get("archived") is True


EXPORT = TicketExport(access=access, secret_variable=TOKEN, url_variable=URL, start=start, resume=resume,
                      read=read, snapshot=snapshot)

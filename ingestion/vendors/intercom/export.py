"""Intercom's ticket search, by `updated_at`: what the reconciler pulls.

Sources: [TS] = the `searchTickets` operation of Intercom's OpenAPI description
(github.com/intercom/Intercom-OpenAPI descriptions/2.15/api.intercom.io.yaml, @8889625),
[PG] = developers.intercom.com/docs/build-an-integration/learn-more/rest-apis/pagination,
[RL] = developers.intercom.com/docs/references/rest-api/errors/rate-limiting.
- `POST /tickets/search` with a JSON body `{query: {field, operator, value}, pagination:
  {per_page, starting_after}}` [TS] (from API version 2.10 on: the 2.7 to 2.9 descriptions
  have no ticket search). `updated_at` is searchable as a UNIX timestamp; its operator
  `>` is documented as "Greater (or equal) than", and the documented example sends the
  timestamp as a string, as here. Tickets only: conversations are another search, and the
  webhooks keep the two apart (`ticket:<id>` here, always).
- Pages: at most 150 a page [PG]; `pages.next.starting_after` is the cursor of the next
  page, and a page without `pages.next` is the last [TS, PG]. The search takes no sort, so
  a search is read to its end before the next one starts from the latest `updated_at`
  seen, less RECONCILE_OVERLAP (at least a second: `>` may be strict). The cursor stored
  between pages is the search's start and the `starting_after` reached, so an
  interrupted run goes on with the same search.
- The API version is pinned with the `Intercom-Version` header (VERSION), so the ticket
  object is the shape the normalizer reads (2.15: `ticket_state` an object,
  `ticket_attributes` with `_default_title_` / `_default_description_`); unpinned, a
  request gets whatever version the app is set to in the Developer Hub.
- A ticket's `updated_at` is UNIX seconds: the version stored (`reconcile:<seconds>`), and
  the event time. The webhooks time an event by the notification's `created_at`, so a
  ticket the webhooks delivered is `unchanged` or `stale` here, never repaired twice.
  Deleted tickets are not listed (no deletion can be reconciled).
- Authentication: an access token (Developer Hub > your app > Authentication), sent as
  `Authorization: Bearer <token>`. Hosts: api.intercom.io, api.eu.intercom.io,
  api.au.intercom.io (the workspace's region: INTERCOM_API_URL picks the other two).
- Limits: per app and workspace (10,000 calls a minute for an app, 25,000 for a
  workspace's private apps, spread over 10-second windows); a 429 says when the window
  resets in `X-RateLimit-Reset` (a UNIX time) [RL] and, Intercom documents, not
  `Retry-After`: the client then waits its default minute, far past a 10-second window.
- The account: the API names no workspace in a ticket, and the webhooks store tickets
  under the workspace's `app_id`. INTERCOM_API_ACCOUNT says which (unset: the one
  workspace the stored Intercom tickets have).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ...vendor import APIAccess, ExportPage, ExportRequest, TicketExport
from .. import exports

PATH = "/tickets/search"
PER_PAGE = 150
VERSION = "2.15"
DEFAULT_URL = "https://api.intercom.io"
TOKEN, URL, ACCOUNT = "INTERCOM_API_TOKEN", "INTERCOM_API_URL", "INTERCOM_API_ACCOUNT"


def access(env: Mapping[str, str]) -> APIAccess | None:
    """INTERCOM_API_TOKEN, at INTERCOM_API_URL or api.intercom.io."""
    return exports.bearer_access(env, TOKEN, URL, DEFAULT_URL, ACCOUNT)


def _search(since: int, starting_after: str | None) -> ExportRequest:
    pagination: dict[str, Any] = {"per_page": PER_PAGE}
    if starting_after:
        pagination["starting_after"] = starting_after
    body = {"query": {"field": "updated_at", "operator": ">", "value": str(since)}, "pagination": pagination}
    return ExportRequest(PATH, method="POST", body=body, headers={"Intercom-Version": VERSION})


def _cursor(since: int, starting_after: str | None) -> str:
    return f"{since}|{starting_after or ''}"


def _parse(cursor: str) -> tuple[int, str | None]:
    since, bar, starting_after = cursor.partition("|")
    if not bar or not since.isascii() or not since.isdigit():
        raise ValueError(f"not an Intercom export cursor: {cursor[:100]!r}")
    return int(since), starting_after or None


def _seconds(moment: datetime) -> int:
    return max(0, int(moment.timestamp()))


def start(since: datetime) -> ExportRequest:
    return _search(_seconds(since), None)


def resume(cursor: str) -> ExportRequest:
    return _search(*_parse(cursor))


def read(body: Any, headers: Mapping[str, str], cursor: str | None, reached: datetime,
         overlap: int) -> ExportPage:
    if not isinstance(body, dict) or not isinstance(body.get("tickets"), list):
        raise ValueError("not a ticket search page (ticket.list with tickets)")
    tickets = tuple(t for t in body["tickets"] if isinstance(t, dict))
    window = _parse(cursor)[0] if cursor else _seconds(reached)
    last = exports.latest(tickets)
    pages = body.get("pages")
    following = pages.get("next") if isinstance(pages, dict) else None
    after = following.get("starting_after") if isinstance(following, dict) else None
    if isinstance(after, str) and after:
        return ExportPage(tickets, _cursor(window, after), False, last)
    # The search's last page: the next one starts from the latest update seen (this run's
    # pages included), less the overlap (at least a second: `>` may be strict).
    latest = max(filter(None, (last, reached, datetime.fromtimestamp(window, timezone.utc))))
    return ExportPage(tickets, _cursor(_seconds(latest - timedelta(seconds=max(overlap, 1))), None), True, last)


def snapshot(ticket: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, bool]:
    """The ticket object alone: the normalizer reads it as a `ticket.snapshot` (by its
    `type`, which the search sends: written in should it ever be left out)."""
    updated = ticket.get("updated_at")
    version = str(updated) if isinstance(updated, (int, str)) and not isinstance(updated, bool) else None
    body = ticket if "type" in ticket else {"type": "ticket", **ticket}
    return body, version or None, False


EXPORT = TicketExport(access=access, secret_variable=TOKEN, url_variable=URL, start=start, resume=resume,
                      read=read, snapshot=snapshot)

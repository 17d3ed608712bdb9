"""Zendesk's incremental ticket export, cursor-based: what the reconciler pulls.

`GET /api/v2/incremental/tickets/cursor.json?start_time=<unix>` starts an export,
`?cursor=<after_cursor>` continues it; each page holds up to `per_page` (1000) tickets
in the order they changed, `after_cursor`, and `end_of_stream` once the export reached
the present (Zendesk leaves out the last minute). The after_cursor of the last page is
where the next pass resumes: nothing is fetched twice and nothing needs an overlap.
Deleted tickets are included with status `deleted`. Limit: 10 requests a minute (30
with the High Volume add-on); a 429 says how long to wait in `Retry-After`.
Authentication: an API token, as Basic `{email}/token:{token}`.
https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ...vendor import APIAccess, ExportPage, TicketExport
from .. import exports

PATH = "/api/v2/incremental/tickets/cursor.json"
PER_PAGE = "1000"


def access(env: Mapping[str, str]) -> APIAccess | None:
    """ZENDESK_API_EMAIL + ZENDESK_API_TOKEN, at ZENDESK_API_URL or ZENDESK_SUBDOMAIN's host."""
    credentials = exports.pair(env, "ZENDESK_API_EMAIL", "ZENDESK_API_TOKEN")
    if credentials is None:
        return None
    email, token = credentials
    default = exports.host_label(env, "ZENDESK_SUBDOMAIN", ".zendesk.com")
    return APIAccess(base_url=exports.base_url(env, "ZENDESK_API_URL", default, "ZENDESK_SUBDOMAIN"),
                     user=f"{email}/token", password=token,
                     account=exports.account(env, "ZENDESK_API_ACCOUNT"))


def start(since: datetime) -> tuple[str, dict[str, str]]:
    return PATH, {"start_time": str(max(0, int(since.timestamp()))), "per_page": PER_PAGE}


def resume(cursor: str) -> tuple[str, dict[str, str]]:
    kind, _, value = cursor.partition(":")
    if kind == "start":  # an export that has not returned a cursor yet
        return PATH, {"start_time": value, "per_page": PER_PAGE}
    return PATH, {"cursor": value, "per_page": PER_PAGE}


def read(body: Any, headers: Mapping[str, str], cursor: str | None, reached: datetime,
         overlap: int) -> ExportPage:
    if not isinstance(body, dict) or not isinstance(body.get("tickets"), list) \
            or not isinstance(body.get("end_of_stream"), bool):
        raise ValueError("not an incremental ticket export page (tickets, end_of_stream)")
    tickets = tuple(t for t in body["tickets"] if isinstance(t, dict))
    after = body.get("after_cursor") or _cursor_of(body.get("after_url"))
    if isinstance(after, str) and after:
        following = "cursor:" + after
    else:  # nothing changed yet: start from the same time again
        following = cursor or "start:" + str(max(0, int(reached.timestamp())))
    return ExportPage(tickets=tickets, cursor=following, done=body["end_of_stream"],
                      position=exports.latest(tickets))


def _cursor_of(url: Any) -> str | None:
    """The cursor in an `after_url` (for a page that gives only the URL)."""
    if not isinstance(url, str):
        return None
    found = parse_qs(urlsplit(url).query).get("cursor")
    return found[0] if found else None


def snapshot(ticket: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, bool]:
    return {"ticket": ticket}, exports.snapshot_time(ticket), ticket.get("status") == "deleted"


EXPORT = TicketExport(access=access, secret_variable="ZENDESK_API_TOKEN",
                      url_variable="ZENDESK_API_URL", start=start, resume=resume, read=read, snapshot=snapshot)

"""The console's events page (web/console/events.py): every stored event with its ticket,
newest first, a page at a time, filtered.

Order: (received_at, id), newest first: what "newest" means to an operator, and the
order a time range narrows. Keyset pagination: a page starts after its cursor, an event
id, whose (received_at, id) the same statement looks up; pages neither skip nor repeat
a row however deep they go, and nothing is counted or skipped with OFFSET (which reads
every row it skips: seconds, deep in 10,000,000 events).

The filters are fixed fragments (FILTERS), chosen by code and ANDed, their values
parameters; so each combination is planned for the values it has (no `IS NULL OR`
that would hide the indexes from the planner). A scoped token's account is one more
fragment, always there, the cursor's look-up included: another account's events are
never read, not even to place a cursor. The indexes that keep every filter fast:
migrations/0012_console_event_indexes.sql.

A search the indexes cannot narrow (a payload value most events hold, that few of the
newest do) may read far: it is stopped at SEARCH_TIMEOUT_MS and the page says so,
rather than holding a connection for the server's statement_timeout and then reading
as an outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from .pool import LONGEST_OWN_TIMEOUT_MS, Database
from .replica import Reads
from .tickets import dicts

#: How long one page's search may take before it is given up (the page then says so).
SEARCH_TIMEOUT_MS = LONGEST_OWN_TIMEOUT_MS

#: What a row of the list shows (never the payload: it can be a megabyte).
COLUMNS = """e.id, e.received_at, t.vendor, t.account, t.external_id, e.event_type, e.outcome,
       e.comment_body IS NOT NULL AS has_comment, e.comment_public, e.request_id"""

#: Each filter the page offers: its condition, on its parameter of the same name.
FILTERS = {
    "vendor": "t.vendor = %(vendor)s",
    "account": "t.account = %(account)s",
    "event_type": "e.event_type = %(event_type)s",
    "outcome": "e.outcome = %(outcome)s",
    "since": "e.received_at >= %(since)s",
    "until": "e.received_at < %(until)s",
    "external_id": "t.external_id = %(external_id)s",
    "email": "lower(t.requester_email) = lower(%(email)s)",
    # The GIN index (jsonb_path_ops) answers @> with a JSON value, given as its text.
    "contains": "e.payload @> %(contains)s::jsonb",
}
#: A scoped token's account, on the page's tickets and on the cursor's.
SCOPE = "{t}.vendor = %(scope_vendor)s AND {t}.account = %(scope_account)s"

#: Where a cursor event stands in the order (nothing: gone, or not the token's to see).
CURSOR = """SELECT c.received_at, c.id FROM events c JOIN tickets ct ON ct.id = c.ticket_id
                  WHERE c.id = %(cursor)s{scope}"""

PAGE = """
SELECT {columns}
  FROM events e JOIN tickets t ON t.id = e.ticket_id
 WHERE {where}
 ORDER BY e.received_at {order}, e.id {order}
 LIMIT %(limit)s
"""


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first; `older` / `newer`: the cursors of the pages on
    either side (None: nothing there). `lost_cursor`: the cursor named an event that is
    not there (pruned by retention, or another account's), so the page is empty.
    `timed_out`: the search took longer than SEARCH_TIMEOUT_MS and was stopped."""

    rows: list[dict[str, Any]]
    older: int | None
    newer: int | None
    lost_cursor: bool = False
    timed_out: bool = False


def cursor_sql(scoped: bool) -> str:
    return CURSOR.format(scope=" AND " + SCOPE.format(t="ct") if scoped else "")


def cursor_exists(scoped: bool) -> str:
    return f"SELECT EXISTS ({cursor_sql(scoped)})"


def page_sql(filters: Mapping[str, Any], scoped: bool, direction: str | None) -> str:
    """The statement for these filters (their names, all from FILTERS), in a direction:
    None (the newest), "older" or "newer" than the cursor."""
    where = [FILTERS[name] for name in FILTERS if filters.get(name) is not None]
    if scoped:
        where.append(SCOPE.format(t="t"))
    if direction is not None:
        where.append(f"(e.received_at, e.id) {'<' if direction == 'older' else '>'} ({cursor_sql(scoped)})")
    return PAGE.format(columns=COLUMNS, where="\n   AND ".join(where) or "true",
                       order="ASC" if direction == "newer" else "DESC")


class ConsoleEventStore:
    """What the console's events page asks of PostgreSQL."""

    database: Database
    reads: Reads

    def console_events(self, filters: Mapping[str, Any], scope: tuple[str, str] | None,
                       before: int | None = None, after: int | None = None, limit: int = 50) -> EventPage:
        """A page of the events the filters match (their names: FILTERS; a value of None
        is no filter), within `scope` (vendor, account) when given: the newest, or those
        just older than the event `before`, or just newer than the event `after`."""
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(f"no such filter: {sorted(unknown)}")
        direction = "older" if before is not None else "newer" if after is not None else None
        cursor = before if before is not None else after
        params = {**{name: value for name, value in filters.items() if value is not None},
                  "limit": limit + 1, "cursor": cursor}
        if scope is not None:
            params.update(scope_vendor=scope[0], scope_account=scope[1])
        query = page_sql(filters, scope is not None, direction)

        def work(conn: psycopg.Connection) -> EventPage:
            try:
                with conn.transaction():
                    conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(SEARCH_TIMEOUT_MS),))
                    rows = dicts(conn, query, params).fetchall()
            except psycopg.errors.QueryCanceled:
                return EventPage([], older=None, newer=None, timed_out=True)
            more = len(rows) > limit
            rows = rows[:limit]
            if not rows:
                lost = cursor is not None and not conn.execute(cursor_exists(scope is not None), params).fetchone()[0]
                return EventPage([], older=None, newer=None, lost_cursor=lost)
            if direction == "newer":
                rows.reverse()
                return EventPage(rows, older=rows[-1]["id"], newer=rows[0]["id"] if more else None)
            return EventPage(rows, older=rows[-1]["id"] if more else None,
                             newer=rows[0]["id"] if direction == "older" else None)

        return self.reads.run("console_events", work)

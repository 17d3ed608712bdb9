"""The console's ticket page (web/console/tickets.py): one ticket as it stands and one
page of its timeline, read in one transaction so the two agree.

The ticket row is the read API's (TICKET_COLUMNS), found under the operator's scope in
SQL: a ticket of another account is not found, exactly like one that does not exist.
The timeline pages by event id (keyset, oldest first) and stops early once its payloads
reach a byte budget (bounded_page), so a ticket of huge deliveries is never read whole.
Payloads come pretty-printed by PostgreSQL (jsonb_pretty): the worker never parses them.
Only payloads up to PRETTY_BYTES are: indenting multiplies a payload of many small values
nested deep (64 levels are accepted) by up to a hundred, so larger ones come as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .pool import Database
from .replica import Reads
from .tickets import PAGE_BUDGET_BYTES, TICKET_COLUMNS, _event_bytes, bounded_page, dicts

#: Payloads larger than this (as JSON text) are shown as stored, not indented.
PRETTY_BYTES = 64 * 1024

#: The ticket, within the scope (NULL scope: every account), with how many events it has
#: and the last event that forgot its content (a permanent delete or `redact --ticket`):
#: the events before it lost their payloads to that, not to retention.
CONSOLE_TICKET = f"""
SELECT {TICKET_COLUMNS},
       (SELECT count(*) FROM events e WHERE e.ticket_id = tickets.id) AS event_count,
       (SELECT max(e.id) FROM events e
         WHERE e.ticket_id = tickets.id AND e.outcome = 'forget' AND e.changes->>'forgotten' = 'ticket') AS forgotten_at_event
  FROM tickets
 WHERE vendor = %(vendor)s AND account = %(account)s AND external_id = %(external_id)s
   AND (%(scope_vendor)s::text IS NULL OR (vendor = %(scope_vendor)s AND account = %(scope_account)s))
"""

#: One page of the timeline after a cursor, oldest first (by id: commit order per ticket);
#: it selects one row more than the page, to tell whether more follow. The page's ids are
#: chosen first, narrow, so that no sort ever carries a payload and each payload is read
#: (and indented) only when the cursor reaches its row. `payload_indented`: whether the
#: payload was small enough to pretty-print (PRETTY_BYTES).
CONSOLE_TICKET_EVENTS = """
SELECT e.id, e.received_at, e.vendor_updated_at, e.outcome, e.revision, e.event_type, e.vendor_event_id,
       e.comment_body, e.comment_author, e.comment_public, e.changes::text AS changes,
       CASE WHEN octet_length(stored.text) <= %(pretty)s THEN jsonb_pretty(e.payload) ELSE stored.text END AS payload,
       octet_length(stored.text) <= %(pretty)s AS payload_indented,
       e.request_id, e.credential, e.payload_redacted, e.fields_retained
  FROM (SELECT id, received_at FROM events WHERE ticket_id = %(ticket_id)s AND id > %(after)s
         ORDER BY id LIMIT %(limit)s) AS page
  JOIN events e ON e.id = page.id AND e.received_at = page.received_at  -- (the month: one partition each)
 CROSS JOIN LATERAL (SELECT e.payload::text AS text) AS stored
 ORDER BY page.id
"""


@dataclass(frozen=True)
class TicketPage:
    """A ticket row (TICKET_COLUMNS, event_count, forgotten_at_event) and one page of its
    events; `more`: whether events follow the last one shown."""

    ticket: dict[str, Any]
    events: list[dict[str, Any]]
    more: bool


class ConsoleTicketStore:
    database: Database
    reads: Reads

    def console_ticket(self, vendor: str, account: str, external_id: str, scope: tuple[str, str] | None,
                       after: int, limit: int, budget: int = PAGE_BUDGET_BYTES) -> TicketPage | None:
        """The ticket and its events with ids above `after` (at most `limit`, fewer once
        they hold `budget` bytes), or None when it does not exist within `scope`."""
        scope_vendor, scope_account = scope if scope is not None else (None, None)
        params = {"vendor": vendor, "account": account, "external_id": external_id,
                  "scope_vendor": scope_vendor, "scope_account": scope_account}

        def work(conn: psycopg.Connection) -> TicketPage | None:
            with conn.transaction():
                ticket = dicts(conn, CONSOLE_TICKET, params).fetchone()
                if ticket is None:
                    return None
                events, more = bounded_page(conn, CONSOLE_TICKET_EVENTS,
                                            {"ticket_id": ticket["id"], "after": after, "limit": limit + 1,
                                             "pretty": PRETTY_BYTES},
                                            limit, budget, _event_bytes)
                return TicketPage(ticket, events, more)

        return self.reads.run("console_ticket", work)

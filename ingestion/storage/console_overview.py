"""The console's overview (web/console/overview.py): what arrived in the last day, the
quarantine, the outbox backlog and the reconciler's cursors, for one account or all.

Every query reads a bounded slice, whatever the size of the history:
- arrivals: the last 24 hours only, through the BRIN indexes on `received_at` (events,
  deliveries; quarantine has a B-tree), then the ticket of each event by primary key
  (events carry no vendor: the ticket does);
- the backlog: the partial index `events_unpublished` in id order, counted up to a cap
  (an outage of Redis for hours must not make the page count millions of rows);
- the quarantine (bounded by QUARANTINE_MAX_ENTRIES) and the cursors (a row per vendor,
  account and mode) are small by construction.

A scoped token's account is a condition of each statement, never a filter applied after
the rows came back. The two variants of each statement are fixed text, chosen by code.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..tickets import RECONCILIATION
from .pool import Database
from .tickets import dicts

#: Webhooks that arrived in the last 24 hours, per vendor, outcome and hour (0: the last
#: hour, 23: a day ago; rolling hours, so hour 0 is exactly "the last hour"). Every
#: outcome counts: an event's (created, updated, recorded, stale, deleted), a delivery
#: that brought no event (already_exists, ignored), a delivery kept in quarantine. Not
#: webhooks, so not counted: the reconciler's snapshots and the redactions' `forget` rows.
ARRIVALS = """
WITH arrivals AS (
    SELECT t.vendor, e.outcome, e.received_at
      FROM events e JOIN tickets t ON t.id = e.ticket_id
     WHERE e.received_at > now() - interval '24 hours'
       AND e.outcome <> 'forget' AND e.event_type <> %(reconciliation)s {tickets}
    UNION ALL
    SELECT vendor, outcome, received_at FROM deliveries
     WHERE received_at > now() - interval '24 hours' {rows}
    UNION ALL
    SELECT vendor, 'quarantined', received_at FROM quarantine
     WHERE received_at > now() - interval '24 hours' {rows}
)
SELECT vendor, outcome,
       least(23, greatest(0, floor(extract(epoch FROM now() - received_at) / 3600)))::integer AS hours_ago,
       count(*) AS count
  FROM arrivals
 GROUP BY 1, 2, 3
"""

#: Deliveries waiting in quarantine, and since when.
QUARANTINE = """
SELECT count(*) AS count, min(received_at) AS oldest FROM quarantine WHERE true {rows}
"""

#: The outbox backlog (events the relay has not published yet) and its oldest event, whose
#: age is the relay's lag. In id order, which is the index's: the oldest come first, so the
#: cap cuts off only the newest.
BACKLOG = """
SELECT count(*) AS count, min(received_at) AS oldest FROM (
    SELECT e.received_at FROM events e {join}
     WHERE e.published_at IS NULL AND e.outcome <> 'stale' {tickets}
     ORDER BY e.id
     LIMIT %(cap)s
) AS pending
"""

#: Each reconciler's cursor: where its last pass stands (storage/reconcile.py writes them).
CURSORS = """
SELECT vendor, account, mode, since, position, caught_up_at, last_error, updated_at
  FROM reconcile_cursors WHERE true {rows}
 ORDER BY vendor, account, mode
"""

#: The backlog is counted up to this many events (the page says "at least").
BACKLOG_CAP = 100_000

#: The account condition, on tickets (`t`) and on tables that carry vendor and account.
_SCOPED = {"tickets": "AND t.vendor = %(vendor)s AND t.account = %(account)s",
           "rows": "AND vendor = %(vendor)s AND account = %(account)s",
           "join": "JOIN tickets t ON t.id = e.ticket_id"}
_ALL = dict.fromkeys(_SCOPED, "")


def _variants(template: str) -> dict[bool, str]:
    """{scoped?: statement}: the template with the account condition, or without it."""
    return {True: template.format(**_SCOPED), False: template.format(**_ALL)}


STATEMENTS = {name: _variants(template) for name, template in
              (("arrivals", ARRIVALS), ("quarantine", QUARANTINE), ("backlog", BACKLOG), ("cursors", CURSORS))}


class ConsoleOverviewStore:
    database: Database

    def console_overview(self, scope: tuple[str, str] | None) -> dict[str, Any]:
        """The overview's numbers for `scope` ((vendor, account), or None for every
        account), on one connection: `arrivals` (vendor, outcome, hours_ago, count),
        `quarantine` and `backlog` (count, oldest; the backlog's `capped`: counted up
        to BACKLOG_CAP only), `cursors` (reconcile_cursors rows)."""
        vendor, account = scope or (None, None)
        params = {"vendor": vendor, "account": account, "cap": BACKLOG_CAP, "reconciliation": RECONCILIATION}
        scoped = scope is not None

        def work(conn: psycopg.Connection) -> dict[str, Any]:
            def rows(name: str) -> list[dict[str, Any]]:
                return dicts(conn, STATEMENTS[name][scoped], params).fetchall()

            backlog = rows("backlog")[0]
            backlog["capped"] = backlog["count"] >= BACKLOG_CAP
            return {"arrivals": rows("arrivals"), "quarantine": rows("quarantine")[0],
                    "backlog": backlog, "cursors": rows("cursors")}

        return self.database.run("console_overview", work)

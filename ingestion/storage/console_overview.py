"""The console's overview (web/console/overview.py): the webhooks of the last 24 hours by
vendor, outcome and clock hour, the quarantine, the outbox backlog and the reconciler's
cursors, for one account or all.

Every statement reads a bounded slice, whatever the size of the history:
- arrivals: time ranges through the BRIN indexes on `received_at` (events, deliveries;
  quarantine has a B-tree), then each event's ticket by primary key (events carry no
  vendor: the ticket does). A day can hold hundreds of thousands of events, too many to
  count on every view, so a clock hour, once it is over and settled, is counted once per
  process and kept (`SettledHours`); a view counts only what is newer, the rolling last
  hour, and the part of the oldest clock hour still inside the 24 hours;
- the backlog: the partial index `events_unpublished` in id order, counted up to a cap
  (an outage of Redis for hours must not make the page count millions of rows);
- the quarantine (bounded by QUARANTINE_MAX_ENTRIES) and the cursors (a row per vendor,
  account and mode) are small by construction.

A scoped token's account is a condition of each statement, never a filter applied after
the rows came back (its settled hours are its own statements' answers, kept apart). The
variants of each statement are fixed text, chosen by code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ..tickets import RECONCILIATION
from .pool import Database
from .replica import Reads
from .tickets import dicts

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
#: A clock hour is counted once this long after it ended: by then every transaction that
#: began in it has committed (a statement lasts DB_STATEMENT_TIMEOUT_MS, at most 10 min).
SETTLE = timedelta(minutes=15)

#: Webhooks that arrived in `{range}`, with their vendor. Every outcome counts: an event's
#: (created, updated, recorded, stale, deleted), a delivery that brought no event
#: (already_exists, ignored), a delivery kept in quarantine. Not webhooks, so not counted:
#: the reconciler's snapshots and the redactions' `forget` rows.
#:
#: `{fence}`: OFFSET 0 for a range of many hours, so that PostgreSQL reads the range first
#: and then each event's ticket; left to itself it may start from a scoped account's
#: tickets and read their whole histories. A range of an hour or two needs no fence (and
#: with one, PostgreSQL would rather read every ticket into a hash).
ARRIVALS = """
    SELECT t.vendor, e.outcome, e.received_at
      FROM (SELECT ticket_id, outcome, received_at FROM events
             WHERE {range} AND outcome <> 'forget' AND event_type <> %(reconciliation)s {fence}) AS e
      JOIN tickets t ON t.id = e.ticket_id {tickets}
    UNION ALL
    SELECT vendor, outcome, received_at FROM deliveries WHERE {range} {rows}
    UNION ALL
    SELECT vendor, 'quarantined', received_at FROM quarantine WHERE {range} {rows}
"""


def arrivals(within: str, fence: str = "") -> str:
    """ARRIVALS over `within`, a condition on `received_at` (fixed text)."""
    return ARRIVALS.replace("{range}", within).replace("{fence}", fence)


#: Settled clock hours, counted once: everything from `from` to `to`, by clock hour.
SETTLED = """
SELECT vendor, outcome, date_trunc('hour', received_at, 'UTC') AS hour, count(*) AS count
  FROM ({arrivals}) AS arrivals
 GROUP BY 1, 2, 3
""".replace("{arrivals}", arrivals("received_at >= %(from)s AND received_at < %(to)s", fence="OFFSET 0"))

#: What a view counts: the oldest clock hour's part inside the 24 hours (before `edge_to`)
#: and everything since `tail_from` (the rolling last hour, and the hours not settled yet).
#: `count`: towards its clock hour, unless that hour is a settled one; `last_hour`: the
#: rolling hour's.
RECENT = """
SELECT vendor, outcome, date_trunc('hour', received_at, 'UTC') AS hour,
       count(*) FILTER (WHERE received_at < %(edge_to)s OR received_at >= %(settled_to)s) AS count,
       count(*) FILTER (WHERE received_at > %(hour_ago)s) AS last_hour
  FROM ({arrivals}) AS arrivals
 GROUP BY 1, 2, 3
""".replace("{arrivals}", arrivals(
    "(received_at > %(day_ago)s AND received_at < %(edge_to)s OR received_at >= %(tail_from)s)"))

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


#: How far this connection's data is known complete: NULL on the primary (all of it); on
#: a replica (storage/replica.py), the commit time of the last transaction it replayed.
#: Replay follows commit order, so every commit before that one is there too. (Any role
#: may call these; pg_stat_wal_receiver would need pg_read_all_stats.)
REPLAYED_TO = """
SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_xact_replay_timestamp(), '2000-01-01Z') END
"""


def rememberable(hours: list[datetime], replayed_to: datetime | None) -> list[datetime]:
    """The settled hours whose counts may be kept for good: all of them on the primary;
    on a replica, those that ended SETTLE before the last commit it replayed (what began
    in an hour has committed SETTLE after it, as on the primary). A replica that is
    behind, paused or cut off from its primary keeps nothing newer than what it holds."""
    if replayed_to is None:
        return hours
    return [hour for hour in hours if hour + HOUR + SETTLE <= replayed_to]


STATEMENTS = {name: _variants(template) for name, template in (
    ("settled", SETTLED), ("recent", RECENT), ("quarantine", QUARANTINE), ("backlog", BACKLOG), ("cursors", CURSORS))}

Scope = tuple[str, str] | None


def clock_hour(moment: datetime) -> datetime:
    """The start of `moment`'s hour in UTC (in a zone half an hour off, its own :00 is not)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """The 24 hours up to `now` (the database's clock), as clock hours in UTC: the oldest
    (`first_hour`) only partly inside, then whole ones, then the current one so far."""

    now: datetime

    @property
    def day_ago(self) -> datetime:
        return self.now - DAY

    @property
    def first_hour(self) -> datetime:
        return clock_hour(self.day_ago)

    @property
    def settled_hours(self) -> list[datetime]:
        """The whole clock hours inside the window that are over and settled."""
        first, end = self.first_hour + HOUR, clock_hour(self.now - SETTLE)
        return [first + HOUR * n for n in range(int((end - first) / HOUR))]

    def params(self) -> dict[str, datetime]:
        settled_to = clock_hour(self.now - SETTLE)
        return {"day_ago": self.day_ago, "edge_to": self.first_hour + HOUR, "settled_to": settled_to,
                "hour_ago": self.now - HOUR, "tail_from": min(settled_to, self.now - HOUR)}


class SettledHours:
    """This process's counts of settled clock hours, per scope: (vendor, outcome, count)
    rows of each. An hour that is over no longer changes (what arrives is stamped with the
    time it arrives), so each is counted once; hours that left the window are dropped. A
    quarantined delivery replayed later stays counted in its hour as it arrived there
    (and its replay where it was stored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hours: dict[tuple[Scope, datetime], list[tuple[str, str, int]]] = {}

    def missing(self, scope: Scope, hours: list[datetime]) -> list[datetime]:
        with self._lock:
            return [hour for hour in hours if (scope, hour) not in self._hours]

    def keep(self, scope: Scope, hours: list[datetime], rows: list[dict[str, Any]], oldest: datetime) -> None:
        counted: dict[datetime, list[tuple[str, str, int]]] = {hour: [] for hour in hours}
        for row in rows:
            if row["hour"] in counted:
                counted[row["hour"]].append((row["vendor"], row["outcome"], row["count"]))
        with self._lock:
            self._hours.update(((scope, hour), found) for hour, found in counted.items())
            for key in [key for key in self._hours if key[1] < oldest]:
                del self._hours[key]

    def rows(self, scope: Scope, hours: list[datetime]) -> list[dict[str, Any]]:
        with self._lock:
            return [{"vendor": vendor, "outcome": outcome, "hour": hour, "count": count, "last_hour": 0}
                    for hour in hours for vendor, outcome, count in self._hours.get((scope, hour), ())]


class ConsoleOverviewStore:
    database: Database
    reads: Reads

    @property
    def settled_hours(self) -> SettledHours:
        return self.__dict__.setdefault("_settled_hours", SettledHours())

    def console_overview(self, scope: Scope) -> dict[str, Any]:
        """The overview's numbers for `scope` ((vendor, account), or None for every
        account), in one transaction (one `now`): `window` (a Window), `arrivals`
        (vendor, outcome, hour, count, last_hour: one row per clock hour),
        `quarantine` and `backlog` (count, oldest; the backlog's `capped`: counted up
        to BACKLOG_CAP only), `cursors` (reconcile_cursors rows)."""
        vendor, account = scope or (None, None)
        base = {"vendor": vendor, "account": account, "cap": BACKLOG_CAP, "reconciliation": RECONCILIATION}
        scoped, settled = scope is not None, self.settled_hours

        def work(conn: psycopg.Connection) -> dict[str, Any]:
            def rows(name: str, **params: Any) -> list[dict[str, Any]]:
                return dicts(conn, STATEMENTS[name][scoped], {**base, **params}).fetchall()

            with conn.transaction():
                conn.execute("SET LOCAL jit = off")  # compiling costs more than these statements
                window = Window(conn.execute("SELECT now()").fetchone()[0])
                hours = window.settled_hours
                kept = rememberable(hours, conn.execute(REPLAYED_TO).fetchone()[0])
                missing = settled.missing(scope, kept)
                if missing:
                    counted = rows("settled", **{"from": missing[0], "to": missing[-1] + HOUR})
                    settled.keep(scope, missing, counted, oldest=hours[0])
                arrivals = settled.rows(scope, kept)
                unkept = hours[len(kept):]  # (kept is a prefix: the oldest hours)
                if unkept:  # on a replica that is behind: counted on every view, never kept
                    arrivals += [{**row, "last_hour": 0} for row in rows(
                        "settled", **{"from": unkept[0], "to": unkept[-1] + HOUR})]
                backlog = rows("backlog")[0]
                backlog["capped"] = backlog["count"] >= BACKLOG_CAP
                return {"window": window, "arrivals": arrivals + rows("recent", **window.params()),
                        "quarantine": rows("quarantine")[0], "backlog": backlog, "cursors": rows("cursors")}

        return self.reads.run("console_overview", work)

"""/console: the overview. How the service is doing, for the signed-in token's accounts.

- webhooks by vendor and outcome over the last hour and the last day, with a small chart
  per vendor of the last 24 hours by hour (inline SVG drawn here: no script, no style);
- the quarantine, the outbox backlog and the relay's lag, the reconciler's cursors:
  PostgreSQL, every query restricted to the token's account in SQL
  (storage/console_overview.py);
- authentication failures by reason, the stream's length and the circuit breakers: what
  the processes know (overview_signals.py).

A scoped token sees its own account's numbers, and of the service's health only what
says nothing about other accounts (the breakers, the stream's length). Authentication
failures are counted per vendor, not per account, so they are shown to unscoped tokens only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, render_template

from ...config import Settings
from ..current import services
from ...storage.console_overview import HOUR, Window
from ...vendors import vendor_names
from . import overview_signals as signals
from .access import console_page
from .events import OUTCOMES as EVENT_OUTCOMES

#: The 24 hours touch 25 clock hours: the oldest partly, then 23 whole ones, then the current so far.
BARS = 25
#: The outcomes in the order a reader expects them: what changed or was recorded, what
#: was not stored as new, what was refused. Any other (a first release's row) follows.
OUTCOMES = ("created", "updated", "recorded", "deleted", "stale", "already_exists", "ignored", "quarantined")
#: Each outcome's part of a chart's bar; the parts stack bottom up in LEGEND's order.
KINDS = {"created": "stored", "updated": "stored", "recorded": "stored", "deleted": "stored",
         "stale": "skipped", "already_exists": "skipped", "ignored": "skipped", "quarantined": "quarantined"}
#: Fills as presentation attributes (the stylesheet may override them through the classes).
FILLS = {"stored": "#1f5fbf", "skipped": "#9aa5b8", "quarantined": "#9b1c1c"}
LEGEND = [(kind, FILLS[kind], label) for kind, label in (
    ("stored", "stored (created, updated, recorded, deleted)"),
    ("skipped", "not stored as new (stale, already_exists, ignored)"),
    ("quarantined", "quarantined"))]

#: The chart's geometry, in pixels: one bar per clock hour, oldest on the left.
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 8, 2, 36
CHART_WIDTH = BARS * (BAR_WIDTH + BAR_GAP) - BAR_GAP


@dataclass(frozen=True)
class Segment:
    """One rectangle of the chart: an hour's outcomes of one kind."""

    x: int
    y: int
    width: int
    height: int
    kind: str
    fill: str
    title: str


@dataclass
class VendorArrivals:
    """One vendor's webhooks of the 24 hours of `window`: per outcome, per clock hour
    (BARS of them, oldest first) and over the rolling last hour."""

    vendor: str
    window: Window
    hours: dict[str, list[int]] = field(default_factory=dict)  # outcome -> BARS counts
    last: dict[str, int] = field(default_factory=dict)  # outcome -> the last hour's count

    def add(self, outcome: str, hour: datetime, count: int, last_hour: int = 0) -> None:
        index = min(BARS - 1, max(0, round((hour - self.window.first_hour) / HOUR)))
        self.hours.setdefault(outcome, [0] * BARS)[index] += count
        self.last[outcome] = self.last.get(outcome, 0) + last_hour

    @property
    def outcomes(self) -> list[tuple[str, int, int]]:
        """(outcome, last hour, last day), in OUTCOMES' order."""
        order = {name: index for index, name in enumerate(OUTCOMES)}
        names = sorted(self.hours, key=lambda name: (order.get(name, len(order)), name))
        return [(name, self.last.get(name, 0), sum(self.hours[name])) for name in names]

    @property
    def last_hour(self) -> int:
        return sum(self.last.values())

    @property
    def last_day(self) -> int:
        return sum(sum(counts) for counts in self.hours.values())

    @property
    def peak(self) -> int:
        return max((sum(counts[bar] for counts in self.hours.values()) for bar in range(BARS)), default=0)

    def chart(self) -> list[Segment]:
        """The bars, each hour's kinds stacked bottom up, scaled to this vendor's peak hour."""
        peak = self.peak
        segments = []
        for bar in range(BARS):
            bottom = CHART_HEIGHT
            for kind, fill, _ in LEGEND:
                count = sum(counts[bar] for name, counts in self.hours.items() if KINDS.get(name, "skipped") == kind)
                if not count:
                    continue
                height = max(1, round(count * (CHART_HEIGHT - 1) / peak))
                bottom -= height
                segments.append(Segment(bar * (BAR_WIDTH + BAR_GAP), bottom, BAR_WIDTH, height, kind, fill,
                                        f"{hour_label(self.window, bar)}: {count} {kind}"))
        return segments


def hour_label(window: Window, bar: int) -> str:
    """The bar's clock hour, cut to the window at both ends: "09:00–10:00 UTC"."""
    start = window.first_hour + bar * HOUR
    start, end = max(start, window.day_ago), min(start + HOUR, window.now)
    return f"{start.astimezone(UTC):%H:%M}–{end.astimezone(UTC):%H:%M} UTC"


def by_vendor(window: Window, arrivals: Iterable[dict[str, Any]], vendors: Iterable[str]) -> list[VendorArrivals]:
    """Every vendor of `vendors` (with nothing: a row of zeros, worth seeing), then any
    other the rows name (a vendor since removed), by name."""
    found = {vendor: VendorArrivals(vendor, window) for vendor in vendors}
    for row in arrivals:
        found.setdefault(row["vendor"], VendorArrivals(row["vendor"], window)).add(
            row["outcome"], row["hour"], row["count"], row["last_hour"])
    return sorted(found.values(), key=lambda arrivals: arrivals.vendor)


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/", endpoint="overview")
    @console_page(settings)
    def overview() -> str:
        scope = g.operator.scope
        here = services()
        numbers = here.storage.console_overview(scope)
        return render_template(
            "console/overview.html", numbers=numbers,
            arrivals=by_vendor(numbers["window"], numbers["arrivals"], [scope[0]] if scope else vendor_names()),
            auth_failures=None if scope else signals.auth_failures(),
            stream=signals.stream_length(here.redis, settings.stream_transport), breakers=signals.breakers(here.redis),
            chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, legend=LEGEND, event_outcomes=EVENT_OUTCOMES,
            since=numbers["window"].day_ago.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))

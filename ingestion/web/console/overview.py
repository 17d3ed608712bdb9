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
from typing import Any

from flask import Blueprint, g, render_template

from ...config import Settings
from ...services import services
from ...vendors import vendor_names
from . import overview_signals as signals
from .access import console_page

HOURS = 24
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

#: The chart's geometry, in pixels: one bar per hour, oldest on the left.
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 8, 2, 36
CHART_WIDTH = HOURS * (BAR_WIDTH + BAR_GAP) - BAR_GAP


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
    """One vendor's webhooks of the last day: per outcome and per hour (0: the last hour)."""

    vendor: str
    hours: dict[str, list[int]] = field(default_factory=dict)  # outcome -> 24 counts

    def add(self, outcome: str, hours_ago: int, count: int) -> None:
        self.hours.setdefault(outcome, [0] * HOURS)[hours_ago] += count

    @property
    def outcomes(self) -> list[tuple[str, int, int]]:
        """(outcome, last hour, last day), in OUTCOMES' order."""
        order = {name: index for index, name in enumerate(OUTCOMES)}
        names = sorted(self.hours, key=lambda name: (order.get(name, len(order)), name))
        return [(name, self.hours[name][0], sum(self.hours[name])) for name in names]

    @property
    def last_hour(self) -> int:
        return sum(counts[0] for counts in self.hours.values())

    @property
    def last_day(self) -> int:
        return sum(sum(counts) for counts in self.hours.values())

    def per_hour(self) -> list[int]:
        return [sum(counts[hour] for counts in self.hours.values()) for hour in range(HOURS)]

    @property
    def peak(self) -> int:
        return max(self.per_hour())

    def chart(self) -> list[Segment]:
        """The bars, each hour's kinds stacked bottom up, scaled to this vendor's peak hour."""
        peak = self.peak
        segments = []
        for hours_ago in range(HOURS):
            x = (HOURS - 1 - hours_ago) * (BAR_WIDTH + BAR_GAP)
            bottom = CHART_HEIGHT
            for kind, fill, _ in LEGEND:
                count = sum(counts[hours_ago] for name, counts in self.hours.items() if KINDS.get(name, "skipped") == kind)
                if not count:
                    continue
                height = max(1, round(count * (CHART_HEIGHT - 1) / peak))
                bottom -= height
                segments.append(Segment(x, bottom, BAR_WIDTH, height, kind, fill,
                                        f"{hour_label(hours_ago)}: {count} {kind}"))
        return segments


def hour_label(hours_ago: int) -> str:
    return "the last hour" if hours_ago == 0 else f"{hours_ago}–{hours_ago + 1} h ago"


def by_vendor(arrivals: Iterable[dict[str, Any]], vendors: Iterable[str]) -> list[VendorArrivals]:
    """Every vendor of `vendors` (with nothing: a row of zeros, worth seeing), then any
    other the rows name (a vendor since removed), by name."""
    found = {vendor: VendorArrivals(vendor) for vendor in vendors}
    for row in arrivals:
        found.setdefault(row["vendor"], VendorArrivals(row["vendor"])).add(row["outcome"], row["hours_ago"], row["count"])
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
            arrivals=by_vendor(numbers["arrivals"], [scope[0]] if scope else vendor_names()),
            auth_failures=None if scope else signals.auth_failures(),
            stream=signals.stream_length(here.redis), breakers=signals.breakers(here.redis),
            chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, legend=LEGEND)

"""`make bench-console` (bench/console.py) still runs: a tiny seeding, a few requests per
page, and a line of figures for every page. Only that it runs and prints: the figures
themselves are for docs/performance.md, never asserted (no wall-clock limit in a test)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from processes import ROOT

pytestmark = pytest.mark.gunicorn  # the bench starts the service under gunicorn

#: A page's line: its name, p50, p95 and the longest in ms, its table rows, the verdict, the statuses.
ROW = re.compile(r"^  (?P<page>\S.*?)\s+(?P<p50>\d+\.\d)\s+(?P<p95>\d+\.\d)\s+(?P<max>\d+\.\d)\s+(?P<rows>\d+)\s+"
                 r"(?P<verdict>met|MISSED|not all 200)\s+(?P<statuses>(?:\d{3} x\d+(?:, )?)+)$", re.MULTILINE)


def test_the_console_bench_prints_a_line_of_figures_per_page():
    run = subprocess.run([sys.executable, "-u", "bench/console.py", "--tickets", "200", "--events-per-ticket", "3",
                          "--quarantined", "40", "--requests", "3", "--warmup", "1", "--workers", "1"],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {m["page"]: m for m in ROW.finditer(run.stdout)}
    total = re.search(r"^(\d+) of (\d+) pages answered 200", run.stdout, re.MULTILINE)
    assert total and int(total[2]) == len(rows) >= 20, run.stdout
    for page in ("overview", "events", "events: payload (common)", "events: 5 pages back", "ticket (3 events)",
                 "quarantine", "quarantine: bulk replay count", "scoped: events", "read API: a ticket",
                 "read API: its events (3)"):
        assert page in rows, run.stdout
    # Every page was signed in and found: a redirect to the sign-in form or an error page would show here.
    assert {row["statuses"] for row in rows.values()} == {"200 x3"}, run.stdout

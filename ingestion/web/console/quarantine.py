"""/console/quarantine: refused authentic deliveries, and their replay (a stub until the page lands)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ...config import Settings
from .access import console_page


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/quarantine", endpoint="quarantine")
    @console_page(settings)
    def quarantine() -> str:
        return render_template("console/quarantine.html")

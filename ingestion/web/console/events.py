"""/console/events: every delivery's event, newest first (a stub until the page lands)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ...config import Settings
from .access import console_page


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/events", endpoint="events")
    @console_page(settings)
    def events() -> str:
        return render_template("console/events.html")

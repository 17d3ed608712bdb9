"""/console/tickets/<vendor>/<external_id>: a ticket and its timeline (a stub until the page lands)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ...config import Settings
from .access import console_page


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/tickets/<vendor>/<path:external_id>", endpoint="ticket")
    @console_page(settings)
    def ticket(vendor: str, external_id: str) -> str:
        return render_template("console/ticket.html", vendor=vendor, external_id=external_id)

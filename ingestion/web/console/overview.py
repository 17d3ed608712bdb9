"""/console: the overview (a stub until the overview page lands)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ...config import Settings
from .access import console_page


def routes(blueprint: Blueprint, settings: Settings) -> None:
    @blueprint.get("/", endpoint="overview")
    @console_page(settings)
    def overview() -> str:
        return render_template("console/overview.html")

"""The operator console under /console: server-rendered pages of what the service knows.

Jinja templates (`templates/console/`), plain forms, one vendored script (htmx, for the
live tail and the bulk replay's progress; `static/VENDORED.md`), no build step, no CDN.
Who may use it and the manners of every response: access.py. Each page is a module
that adds its routes to the blueprint (`routes(blueprint, settings)`): overview,
events, tickets, quarantine. Every query is the storage package's (storage/console_*.py).

A database outage renders the page's frame with a banner and 503 (never a 500); other
refusals render a small error page, not the API's JSON.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Flask, g, redirect, render_template, request, url_for
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException

from ...config import Settings
from ...errors import DatabaseUnavailable
from . import access

PREFIX = access.PATH


def utc(moment: datetime | None) -> str:
    """A time as operators read it: UTC, with the zone."""
    if moment is None:
        return "—"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words ("3 min ago"), for a time's hover title."""
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(timezone.utc)) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def console_blueprint(app: Flask, settings: Settings, vendors: list[str], rate_limited: Any) -> Blueprint:
    """The console's blueprint; `rate_limited`: the sign-in's rate limit (like the API's)."""
    from . import events, overview, quarantine, tickets  # the pages

    access.configure(app, settings)
    blueprint = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates",
                          static_folder="static", static_url_path="/static")
    blueprint.after_request(access.add_security_headers)

    @app.after_request
    def console_paths_too(response: Response) -> Response:
        """A 404 or 405 under /console (no console route matched) is the app's JSON error,
        which the blueprint's hook never sees: the same headers all the same."""
        return access.add_security_headers(response) if request.path.startswith(PREFIX) else response

    @blueprint.app_template_filter("utc")
    def _utc(moment: datetime | None) -> str:
        return utc(moment)

    @blueprint.app_template_filter("ago")
    def _ago(moment: datetime | None) -> str:
        return ago(moment)

    @blueprint.context_processor
    def frame() -> dict[str, Any]:
        operator = g.get("operator")
        return {"operator": operator, "vendors": vendors, "csrf_token": access.csrf_token(),
                "development_open": bool(operator and operator.open_development)}

    def login() -> Any:
        if not access.enabled(settings):
            return error_page(404, "Not found")
        target = request.values.get("next", "")
        target = target if (target.startswith(PREFIX) and not target.startswith("//") and target.isprintable()
                            ) else url_for("console.overview")  # (a CR or LF could never be a Location)
        if request.method == "GET":
            if access.current(settings) is not None:
                return redirect(target, code=303)
            return render_template("console/login.html", next=target, refused=False)
        access.check_csrf()
        if access.sign_in(settings, request.form.get("token", "")):
            return redirect(target, code=303)
        return render_template("console/login.html", next=target, refused=True), 401

    blueprint.add_url_rule("/login", "login", rate_limited(login), methods=["GET", "POST"])

    @blueprint.post("/logout")
    @access.console_page(settings)
    def logout() -> Response:
        from flask import session

        session.clear()
        return redirect(url_for("console.login"), code=303)

    for page in (overview, events, tickets, quarantine):
        page.routes(blueprint, settings)

    @blueprint.errorhandler(DatabaseUnavailable)
    def unavailable(error: DatabaseUnavailable) -> tuple[str, int, dict[str, str]]:
        body = render_template("console/unavailable.html", message=error.message)
        return body, 503, {"Retry-After": str(settings.retry_after_seconds)}

    @blueprint.errorhandler(HTTPException)
    def refused(error: HTTPException) -> Any:
        return error_page(error.code or 500, error.description or error.name)

    return blueprint


def error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=message), status

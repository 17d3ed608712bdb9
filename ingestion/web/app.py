"""The app factory.

`build_app()` wires the pieces in request order: configuration -> logging -> storage and
Redis -> the web layer (errors, request ids and metrics, rate limits) -> one blueprint
per vendor with its guard, built from the registry (the one place the vendor list is
read) -> the read API -> health -> /openapi.yaml -> /metrics.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter

from .. import logs
from ..config import Settings
from ..metrics import RATE_LIMITED
from ..services import EXTENSION, Services
from ..vendors import VENDORS
from . import error_pages, metrics_endpoint, rate_limit, request_context
from .console import console_blueprint
from .guard import Guard
from .health import blueprint as health_blueprint
from .openapi import openapi_blueprint
from .quarantine_api import quarantine_blueprint
from .read_api import read_api_blueprint
from .webhook import webhook_blueprint, webhook_path


class RegexConverter(BaseConverter):
    """`<regex('...'):name>` route segments."""

    def __init__(self, url_map, pattern: str) -> None:
        super().__init__(url_map)
        self.regex = pattern


def build_app(settings: Settings) -> Flask:
    logs.configure(settings.log_level, request_context.RequestIdFilter())

    app = Flask(__name__)
    # A path with `//` is not one of ours: a JSON 404. (Werkzeug would answer a 308 to the
    # merged path with an HTML body, which bypasses the error handlers.)
    app.url_map.merge_slashes = False
    # Werkzeug answers 413 before the body is read past this size.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    services = Services.build(settings)
    app.extensions[EXTENSION] = services

    error_pages.init_app(app)
    request_context.init_app(app)
    rate_limited = rate_limit.init_app(app, settings, services.redis)
    app.url_map.converters["regex"] = RegexConverter
    for vendor in VENDORS:
        guard = Guard(vendor.name, settings.development)
        app.register_blueprint(webhook_blueprint(vendor.name, vendor.normalizer(settings), guard, rate_limited,
                                                 vendor.batch, vendor.handshake,
                                                 answers_head=vendor.answers_head))
        # A zero series from the start, so rates and alerts exist before the first 429.
        RATE_LIMITED.labels(webhook_path(vendor.name))
    app.register_blueprint(read_api_blueprint(settings, [v.name for v in VENDORS], rate_limited.for_scope("api")))
    app.register_blueprint(quarantine_blueprint(settings, [v.name for v in VENDORS], rate_limited.for_scope("api")))
    app.register_blueprint(health_blueprint)
    app.register_blueprint(openapi_blueprint(settings, VENDORS))
    app.register_blueprint(console_blueprint(app, settings, [v.name for v in VENDORS], rate_limited.for_scope("console")))
    metrics_endpoint.init_app(app, settings, services.storage)
    return app

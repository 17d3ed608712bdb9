"""The app's services in a request: what every view reaches through `services()`."""

from __future__ import annotations

from flask import current_app

from ..services import EXTENSION, Services


def services() -> Services:
    return current_app.extensions[EXTENSION]

"""The per-app objects views need, kept on the app (never in module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .config import Settings
from .storage import Storage

EXTENSION = "ingestion"


@dataclass
class Services:
    settings: Settings
    storage: Storage


def services() -> Services:
    return current_app.extensions[EXTENSION]

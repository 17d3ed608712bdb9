"""Helpdesk webhook ingestion service.

Importing the package does two things only, so that every entry point (gunicorn.conf.py,
wsgi.py, `python -m ingestion`) can validate its settings before prometheus_client is
imported:
- an empty PROMETHEUS_MULTIPROC_DIR (compose and Kubernetes write `""` for "none") is
  removed from the environment: prometheus_client switches to multiprocess mode whenever
  the variable exists, even empty, and then writes its files into the working directory;
- `create_app` validates the settings, then imports the app (ingestion.web.app).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

for _name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
    if _name in os.environ and not os.environ[_name].strip():
        del os.environ[_name]

if TYPE_CHECKING:
    from flask import Flask

    from .config import Settings


def create_app(settings: "Settings | None" = None) -> "Flask":
    """The WSGI app; settings from the environment unless given (a bad value raises ConfigError)."""
    from .vendors import load_settings

    settings = settings or load_settings()
    from .web.app import build_app

    return build_app(settings)

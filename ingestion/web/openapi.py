"""GET /openapi.yaml: the OpenAPI 3 description of the HTTP interface (ingestion/openapi.yaml).

The file is the contract the schemathesis run in CI checks the live service against.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from ..config import Settings
from .operator_access import operator_only

DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.yaml"


def openapi_blueprint(settings: Settings) -> Blueprint:
    """Access as for /metrics (web/operator_access.py)."""
    blueprint = Blueprint("openapi", __name__)

    @blueprint.get("/openapi.yaml")
    @operator_only(settings)
    def openapi() -> Response:
        return Response(DOCUMENT.read_bytes(), mimetype="application/yaml")

    return blueprint

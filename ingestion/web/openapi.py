"""GET /openapi.yaml: the OpenAPI 3 description of the HTTP interface (ingestion/openapi.yaml).

The file is the contract the schemathesis run in CI checks the live service against.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.yaml"

blueprint = Blueprint("openapi", __name__)


@blueprint.get("/openapi.yaml")
def openapi() -> Response:
    return Response(DOCUMENT.read_bytes(), mimetype="application/yaml")

"""GET /openapi.yaml: the OpenAPI 3 description of the HTTP interface.

ingestion/openapi.yaml holds everything no vendor owns; each vendor's part is written
from its declaration (ingestion/vendor.py) into the places the base file marks with
`# {vendor ...}` lines: its two webhook paths, its security schemes (from its
credentials) and its payload schema (`openapi.yaml` in its folder). So a new vendor
describes itself without touching this file or the base. The document is put together
once, when the app is built, as text: the service needs no YAML library for it.
It is the contract the schemathesis run (`make fuzz`) checks the live service against.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from flask import Blueprint, Response

from ..config import Settings
from ..vendor import Vendor
from .operator_access import operator_only
from .webhook import WEBHOOK_PREFIX

BASE = Path(__file__).resolve().parent.parent / "openapi.yaml"
RESPONSES = """\
        "201": {$ref: "#/components/responses/Created"}
        "200": {$ref: "#/components/responses/Processed"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "413": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
        "429": {$ref: "#/components/responses/RateLimited"}
        "503": {$ref: "#/components/responses/Unavailable"}"""

#: A vendor that batches (ingestion/batches.py) answers a batch event by event.
BATCH_RESPONSES = RESPONSES.replace("responses/Created", "responses/BatchCreated").replace(
    "responses/Processed", "responses/BatchProcessed")


def _title(vendor: Vendor) -> str:
    return vendor.name.title().replace("_", "")


def _schemes(vendor: Vendor) -> tuple[list[str], list[str]]:
    """(security scheme entries, the operation's `security` alternatives)."""
    schemes, alternatives = [], []
    for index, credential in enumerate(vendor.credentials):
        name, *parameters = credential.scheme
        if name == "basic":
            alternatives.append("{basicAuth: []}")
            continue
        # One scheme name per signature a vendor takes (Front has two).
        signed_before = sum(1 for c in vendor.credentials[:index] if c.scheme[0] != "basic")
        key = f"{vendor.name}Signature" + (str(signed_before + 1) if signed_before else "")
        headers = [parameters[0]] if name == "hmac" else list(parameters[:2])
        requirement = []
        for position, header in enumerate(headers):
            scheme_name = key if position == 0 else f"{key}Timestamp"
            schemes.append(f"    {scheme_name}:\n      type: apiKey\n      in: header\n      name: {header}\n"
                           f"      description: {credential.variable}")
            requirement.append(f"{scheme_name}: []")
        alternatives.append("{" + ", ".join(requirement) + "}")
    return schemes, alternatives


def _paths(vendor: Vendor, alternatives: list[str]) -> str:
    security = "[" + ", ".join(alternatives) + "]"
    out = []
    for suffix, operation, parameters in (
            ("", f"receive{_title(vendor)}Webhook", ""),
            ("/{account}", f"receive{_title(vendor)}AccountWebhook",
             '      parameters: [{$ref: "#/components/parameters/Account"}]\n')):
        out.append(
            f"  {WEBHOOK_PREFIX}/{vendor.name}{suffix}:\n    post:\n      operationId: {operation}\n"
            f"      summary: {vendor.summary}{' (the account named in the URL)' if suffix else ''}\n"
            f"      security: {security}\n{parameters}"
            f"      requestBody:\n        required: true\n        content:\n          application/json:\n"
            f'            schema: {{$ref: "#/components/schemas/{_title(vendor)}Payload"}}\n'
            f"      responses:\n{BATCH_RESPONSES if vendor.batch else RESPONSES}\n")
    return "\n".join(out)


def document(vendors: Iterable[Vendor], base: str | None = None) -> str:
    """The whole description, the vendors' parts written into the base."""
    text = base if base is not None else BASE.read_text()
    paths, schemes, payloads = [], [], []
    vendors = list(vendors)
    for vendor in vendors:
        vendor_schemes, alternatives = _schemes(vendor)
        schemes += vendor_schemes
        paths.append(_paths(vendor, alternatives))
        payloads.append(f"    {_title(vendor)}Payload:\n" + textwrap.indent(vendor.payload_schema.strip(), " " * 6))
    replacements = {
        "  # {vendor webhook paths}": "\n".join(paths),
        "    # {vendor security schemes}": "\n".join(schemes),
        "    # {vendor payload schemas}": "\n".join(payloads),
    }
    lines = []
    for line in text.splitlines():
        marker = next((m for m in replacements if line.startswith(m)), None)
        lines.append(replacements[marker].rstrip("\n") if marker else line)
    names = "[" + ", ".join(vendor.name for vendor in vendors) + "]"
    titles = [vendor.title for vendor in vendors]
    spoken = ", ".join(titles[:-1]) + f" and {titles[-1]}" if len(titles) > 1 else "".join(titles)
    basic = " / ".join(c.variable for vendor in vendors for c in vendor.credentials if c.kind == "basic")
    text = "\n".join(lines).replace("__VENDOR_NAMES__", names).replace("__VENDOR_TITLES__", spoken)
    return text.replace("__BASIC_VARIABLES__", basic) + "\n"


def openapi_blueprint(settings: Settings, vendors: Iterable[Vendor]) -> Blueprint:
    """Access as for /metrics (web/operator_access.py)."""
    blueprint = Blueprint("openapi", __name__)
    body = document(vendors).encode("utf-8")

    @blueprint.get("/openapi.yaml")
    @operator_only(settings)
    def openapi() -> Response:
        return Response(body, mimetype="application/yaml")

    return blueprint

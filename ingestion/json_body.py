"""A webhook body as a JSON object: the one reading the live path and replay share."""

from __future__ import annotations

import json
from typing import Any

from .errors import UnreadableBody

_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(raw: bytes) -> tuple[dict[str, Any], str]:
    """The body as a JSON object, whatever the Content-Type claims (vendors label JSON as
    form data). Returns the object and the decoded text, which is stored as the raw payload."""
    if not raw.strip():
        raise UnreadableBody("Request body is empty: expected a JSON object", "empty")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UnreadableBody("Request body is not valid UTF-8", "not_utf8") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise UnreadableBody("Request body is not usable JSON: nested too deeply", "not_json") from None
    except json.JSONDecodeError as error:
        raise UnreadableBody(f"Request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
                             "not_json") from None
    except ValueError as error:  # NaN / Infinity, integers past Python's digit limit
        raise UnreadableBody(f"Request body is not valid JSON: {error}", "not_json") from None
    if not isinstance(payload, dict):
        raise UnreadableBody(f"JSON body must be an object, got {_JSON_TYPES.get(type(payload), 'a value')}",
                             "not_object")
    return payload, text

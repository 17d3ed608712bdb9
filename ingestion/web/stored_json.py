"""JSON answers that carry stored JSON as it was stored.

Payloads, changes and custom fields come out of PostgreSQL as text (`::text`) and go into
the answer untouched: never parsed into Python objects and serialized again. That keeps a
large payload one string in memory instead of thousands of objects, and it keeps reads
working for whatever was stored: a payload stored nested hundreds deep (before
json_body.MAX_NESTING existed) made Python's recursive JSON reader fail, and every read
of that ticket's history answered 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Response

from ..json_body import object_text

__all__ = ["json_response", "object_text", "page_text"]


def json_response(text: str | Iterable[str], status: int = 200) -> Response:
    return Response(text, status=status, mimetype="application/json")


def page_text(key: str, items: Iterable[str], next_cursor: str | None) -> str:
    """`{"<key>": [items...], "next_cursor": ...}` from items that are JSON text."""
    return f'{{{json.dumps(key)}:[{",".join(items)}],"next_cursor":{json.dumps(next_cursor)}}}'

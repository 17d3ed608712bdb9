"""A webhook body as a JSON object: the one reading the live path and replay share.

Nesting is bounded (MAX_NESTING) on the raw text, before anything parses it: Python's
JSON reader and writer recurse, so a body nested about 950 deep was parsed, then failed
to be written back (a 500, the delivery lost), and one stored a little shallower made
every later read of its history fail. Real webhook bodies nest a handful of levels.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from .errors import NumbersTooLong, TooDeeplyNested, UnreadableBody, UnstorablePayload
from .normalize.values import storable

#: Arrays and objects inside each other, at most. The deepest vendor body in
#: tests/vendors/ nests 6 levels; 64 leaves room for any relay's envelopes.
MAX_NESTING = 64

_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}
#: A JSON string, to blank out brackets that are text, not structure. It matches from
#: every quote it starts at (an unclosed string runs to the end of the text, a lone
#: backslash there included) and never gives back what it took (possessive), so each
#: character is read once: with a string that never closed, a pattern that could fail
#: was tried again from every later quote, and a 130 KB body of escaped quotes held a
#: worker past its 30 s timeout.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: What PostgreSQL cannot store in text or jsonb, escaped or (in text this service wrote:
#: a batch's events) as is: NUL, and a surrogate (a pair of escapes is one character and
#: fine; a lone one is not).
_UNSTORABLE_ESCAPE = re.compile("\\\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|[\x00\ud800-\udfff]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not
    count). Linear in the text: two regular-expression passes, then a running sum."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _too_deep(text: str) -> int | None:
    """The nesting when it is past MAX_NESTING, else None. Fewer brackets than the limit
    cannot nest past it, which settles ordinary bodies with two counts."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return None
    depth = nesting(text)
    return depth if depth > MAX_NESTING else None


def object_text(fields: Mapping[str, Any], stored: Mapping[str, str | None]) -> str:
    """A JSON object: `fields` serialized, then `stored` members whose values are JSON
    text already (None: null), put in as they are: stored JSON is never parsed again
    (web/stored_json.py says why)."""
    members = [json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1]]
    members += [f"{json.dumps(name)}:{text if text is not None else 'null'}" for name, text in stored.items()]
    return "{" + ",".join(member for member in members if member) + "}"


class BigNumber(float):
    """A JSON number past a float's range (`1e400`), or an integer longer than Python
    converts (over 4300 digits): read as an infinity, as Python's reader does for the
    first, with the text it was sent as, so it is written back as sent (`dumps`).
    PostgreSQL stores such a number exactly; written as `Infinity` it refused the event."""

    text: str


def _kept_as_sent(value: float, text: str) -> BigNumber:
    number = BigNumber(value)
    number.text = text
    return number


def _number(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _kept_as_sent(value, text)


def dumps(value: Any) -> str:
    """`value` as compact JSON text, a BigNumber as it was sent (a batch's events are
    written back one by one: ingestion/batches.py)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a BigNumber: each stands in as a string no body holds, then is put back
        pass
    token = secrets.token_hex(8)
    numbers: dict[str, str] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, BigNumber):
            numbers[json.dumps(f"{token}:{len(numbers)}")] = item.text
            return f"{token}:{len(numbers) - 1}"
        if isinstance(item, dict):
            return {key: swap(member) for key, member in item.items()}
        if isinstance(item, list):
            return [swap(member) for member in item]
        return item

    text = json.dumps(swap(value), ensure_ascii=False, separators=(",", ":"))
    for stand_in, number in numbers.items():
        text = text.replace(stand_in, number)
    return text


#: What the numbers written with an exponent may add to a payload when PostgreSQL writes
#: it back out, past the body's own length: jsonb keeps a number exactly and writes it in
#: full, so `1e131071` (9 bytes) is read back as 131,072 digits, and a 2.7 KB body made
#: each page of its ticket's history 39 MB (81 KB: every read failed, out of memory).
NUMBER_GROWTH_SLACK = 64 * 1024


class _Numbers:
    """parse_float for one body: every number, and a running count of how much longer
    the exponents would make it written out in full."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, text: str) -> float:
        mark = max(text.find("e"), text.find("E"))
        if mark >= 0:
            exponent = text[mark + 1:].lstrip("+-").lstrip("0")
            self.budget -= int(exponent or "0") if len(exponent) <= 9 else self.budget + 1
            if self.budget < 0:
                raise NumbersTooLong("its numbers written with exponents (such as 1e100000) would be stored "
                                 "many times larger than the body; send them as plain numbers or strings")
        return _number(text)


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """JSON text as the service reads it: NaN and Infinity refused (not JSON), a number
    past a float's range kept as sent (BigNumber), and exponents held to what the text
    may grow by when stored (NUMBER_GROWTH_SLACK). Raises ValueError."""
    try:
        return json.loads(text, parse_constant=_reject_constant,
                          parse_float=_Numbers(len(text) + NUMBER_GROWTH_SLACK))
    except ValueError as error:
        if "integer string conversion" not in str(error):
            raise
    # An integer longer than Python converts (4300 digits): valid JSON, which PostgreSQL
    # stores exactly (and writes `1e5000` back in full, so a rebuild reads one of these).
    # Kept as sent, like a number past a float's range; only such a body pays the hook.
    return json.loads(text, parse_constant=_reject_constant, parse_int=_integer,
                      parse_float=_Numbers(len(text) + NUMBER_GROWTH_SLACK))


def _integer(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits()
        return _kept_as_sent(float("-inf") if text.startswith("-") else float("inf"), text)


def check_storable(text: str, where: str = "") -> None:
    """Raise UnstorablePayload naming the first field (key or value) PostgreSQL cannot
    store, when the JSON text has one; called before a payload is stored (an event that
    is not about a ticket stores none, and is answered whatever it holds). A body without
    such an escape, nearly every one, costs a search or two of its text in C."""
    if "\\u" not in text and "\x00" not in text and (text.isascii() or _encodes(text)):
        return
    if _UNSTORABLE_ESCAPE.search(text):
        where = _unstorable(loads(text), where)
        if where is not None:
            raise UnstorablePayload(f"Field '{where}' holds a NUL character or a lone surrogate (a \\u0000 or "
                                    "\\ud800-style escape), which PostgreSQL cannot store")


def _encodes(text: str) -> bool:
    """No lone surrogate in `text` (what a batch's events, written back, hold raw)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(value: Any, where: str) -> str | None:
    """Where the first string PostgreSQL cannot store is (a key or a value), or None. An id
    holding one was a 422 "database refused" before; the field is named now."""
    if isinstance(value, str):
        return None if storable(value) else (where or "(the body)")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, member in items:
        name = key if isinstance(key, int) or storable(key) else json.dumps(key)[1:-1]  # (escaped: shown, stored)
        inner = f"{where}[{name}]" if isinstance(key, int) else f"{where}.{name}" if where else name
        if name is not key:
            return inner
        found = _unstorable(member, inner)
        if found is not None:
            return found
    return None


def parse_json_object(raw: bytes, arrays: bool = False) -> tuple[Any, str]:
    """The body as a JSON object, whatever the Content-Type claims (vendors label JSON as
    form data). Returns the object and the decoded text, which is stored as the raw payload.
    `arrays`: an array is taken too (a vendor that batches events: ingestion/batches.py)."""
    if not raw.strip():
        raise UnreadableBody("Request body is empty: expected a JSON object", "empty")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UnreadableBody("Request body is not valid UTF-8", "not_utf8") from None
    depth = _too_deep(text)
    if depth is not None:
        raise TooDeeplyNested(f"JSON body nests {depth} levels deep; at most {MAX_NESTING} are accepted")
    try:
        payload = loads(text)
    except NumbersTooLong as error:
        raise UnstorablePayload(f"JSON body cannot be stored as sent: {error}") from None
    except RecursionError:  # unreachable past the nesting check; kept as the last guard
        raise TooDeeplyNested(f"JSON body nests more than {MAX_NESTING} levels deep") from None
    except json.JSONDecodeError as error:
        raise UnreadableBody(f"Request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
                             "not_json") from None
    except ValueError as error:  # NaN / Infinity, integers past Python's digit limit
        raise UnreadableBody(f"Request body is not valid JSON: {error}", "not_json") from None
    if not isinstance(payload, dict) and not (arrays and isinstance(payload, list)):
        raise UnreadableBody(f"JSON body must be an object, got {_JSON_TYPES.get(type(payload), 'a value')}",
                             "not_object")
    return payload, text

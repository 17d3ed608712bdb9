"""The raw JSON checks every body passes before it is parsed (ingestion/json_body.py)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion import json_body
from ingestion.errors import UnstorablePayload


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='"\\\\[]{}ab\\n', max_size=60))
def test_the_string_pattern_matches_from_every_quote_so_each_character_is_read_once(text):
    """A match from every quote it is tried at means no attempt fails after scanning
    ahead, which is what made the nesting check quadratic (a 130 KB body of escaped
    quotes in a string never closed held a worker past gunicorn's 30 s)."""
    for start, char in enumerate(text):
        if char == '"':
            assert json_body._STRING.match(text, start) is not None, (text, start)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='"\\\\[]{}x'),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                  max_size=3), max_leaves=20))
def test_nesting_counts_the_structure_of_valid_json_and_never_the_brackets_in_its_strings(value):
    def depth(item) -> int:
        if isinstance(item, list):
            return 1 + max(map(depth, item), default=0)
        if isinstance(item, dict):
            return 1 + max(map(depth, item.values()), default=0)
        return 0

    assert json_body.nesting(json.dumps(value)) == depth(value)


def test_numbers_may_grow_a_body_by_the_slack_and_no_more():
    within = '{"x": [' + ",".join(["1e400"] * 100) + "]}"
    assert len(json_body.parse_json_object(within.encode())[0]["x"]) == 100
    past = '{"x": [' + ",".join(["1e60000"] * 2) + "]}"
    try:
        json_body.parse_json_object(past.encode())
    except UnstorablePayload as error:
        assert "exponents" in error.message
    else:
        raise AssertionError("a body that would be stored 10,000 times longer was read")
    assert json_body.loads('{"small": 1.5e-7, "plain": 0.000001}') == {"small": 1.5e-7, "plain": 0.000001}


def test_an_integer_longer_than_python_converts_is_kept_as_sent():
    """Valid JSON that PostgreSQL stores exactly (and writes `1e5000` back as 5001 digits,
    which a rebuild reads again): it was "not valid JSON" quoting Python's digit limit."""
    digits = "7" * 5000
    payload, _ = json_body.parse_json_object(f'{{"n": {digits}, "m": -{digits}, "small": 12}}'.encode())
    assert payload["small"] == 12 and isinstance(payload["small"], int)
    assert json_body.dumps(payload) == f'{{"n":{digits},"m":-{digits},"small":12}}'

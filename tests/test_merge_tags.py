"""The merge's tags rule (functions.sql: ticket_merge), called directly: a JSON array of
strings becomes the text[] column element for element, whatever the strings hold; tags
absent keep the column; tags given as anything but an array empty it.

The array is converted by the merge's one jsonb_populate_record() call (no query of its
own per merge: 5% of a create's server CPU, docs/performance.md stop 42), so these
cases pin it to what `ARRAY(SELECT jsonb_array_elements_text(...))` gave before.
"""

import pytest
from psycopg.types.json import Jsonb

AWKWARD = ["plain", "a,b", "{braces}", 'say "hi"', "back\\slash", "ünï cødé", "", " spaced ", "NULL", "{a,b}"]


def merged_tags(db, fields: dict, start: list[str] | None = None) -> list[str]:
    return db.execute(
        "SELECT ((ticket_merge(t, %s, now())).merged).tags AS tags"
        "  FROM (SELECT (jsonb_populate_record(blank_ticket('freshdesk', '', 'x'), %s)) AS t) s",
        (Jsonb(fields), Jsonb({"tags": start if start is not None else []}))).fetchone()["tags"]


def old_rule(db, value) -> list[str]:
    return db.execute("SELECT ARRAY(SELECT jsonb_array_elements_text(%s)) AS tags", (Jsonb(value),)).fetchone()["tags"]


def test_an_array_of_strings_becomes_the_column_element_for_element(db):
    assert merged_tags(db, {"tags": AWKWARD}) == AWKWARD == old_rule(db, AWKWARD)
    assert merged_tags(db, {"tags": []}, start=["kept?"]) == []


@pytest.mark.parametrize("value", [None, "a b", 5, {"tag": "a"}])
def test_tags_given_as_anything_but_an_array_empty_the_column(db, value):
    assert merged_tags(db, {"tags": value}, start=["old"]) == []


def test_tags_absent_keep_the_column(db):
    assert merged_tags(db, {"subject": "new"}, start=["old", "a,b"]) == ["old", "a,b"]

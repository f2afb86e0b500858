"""A work item's queue message is json.dumps of the item with sorted keys, character for character."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from shared.work import Kind, WorkItem

TEXT = st.text(max_size=30)  # any characters: quotes, controls, non-ASCII, lone surrogates
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
VALUE = SCALAR | st.lists(SCALAR, max_size=2) | st.dictionaries(TEXT, SCALAR, max_size=2)


def _dumps(item: WorkItem) -> str:
    return json.dumps({"kind": item.kind.value, "target": item.target, "trigger": item.trigger, "params": item.params}, sort_keys=True)


@given(st.sampled_from(list(Kind)), TEXT, TEXT, st.dictionaries(TEXT, VALUE, max_size=4))
def test_the_message_is_what_json_dumps_writes_for_any_fields_and_parameters(kind, target, trigger, params):
    item = WorkItem(kind, target, trigger, params)
    assert item.to_json() == _dumps(item)


def test_numbers_flags_and_nothing_are_written_as_json_dumps_writes_them():
    params = {"value": 91.0, "big": 10**30, "tiny": 5e-324, "flag": True, "off": False, "none": None, "nan": math.nan, "é\"\n": "\ud800"}
    item = WorkItem(Kind.QUOTA, "/subscriptions/x", "evt-1", params)
    assert item.to_json() == _dumps(item)

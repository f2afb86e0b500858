"""The bounds `load_json` reads off a document's text agree with the exact walk of the parsed document,
whatever the document: deep, wide, with escapes, surrogates, brackets inside strings, numbers at a float's edge."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.payload import MAX_DEPTH, MAX_NODES, PayloadError, load_json, shape_problem, text_shape_problem

TRICKY = st.sampled_from(["[", "]", "{", "}", ",", "\\u", '"', "\\", "\ud800", "\udfff", "\U0001f600", "\\ud800", "\x00", "ü"])
LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8) | TRICKY
DOC = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6) | TRICKY, inner, max_size=5),
                   max_leaves=40)


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * (depth - 1) + leaf + "]" * (depth - 1)


@settings(max_examples=300, deadline=None)
@given(DOC)
def test_the_bounds_read_off_the_text_are_those_of_the_walk(doc):
    text = json.dumps(doc, ensure_ascii=False) if "\ud800" not in repr(doc) else json.dumps(doc)
    value = json.loads(text)
    assert (text_shape_problem(text, value) is None) == (shape_problem(value) is None)


@pytest.mark.parametrize(("text", "ok"), [
    (nested(MAX_DEPTH), True),  # a scalar at the deepest level allowed
    (nested(MAX_DEPTH + 1), False),
    ('["' + "[" * 40 + '"]', True),  # brackets inside a string are no depth
    ("[" + ",".join(["0"] * (MAX_NODES - 1)) + "]", True),
    ("[" + ",".join(["0"] * MAX_NODES) + "]", False),
    ('["\\ud83d\\ude00"]', True),  # a surrogate pair is one valid character
    ('["\\ud800"]', False),
    ('{"\\udfff": 1}', False),
    ('["\\\\ud800"]', True),  # an escaped backslash, then plain text
])
def test_documents_at_the_bounds(text, ok):
    value = json.loads(text)
    assert (text_shape_problem(text, value) is None) is ok
    assert (shape_problem(value) is None) is ok


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[1e999]", "beyond what a float holds"),
    (b'{"a": -Infinity}', "-Infinity is not JSON"),
    (b'{"a": 1, "b": {"c": 1, "c": 2}}', "appears twice"),
    (b'{"runId": "x", "runId": "y"}', "appears twice"),
])
def test_the_parser_refuses_what_json_cannot_carry_and_ambiguous_keys(raw, reason):
    with pytest.raises(PayloadError, match=reason):
        load_json(raw)


def test_text_that_did_not_come_from_utf8_bytes_is_checked_for_lone_surrogates():
    with pytest.raises(PayloadError, match="not valid Unicode"):
        load_json('{"a": "\ud800"}')


def _outcome(parse, text: str) -> tuple[str, object]:
    try:
        return "value", parse(text)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


PIECES = st.sampled_from([" ", "\n", "{", "}", "[", "]", ",", ":", '"a"', '"a": 1', "1", "1.5", "1e999", "NaN", "-Infinity", "x", "null"])


@settings(max_examples=300, deadline=None)
@given(DOC.map(json.dumps) | st.lists(PIECES, max_size=12).map("".join) | st.tuples(DOC.map(json.dumps), PIECES).map("".join)
       | DOC.map(lambda d: f" {json.dumps(d)} \n"))
def test_the_quick_path_parses_every_text_as_the_strict_decoder_does(text):
    from shared.payload import _DECODER, _parse

    assert _outcome(_parse, text) == _outcome(_DECODER.decode, text)

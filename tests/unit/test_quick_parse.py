"""The quick path of `load_json` (msgspec's parser in C) gives every document exactly the strict parser's
verdict: the same value, of the same types in the same order, or the same one-line refusal.

The hostile documents are the ones a parser in C could read differently from the strict one: a key twice
in an object at any depth (kept silently by msgspec), the same key spelled with an escape, an escaped
colon (which the quick path's repeated-key check counts), NaN and infinities, numbers beyond a float,
integers of any length, lone surrogates written as escapes or carried in text, a byte-order mark,
bytes that are not UTF-8, nesting around both depth bounds, documents over the size limit, roots that
are not objects, trailing text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import payload
from shared.payload import MAX_DEPTH, MAX_QUEUE_MESSAGE_BYTES, PayloadError, load_json, load_strict

DOCUMENTS = [json.loads(p.read_text()) for p in sorted((Path(__file__).parent.parent / "payloads").glob("*.json"))]
SAMPLES = [one for doc in DOCUMENTS for one in (doc if isinstance(doc, list) else [doc])]  # events, alerts
ODD = st.sampled_from(["\ud800", "\udfff", "\U0001f600", ":", '"', "\\", "\x00", "é", "\u2028", "{", "[", "a:b", "\\u003a"])
NUMBER = (st.integers() | st.integers(-(10**60), 10**60) | st.floats(allow_nan=False, allow_infinity=False)
          | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 2**64, -(2**63) - 1]))
LEAF = st.none() | st.booleans() | NUMBER | st.text(max_size=8) | ODD
KEY = st.text(max_size=6) | ODD | st.sampled_from(["id", "ID", " id", "runId", "runid"])
DOC = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=4), max_leaves=30)


def _outcome(load: Any, raw: bytes | str, limit: int) -> tuple[str, Any]:
    try:
        value = load(raw, limit, "doc")
    except PayloadError as exc:
        return "refused", str(exc)
    return "value", _typed(value)


def _typed(value: Any) -> Any:
    """The value with every part's type beside it (1 == 1.0 == True, and key order counts)."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


def same_verdict(raw: bytes | str, limit: int = payload.MAX_EVENT_BYTES) -> tuple[str, Any]:
    quick, strict = _outcome(load_json, raw, limit), _outcome(load_strict, raw, limit)
    assert quick == strict, raw[:300]
    return quick


def _write(value: Any, twice: int, counter: list[int], spell: bool) -> str:
    """JSON of `value` in which the object numbered `twice` (of those with keys, in writing order) has its first
    key written twice: first with a stand-in value, then as it is (spelled with escapes when `spell`)."""
    if isinstance(value, dict):
        number = counter[0]
        counter[0] += bool(value)
        parts = [f"{json.dumps(k)}: {_write(v, twice, counter, spell)}" for k, v in value.items()]
        if number == twice and value:
            key = next(iter(value))
            # Every character escaped when ASCII; else as JSON writes it unescaped (a raw backslash would
            # start an escape and spell another key).
            again = "".join(f"\\u{ord(c):04x}" for c in key) if key.isascii() else json.dumps(key, ensure_ascii=False)[1:-1]
            parts.insert(0, f'"{again}": null' if spell else f"{json.dumps(key)}: 0")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_write(v, twice, counter, spell) for v in value) + "]"
    return json.dumps(value)


def _objects(value: Any) -> int:
    """How many objects with keys the value holds."""
    if isinstance(value, dict):
        return bool(value) + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0


@st.composite
def repeated_key(draw: st.DrawFn) -> str:
    """A document (a sample payload or a generated one) with a key written twice in one of its objects."""
    doc = draw(st.sampled_from(SAMPLES) | DOC.filter(lambda d: _objects(d) > 0))
    return _write(doc, draw(st.integers(0, max(0, _objects(doc) - 1))), [0], draw(st.booleans()))


def _texts(doc: Any) -> list[bytes | str]:
    """The document as senders write it: compact or spaced, escaped or raw, as bytes or text."""
    out: list[bytes | str] = []
    for ascii_only in (True, False):
        for separators in ((", ", ": "), (",", ":")):
            text = json.dumps(doc, ensure_ascii=ascii_only, separators=separators)
            out.append(text)
            out.append(text.encode("utf-8", "surrogatepass"))
    return out


PIECES = st.sampled_from([" ", "\n", "{", "}", "[", "]", ",", ":", '"a"', '"a": 1', '"a":', "1", "-0", "1.5", "1e400", "-1e400", "1E2",
                          "NaN", "Infinity", "-Infinity", "9" * 30, "null", "x", '"\\ud800"', '"\\u003a"', '"\\u003A":', '"\\"', "\ufeff"])


@settings(max_examples=400, deadline=None)
@given(DOC.map(_texts))
def test_any_document_however_written_gets_the_strict_verdict(texts):
    for raw in texts:
        same_verdict(raw)


@settings(max_examples=400, deadline=None)
@given(repeated_key())
def test_a_key_twice_in_any_object_at_any_depth_is_refused_as_the_strict_parser_refuses_it(text):
    assert same_verdict(text)[0] == "refused"
    assert same_verdict(text.encode("utf-8", "surrogatepass"))[0] == "refused"
    assert payload._quick(text) is payload._DOUBT


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join) | st.binary(max_size=64) | st.tuples(DOC.map(json.dumps), PIECES).map("".join))
def test_any_text_or_bytes_at_all_get_the_strict_verdict(raw):
    same_verdict(raw)
    if isinstance(raw, str):
        same_verdict(raw.encode("utf-8", "surrogatepass"))


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


EVENT = json.dumps(next(s for s in SAMPLES if isinstance(s, dict) and s.get("eventType", "").endswith("RunStatusChanged")))


@pytest.mark.parametrize("raw", [
    pytest.param(EVENT.replace('"id": ', '"id": "other", "id": ', 1), id="a key twice at the root"),
    pytest.param(EVENT.replace('"data": {', '"data": {"runId": "x", ', 1), id="a key twice in the event data"),
    pytest.param(EVENT.replace('"id": ', '"\\u0069d": "other", "id": ', 1), id="the same key spelled with an escape"),
    pytest.param('{"a": 1, "a": 2, "\\u003a": ":"}', id="a repeated key beside an escaped colon"),
    pytest.param('{"\\u003a": 1, "\\u003a": 2, "b": "::"}', id="a repeated key made of an escaped colon"),
    pytest.param('{"a": {"b": 1, "b": {"c": [1, {"d": 2, "d": 3}]}}}', id="repeated keys at two depths"),
    pytest.param('{"a": NaN}', id="NaN"), pytest.param('[-Infinity]', id="an infinity"),
    pytest.param('{"v": 1e400}', id="a number beyond a float"), pytest.param('{"v": -1e400}', id="a negative one"),
    pytest.param('{"v": ' + "9" * 4300 + "}", id="the longest integer json reads"),
    pytest.param('{"v": -' + "9" * 4300 + "}", id="the longest negative one"),
    pytest.param('{"v": ' + "9" * 4301 + "}", id="an integer longer than json reads"),
    pytest.param('{"v": 123456789012345678901234567890}', id="an integer beyond 64 bits"),
    pytest.param('{"v": 0.1000000000000000055511151231257827021181583404541015625}', id="a float's exact decimal"),
    pytest.param('{"v": "\\ud800"}', id="a lone surrogate escape"), pytest.param('{"\\udc00": 1}', id="a lone surrogate escape in a key"),
    pytest.param('{"v": "\ud800"}', id="a lone surrogate in the text"),
    pytest.param('{"v": "\\ud83d\\ude00"}', id="a surrogate pair"),
    pytest.param(b'\xef\xbb\xbf{"v": 1}', id="a byte-order mark"), pytest.param(b'{"v": "\xed\xa0\x80"}', id="an encoded surrogate"),
    pytest.param(b'{"v": "\xff"}', id="bytes that are not UTF-8"), pytest.param('{"v": "\x01"}', id="a control character"),
    pytest.param(_nested(payload._QUICK_DEPTH), id="as deep as the quick path reads"),
    pytest.param(_nested(payload._QUICK_DEPTH + 1), id="one level deeper"),
    pytest.param(_nested(MAX_DEPTH - 1), id="as deep as a document may be"), pytest.param(_nested(MAX_DEPTH), id="one level too deep"),
    pytest.param(_nested(5000), id="a recursion bomb"),
    pytest.param("[" + ",".join(["0"] * 60_000) + "]", id="many parts in a long text"),
    pytest.param('"text"', id="a text root"), pytest.param("[1, 2]", id="a list root"), pytest.param("3", id="a number root"),
    pytest.param("null", id="nothing"), pytest.param("", id="no text"), pytest.param('{"a": 1} x', id="text after the document"),
    pytest.param(' \n{"a": 1}\t ', id="whitespace around the document"), pytest.param("{'a': 1}", id="single quotes"),
    pytest.param('{"a": 1,}', id="a trailing comma"), pytest.param('{"a": 01}', id="a leading zero"),
])
def test_each_hostile_document_gets_the_strict_verdict(raw):
    same_verdict(raw)
    if isinstance(raw, str):
        same_verdict(raw.encode("utf-8", "surrogatepass"))


def test_a_document_over_the_limit_is_refused_before_any_parser_reads_it():
    raw = json.dumps({"data": "x" * MAX_QUEUE_MESSAGE_BYTES})
    verdict = same_verdict(raw, MAX_QUEUE_MESSAGE_BYTES)
    assert verdict[0] == "refused" and "over the 65,536-byte limit" in verdict[1]


def test_the_quick_path_reads_the_usual_event_and_alert():
    for sample in DOCUMENTS:  # events (in a batch, as Event Grid sends them) and alerts
        for raw in _texts(sample):
            assert payload._quick(raw) is not payload._DOUBT, raw[:120]

"""Bounds every inbound document must keep before anything reads it: size, depth, text.

Checked before use on every inbound path (Event Grid and CloudEvents deliveries, alerts,
``/api/rotate`` bodies, queue messages, files given to ``autopilot explain``), so that no input
— however large, deep or strange its bytes — can raise out of the intake: it is refused with one
line naming what is wrong. Event Grid caps an event at 1 MB and Azure Queue storage a message at
64 KB; nothing the autopilot accepts is legitimately deeper than a few levels.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

MAX_EVENT_BYTES = 1024 * 1024  # Event Grid: an event (and an action group's alert) is at most 1 MB
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024  # Azure Queue storage: a message is at most 64 KB
MAX_DEPTH = 32  # Azure's event and alert schemas nest 5 levels; 32 leaves room and stops recursion bombs
MAX_NODES = 100_000


class PayloadError(ValueError):
    """The document breaks a bound or is not JSON; the message says which, in one line."""


def load_json(raw: bytes | str, limit: int = MAX_EVENT_BYTES, what: str = "body", *, shaped: bool = True) -> Any:
    """Parse a JSON document within `limit` bytes and the bounds of `shape_problem`; PayloadError otherwise.

    The parser itself refuses what JSON cannot carry: NaN and infinities (spelled out or overflowing
    a float), a key twice in one object. The other bounds are then read off the text, which costs a
    fraction of a walk of the parsed document (``text_shape_problem``). `shaped=False` skips them for a
    caller that bounds the document itself.

    A small, shallow document is read in C (``_quick``) whenever that gives exactly the value the strict
    parser gives; every other one, and every refusal, is the strict parser's (``load_strict``).
    """
    # _hold_to_limit, written out: this is every event's path.
    size = len(raw) if isinstance(raw, bytes) or len(raw) * 4 <= limit else len(raw.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise PayloadError(f"{what} is {size:,} bytes, over the {limit:,}-byte limit")
    if size < MAX_NODES:
        value = _quick(raw)
        if value is not _DOUBT:
            return value
    return _strictly(raw, limit, what, shaped)


def load_strict(raw: bytes | str, limit: int = MAX_EVENT_BYTES, what: str = "body", *, shaped: bool = True) -> Any:
    """`load_json` by the strict parser alone: the verdict (value or words) `load_json` must give for any document."""
    _hold_to_limit(raw, limit, what)
    return _strictly(raw, limit, what, shaped)


def _hold_to_limit(raw: bytes | str, limit: int, what: str) -> None:
    # UTF-8 takes at most 4 bytes a character: a text that short is within the limit without encoding it.
    size = len(raw) if isinstance(raw, bytes) or len(raw) * 4 <= limit else len(raw.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise PayloadError(f"{what} is {size:,} bytes, over the {limit:,}-byte limit")


def _strictly(raw: bytes | str, limit: int, what: str, shaped: bool) -> Any:
    decoded = isinstance(raw, bytes)
    if isinstance(raw, bytes):
        # A byte-order mark is allowed and skipped (as "utf-8-sig" does, whose codec is Python, not C).
        bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        try:
            raw = (raw[bom:] if bom else raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{what} is not UTF-8 text (byte {exc.start + bom})") from None
    try:
        # json's scanner raises RecursionError on a recursion bomb; the shape check then bounds the depth.
        value = _parse(raw)
    except (ValueError, RecursionError) as exc:
        reason = (exc.msg if isinstance(exc, json.JSONDecodeError) else
                  f"nested deeper than {MAX_DEPTH} levels" if isinstance(exc, RecursionError) else
                  # Python's own words for a long integer name its interpreter's setting: said plainly instead.
                  f"a number with more than {sys.get_int_max_str_digits():,} digits" if "integer string conversion" in str(exc) else
                  str(exc))
        raise PayloadError(f"{what} is not JSON ({reason})") from None
    problem = text_shape_problem(raw, value, min(limit, MAX_EVENT_BYTES), decoded=decoded) if shaped else None
    if problem:
        raise PayloadError(f"{what} {problem}")
    return value


_DOUBT = object()  # what `_quick` answers for a document it leaves to the strict parser
_QUICK_DEPTH = 8  # containers within containers the quick path reads: an alert's dimension sits 8 deep


def _quick(raw: bytes | str) -> Any:
    """The document as the strict parser reads it, from a parser in C (msgspec), or _DOUBT: the strict parser decides.

    msgspec gives the values json gives (integers of any length it reads, floats rounded alike) and refuses
    what JSON cannot carry (NaN, infinities, numbers beyond a float, lone surrogates, text that is not
    UTF-8), but keeps the last of a repeated key silently. So a document is taken from it only when:

    - it is small and shallow: it reads documents at most _QUICK_DEPTH containers deep (its type says so),
      and a text shorter than MAX_NODES characters (the caller's check) holds fewer parts than that —
      well within every bound ``text_shape_problem`` holds a document to;
    - no key was lost: every entry of an object, kept or not, has a colon of its own in the text, and
      every other colon there is a character of some text (none is written ``\\u003a``); written out
      again, the parsed document has one colon fewer for each entry dropped, and as many if none was.

    Anything else — an error, a doubt — goes to the strict parser, whose verdict and words are the ones
    given: this path only ever gives a value the strict parser gives too.
    """
    kind = type(raw)
    if kind is not bytes and kind is not str:
        return _DOUBT  # a subclass of either: the strict parser reads it as it would any
    colon, backslash, colon_escape = _BYTE_MARKS if kind is bytes else _TEXT_MARKS
    if raw.find(backslash) >= 0 and colon_escape.search(raw):  # find, not `in`: for bytes it costs a third
        return _DOUBT
    try:
        value = (_DECODE or _decoder())(raw)
    except Exception:  # whatever it refuses, and however (msgspec missing included), the strict parser words it
        return _DOUBT
    if raw.count(colon) != _ENCODE(value).count(b":"):
        return _DOUBT  # a key repeated in some object
    return value


def _shallow(depth: int) -> Any:
    """The type of JSON values at most `depth` containers deep (msgspec refuses a deeper document)."""
    value: Any = str | int | float | bool | None
    for _ in range(depth):
        value = dict[str, value] | list[value] | str | int | float | bool | None
    return value


def _always_doubt(raw: bytes | str) -> Any:
    raise ValueError("no parser in C here")


def _decoder() -> Callable[[bytes | str], Any]:
    """msgspec's decoder, made on first use: imported with the app it would add milliseconds to its cold start,
    and its type takes a few more to build."""
    global _DECODE, _ENCODE
    try:
        import msgspec.json
    except ImportError:  # a process without it reads everything strictly, and tries the import once
        _DECODE = _always_doubt
        raise
    _ENCODE = msgspec.json.Encoder().encode
    _DECODE = msgspec.json.Decoder(_shallow(_QUICK_DEPTH)).decode
    return _DECODE


_DECODE: Callable[[bytes | str], Any] | None = None
_ENCODE: Callable[[Any], bytes]
_BYTE_MARKS = (b":", b"\\", re.compile(rb"\\u003[aA]"))
_TEXT_MARKS = (":", "\\", re.compile(r"\\u003[aA]"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is beyond what a float holds")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys repeat is ambiguous (parsers keep the first or the last): refused, not guessed."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return out


# One decoder for every document: json.loads with hooks would build a new one per call. The pairs hook
# (a Python call per object) costs about 2 µs an event; deciding from the text when it is not needed
# costs as much (a walk counting the entries against the colons that can end a key: about 2 µs, a
# regex over the keys: more), so every document goes through it.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)

_SCAN = _DECODER.scan_once


def _parse(text: str) -> Any:
    """`_DECODER.decode(text)`, without its two whitespace matches when the value fills the text (the usual case)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # leading whitespace or no value: the decoder skips the one and words the other
        return _DECODER.decode(text)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _DECODER.decode(text)  # words what follows the value
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def text_shape_problem(text: str, value: Any, max_bytes: int = MAX_EVENT_BYTES, *, decoded: bool = False) -> str | None:
    """`shape_problem` of a document json.loads made of `text` (finite numbers, unique keys), read off
    the text where it can be, walked where it cannot.

    Every part but the root follows a comma or opens a container, and no part is deeper than the
    number of containers, so counting brackets and commas (strings included: counting more only
    errs on the safe side) bounds both from above; text of at most `max_bytes` holds no more; and a
    lone surrogate comes only from a ``\\uD800``–``\\uDFFF`` escape, or from text that did not come
    from UTF-8 bytes (``decoded``). A document near any bound is walked exactly.
    """
    opens = text.count("{") + text.count("[")
    # Commas and brackets are characters of the text: a shorter text cannot hold MAX_NODES of them.
    if (len(text) > max_bytes or opens >= MAX_DEPTH or (len(text) >= MAX_NODES and text.count(",") + opens >= MAX_NODES)
            or ("\\u" in text and _SURROGATE_ESCAPE.search(text))
            or (not decoded and not text.isascii() and _bad_text(text))):
        return shape_problem(value, max_bytes=max_bytes)
    return None


def shape_problem(value: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
                  max_bytes: int = MAX_EVENT_BYTES) -> str | None:
    """Why an already parsed document is out of bounds (too deep, too many parts, larger than an event
    may be, text that is not valid Unicode, a number that is not finite), or None. Iterative: it cannot
    recurse itself. The size is counted on the text it holds, a lower bound of its JSON size."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = size = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return f"has more than {max_nodes:,} parts"
        if size > max_bytes:
            return f"is larger than the {max_bytes:,}-byte limit"
        if depth > max_depth:
            return f"is nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or _bad_text(key):
                    return "has a key that is not valid Unicode text"
                size += len(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            size += len(item)
            if _bad_text(item):
                return "has text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, float) and not math.isfinite(item):
            return "has a number that is not finite"
        elif item is not None and not isinstance(item, bool | int | float):
            return f"has a {type(item).__name__}, which JSON cannot carry"
    if size > max_bytes:
        return f"is larger than the {max_bytes:,}-byte limit"
    return None


def _bad_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

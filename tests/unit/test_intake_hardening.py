"""What the intake's shortcuts must not cost: memory a sender controls, a parser's verdict, a level's
name, a logger's own dispatch, or a check a model class asks for."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from unittest import mock

import pytest

from shared import events, intake
from shared.model import quick_init
from shared.payload import load_json, load_strict


def test_a_sender_cannot_make_the_key_folding_cache_hold_its_keys():
    events._SPELLINGS.clear()
    for i in range(40):
        events._spellings({f"k{i}-{n}": n for n in range(5000)})  # thousands of keys
        events._spellings({"runId": 1, "x" * 1_000_000 + str(i): 2})  # one key of a megabyte
    held = sum(len(k) for keys in events._SPELLINGS for k in keys)
    assert not events._SPELLINGS and held == 0
    events._spellings({"runId": 1, "runStatus": 2})
    assert list(events._SPELLINGS) == [("runId", "runStatus")]  # Azure's own small key sets are still kept


def test_a_subclass_of_bytes_or_str_is_read_as_the_strict_parser_reads_it():
    class Body(bytes):
        pass

    class Text(str):
        pass

    assert load_json(Body(b'{"a": 1}')) == load_strict(Body(b'{"a": 1}')) == {"a": 1}
    assert load_json(Text('{"a": [1]}')) == {"a": [1]}


@pytest.fixture
def captured():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    intake.log.addHandler(handler)
    before = intake.log.level
    intake.log.setLevel(logging.INFO)
    try:
        yield records
    finally:
        intake.log.removeHandler(handler)
        intake.log.setLevel(before)


def test_a_renamed_level_is_named_as_logging_names_it_now(captured):
    intake._say(logging.WARNING, "first")  # a template at this level
    logging.addLevelName(logging.WARNING, "WARN")
    try:
        intake._say(logging.WARNING, "second")
    finally:
        logging.addLevelName(logging.WARNING, "WARNING")
    assert [(r.msg, r.levelname) for r in captured] == [("first", "WARNING"), ("second", "WARN")]


def test_a_logger_whose_dispatch_is_replaced_on_it_gets_the_record_itself(captured):
    with mock.patch.object(intake.log, "handle") as handle:
        intake._say(logging.INFO, "patched")
    assert handle.call_count == 1 and handle.call_args.args[0].msg == "patched" and captured == []


def test_quick_init_refuses_a_class_whose_init_it_would_not_honour():
    @dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError

    with pytest.raises(TypeError, match="__post_init__"):
        quick_init(Checked)

    @dataclass(frozen=True, kw_only=True)
    class Keywords:
        n: int = 0

    with pytest.raises(TypeError, match="positional"):
        quick_init(Keywords)

    @quick_init
    @dataclass(frozen=True)
    class Named:
        attributes: str
        self: int = 1
        tags: list[str] = field(default_factory=list)

    made = Named("a")
    assert (made.attributes, made.self, made.tags) == ("a", 1, []) and made == Named("a") and made.tags is not Named("a").tags

"""The triage's one log line: the record it builds is the one the logger itself would make, and it reaches the handlers the logger itself would hand it to."""

from __future__ import annotations

import logging
import threading

import pytest

from shared import intake

TIMES = {"created", "msecs", "relativeCreated"}


def _made(level: int, line: str) -> dict[str, object]:
    return vars(intake.log.makeRecord(intake.log.name, level, intake.__file__, intake._TRIAGE_LINE, line, None, None, "_triage"))


def test_the_triage_record_equals_the_loggers_own_but_for_the_time_it_was_made():
    for level in (logging.INFO, logging.WARNING, logging.ERROR):
        built = vars(intake._record(level, f"line at {level}"))
        made = _made(level, f"line at {level}")
        assert built.keys() == made.keys()
        assert {k: v for k, v in built.items() if k not in TIMES} == {k: v for k, v in made.items() if k not in TIMES}
        assert abs(built["created"] - made["created"]) < 1 and built["msg"] == f"line at {level}"
        created = built["created"]  # the milliseconds and the time since start as LogRecord works them out
        assert built["msecs"] == int((created - int(created)) * 1000) + 0.0 and type(built["msecs"]) is float
        assert built["relativeCreated"] == (created - logging._startTime) * 1000


def test_the_triage_record_names_the_thread_that_logs_it():
    seen: dict[str, object] = {}
    worker = threading.Thread(target=lambda: seen.update(vars(intake._record(logging.INFO, "x"))), name="intake-worker")
    worker.start()
    worker.join()
    assert seen["threadName"] == "intake-worker" and seen["thread"] == worker.ident


def test_a_record_factory_of_someone_elses_makes_the_triage_records():
    before = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = before(*args, **kwargs)
        record.stamped = True
        return record

    intake._record(logging.INFO, "before")  # a template exists
    logging.setLogRecordFactory(factory)
    try:
        assert getattr(intake._record(logging.INFO, "x"), "stamped", False)
    finally:
        logging.setLogRecordFactory(before)
    assert not hasattr(intake._record(logging.INFO, "after"), "stamped"), "a foreign record never becomes the template"


def test_each_triaged_event_logs_one_line_through_the_loggers_own_handlers(caplog):
    from tests.unit.test_intake_properties import SETTINGS

    caplog.set_level(logging.INFO, logger="autopilot.intake")
    intake.accept_event_text(b'{"id": "1"}', SETTINGS)
    intake.accept_event_text(b"{not json", SETTINGS)
    assert [(r.levelname, r.funcName, r.getMessage()[:9]) for r in caplog.records] == [
        ("ERROR", "_triage", "rejected "), ("ERROR", "_triage", "rejected ")]


class _Kept(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


def _dispatch(say: bool, level: int, propagate: bool, logger_filter: bool, handlers: bool) -> list[list[tuple[str, str]]]:
    """Which handler got which line, through the triage's `_say` or through logging's own `Logger.handle`."""
    names = ("autopilot.intake", "autopilot", "")
    loggers = [logging.getLogger(name) for name in names]
    kept = [_Kept(logging.WARNING), _Kept(), _Kept(logging.ERROR)] if handlers else []
    saved = [(lg.handlers[:], lg.propagate, lg.filters[:], lg.level) for lg in loggers]
    last_resort, logging.lastResort = logging.lastResort, _Kept(logging.WARNING)
    try:
        for lg, handler in zip(loggers, kept, strict=False):
            lg.handlers[:] = [handler]
        for lg in loggers:
            if not handlers:
                lg.handlers[:] = []
            lg.filters[:] = []
            lg.setLevel(logging.DEBUG)
        loggers[1].propagate = propagate
        if logger_filter:
            loggers[0].addFilter(lambda record: "drop" not in record.getMessage())
        for line in ("a line", "drop this line"):
            if say:
                intake._say(level, line)
            else:
                intake.log.handle(intake.log.makeRecord(intake.log.name, level, intake.__file__, 1, line, None, None))
        return [h.lines for h in kept] + [logging.lastResort.lines]
    finally:
        logging.lastResort = last_resort
        for lg, (hs, prop, filters, lvl) in zip(loggers, saved, strict=True):
            lg.handlers[:], lg.propagate, lg.filters[:] = hs, prop, filters
            lg.setLevel(lvl)


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, logging.ERROR])
@pytest.mark.parametrize("propagate", [True, False])
@pytest.mark.parametrize("logger_filter", [False, True])
@pytest.mark.parametrize("handlers", [True, False])
def test_the_triage_line_reaches_exactly_the_handlers_logging_itself_would_give_it_to(level, propagate, logger_filter, handlers):
    assert _dispatch(True, level, propagate, logger_filter, handlers) == _dispatch(False, level, propagate, logger_filter, handlers)

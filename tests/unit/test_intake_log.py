"""The triage's one log line: the record it builds is the one the logger itself would make."""

from __future__ import annotations

import logging
import threading

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

"""Inbound triage shared by the triggers and `autopilot explain`: classify, authenticate, make work.

Every event gets exactly one log line, at the level its outcome deserves, and production keeps them:

- accepted: INFO. It is the only record of which event (run, status, source) made which work item:
  the worker's summary comes later, maybe on another instance, and names the work item, not the
  event; and a repeated delivery shows as a second accepted line beside one outcome, which is how an
  operator tells Event Grid's at-least-once delivery from a double action.
- ignored: INFO. Understood and deliberately not acted on, with the reason (a run still running, a
  resolved alert) — what answers "why did the autopilot not react to this event?" when the payload is
  gone; Event Grid keeps none.
- rejected: WARNING for a forged or misrouted source (a security signal), ERROR for a malformed one.

The line is logged through the logger's own handlers, filters and levels — the Functions host's
logging configuration is never touched — with a record built at a fraction of ``Logger.info``'s cost
(``_record``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.events import ACTIONABLE, Allowed, Ignored, Parsed, Rejected, parse_alert, parse_event
from shared.model import quick_init
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json
from shared.settings import Settings
from shared.work import BadWorkItem, WorkItem, from_event

log = logging.getLogger("autopilot.intake")


@quick_init
@dataclass(frozen=True)
class Intake:
    parsed: Parsed
    item: WorkItem | None
    message: str | None = None  # the work item as its queue message, serialised (and size-checked) once

    @property
    def accepted(self) -> bool:
        return self.item is not None

    def line(self) -> str:
        return self.parsed.describe()

    @property
    def queued(self) -> str | None:
        """The work item as the queue message to send, or None."""
        return self.message


_ALLOWED: dict[int, tuple[Settings, Allowed]] = {}


def allowed(settings: Settings) -> Allowed:
    """The sources the settings allow, built once per settings object (a process has one, a test a few).

    Kept by identity: hashing the settings would cost more than the whole triage of an event.
    """
    held = _ALLOWED.get(id(settings))
    if held is None or held[0] is not settings:
        if len(_ALLOWED) >= 16:
            _ALLOWED.clear()
        held = _ALLOWED[id(settings)] = (settings, Allowed(settings.workspaces, settings.vaults))
    return held[1]


def _say(level: int, line: str) -> None:
    """Log one finished line from the triage, the one line an event gets.

    The record is the one ``Logger.info`` would make, naming the triage as its caller, built without
    what makes that dear on every event: the stack walk to find the caller, the %-formatting, and
    ``LogRecord.__init__`` working out again what cannot have changed since the last line (file,
    module, level name, process). Levels, filters and handlers are the logger's own, untouched: the
    record reaches each handler ``Logger.callHandlers`` would hand it to, found as it finds them (up the
    hierarchy until a logger that does not propagate, each handler's own level), with the three calls
    of ``Logger.handle`` saved; a logger with filters, or of a class that dispatches records its own
    way, gets ``handle`` itself.
    """
    if not log.isEnabledFor(level):
        return
    record = _record(level, line)
    if log.filters or _OWN_DISPATCH & vars(log).keys() or type(log).handle is not _HANDLE \
            or type(log).callHandlers is not _CALL_HANDLERS or type(log).filter is not _FILTER:
        log.handle(record)  # filters, or dispatch of its own (its class's or set on it): logging's own way
        return
    found = False
    logger: logging.Logger | None = log
    while logger:
        for handler in logger.handlers:
            found = True
            if level >= handler.level:
                handler.handle(record)
        logger = logger.parent if logger.propagate else None
    if not found:
        log.callHandlers(record)  # no handler anywhere: logging's last resort, or its one warning, as it words them


_HANDLE, _CALL_HANDLERS, _FILTER = logging.Logger.handle, logging.Logger.callHandlers, logging.Logger.filter
_OWN_DISPATCH = frozenset({"handle", "callHandlers", "filter"})
_LogRecord = logging.LogRecord
_MAKE_RECORD = logging.Logger.makeRecord
_new = object.__new__
_now = time.time
_level_name = logging.getLevelName
_TEMPLATES: dict[tuple[int, bool, bool, bool], dict[str, Any]] = {}
# A template holds this process's id, which changes only across a fork: a forked child starts without
# templates, rather than every line asking for the id (a system call).
os.register_at_fork(after_in_child=_TEMPLATES.clear)


def _record(level: int, line: str) -> logging.LogRecord:
    """A record of `line` at `level`, equal to what ``log.makeRecord`` gives, from a template per level (and process).

    A record factory or logger class of someone else's (``setLogRecordFactory``, ``setLoggerClass``)
    decides its records itself: it gets ``makeRecord``.
    """
    threads = logging.logThreads
    key = (level, threads, logging.logProcesses, logging.logMultiprocessing)
    template = _TEMPLATES.get(key)
    if template is None or logging.getLogRecordFactory() is not _LogRecord or type(log).makeRecord is not _MAKE_RECORD:
        return _made(key, level, line)
    record = _new(_LogRecord)
    record.__dict__ = fields = template.copy()
    now = _now()
    fields["msg"] = line
    fields["levelname"] = _level_name(level)  # as makeRecord names it now (addLevelName may rename a level)
    fields["created"] = now
    # LogRecord's int((now - int(now)) * 1000) + 0.0, the same float for any time since 1970, in fewer steps.
    fields["msecs"] = now % 1.0 * 1000 // 1 if now >= 0 else int((now - int(now)) * 1000) + 0.0
    fields["relativeCreated"] = (now - logging._startTime) * 1000
    if threads:
        fields["thread"] = _get_ident()
        fields["threadName"] = _current_thread().name
    return record


def _made(key: tuple[int, bool, bool, bool], level: int, line: str) -> logging.LogRecord:
    """``log.makeRecord``'s record; a plain one becomes the template of the next ones at its level."""
    record = log.makeRecord(log.name, level, __file__, _TRIAGE_LINE, line, None, None, "_triage")
    plain = logging.getLogRecordFactory() is _LogRecord and type(log).makeRecord is _MAKE_RECORD
    # One that carries an asyncio task's name (Python 3.12 and later) is made each time.
    if plain and "taskName" not in vars(record):
        if len(_TEMPLATES) >= 16:
            _TEMPLATES.clear()
        _TEMPLATES[key] = dict(vars(record))
    return record


_get_ident, _current_thread = threading.get_ident, threading.current_thread


def _triage(parsed: Parsed) -> Intake:
    if isinstance(parsed, Ignored):
        _say(logging.INFO, parsed.describe())
        return Intake(parsed, None)
    if isinstance(parsed, Rejected):
        if parsed.security:
            _say(logging.WARNING, "security: rejected " + parsed.describe())
        else:
            _say(logging.ERROR, "rejected " + parsed.describe())
        return Intake(parsed, None)
    assert isinstance(parsed, ACTIONABLE)
    item = from_event(parsed)
    try:
        message = item.to_json()
    except BadWorkItem as exc:
        return _triage(Rejected(str(exc), envelope=parsed.envelope))
    _say(logging.INFO, "accepted " + parsed.describe())
    return Intake(parsed, item, message)


_TRIAGE_LINE = _triage.__code__.co_firstlineno


def accept_event(payload: Any, settings: Settings) -> Intake:
    """One Event Grid / CloudEvents event → work item, or a logged rejection (never raises on bad input)."""
    return _triage(parse_event(payload, allowed(settings)))


def accept_event_text(text: str | bytes, settings: Settings) -> Intake:
    """One event as the Event Grid trigger receives it (its JSON text, any bytes) → work item, or a logged rejection."""
    try:
        payload = load_json(text, MAX_EVENT_BYTES, "event")  # bounded here, off the text: cheaper than a walk
    except PayloadError as exc:
        return _triage(Rejected(str(exc)))
    return _triage(parse_event(payload, allowed(settings), bounded=True))


def accept_alert(payload: Any, settings: Settings) -> Intake:
    """One common-alert-schema payload → work item, or a logged rejection (never raises on bad input)."""
    return _triage(parse_alert(payload, allowed(settings)))


def accept_alert_body(body: bytes, settings: Settings) -> Intake:
    """An action group's request body (any bytes) → work item, or a logged rejection."""
    try:
        payload = load_json(body, MAX_EVENT_BYTES, "alert body")
    except PayloadError as exc:
        return _triage(Rejected(str(exc)))
    return _triage(parse_alert(payload, allowed(settings), bounded=True))

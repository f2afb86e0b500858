"""Inbound triage shared by the triggers and `autopilot explain`: classify, authenticate, make work."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.events import ACTIONABLE, Allowed, Ignored, Parsed, Rejected, parse_alert, parse_event
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json
from shared.settings import Settings
from shared.work import BadWorkItem, WorkItem, from_event

log = logging.getLogger("autopilot.intake")


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


def _triage(parsed: Parsed) -> Intake:
    if isinstance(parsed, Rejected):
        if parsed.security:
            log.warning("security: rejected %s", parsed.describe())
        else:
            log.error("rejected %s", parsed.describe())
        return Intake(parsed, None)
    if isinstance(parsed, Ignored):
        log.info("%s", parsed.describe())
        return Intake(parsed, None)
    assert isinstance(parsed, ACTIONABLE)
    item = from_event(parsed)
    try:
        message = item.to_json()
    except BadWorkItem as exc:
        return _triage(Rejected(str(exc), envelope=parsed.envelope))
    log.info("accepted %s", parsed.describe())
    return Intake(parsed, item, message)


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

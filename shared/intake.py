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

    @property
    def accepted(self) -> bool:
        return self.item is not None

    def line(self) -> str:
        return self.parsed.describe()

    @property
    def queued(self) -> str | None:
        """The work item as the queue message to send, or None."""
        return self.item.to_json() if self.item else None


_last: tuple[Settings, Allowed] | None = None


def allowed(settings: Settings) -> Allowed:
    """The sources `settings` allow; kept while the same settings object is in use (its index is built once)."""
    global _last
    last = _last
    if last is not None and last[0] is settings:
        return last[1]
    made = Allowed(settings.workspaces, settings.vaults)
    _last = (settings, made)
    return made


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
        item.to_json()
    except BadWorkItem as exc:
        return _triage(Rejected(str(exc), envelope=parsed.envelope))
    log.info("accepted %s", parsed.describe())
    return Intake(parsed, item)


def accept_event(payload: Any, settings: Settings) -> Intake:
    """One Event Grid / CloudEvents event → work item, or a logged rejection (never raises on bad input)."""
    return _triage(parse_event(payload, allowed(settings)))


def accept_event_text(text: str | bytes, settings: Settings) -> Intake:
    """One event as the Event Grid trigger receives it (its JSON text, any bytes) → work item, or a logged rejection."""
    try:
        payload = load_json(text, MAX_EVENT_BYTES, "event", shaped=False)  # parse_event bounds it
    except PayloadError as exc:
        return _triage(Rejected(str(exc)))
    return accept_event(payload, settings)


def accept_alert(payload: Any, settings: Settings) -> Intake:
    """One common-alert-schema payload → work item, or a logged rejection (never raises on bad input)."""
    return _triage(parse_alert(payload, allowed(settings)))


def accept_alert_body(body: bytes, settings: Settings) -> Intake:
    """An action group's request body (any bytes) → work item, or a logged rejection."""
    try:
        payload = load_json(body, MAX_EVENT_BYTES, "alert body", shaped=False)  # parse_alert bounds it
    except PayloadError as exc:
        return _triage(Rejected(str(exc)))
    return accept_alert(payload, settings)

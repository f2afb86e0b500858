"""Telling what happened: one structured log line per outcome, then the ledger and the notification channels.

No SDK imports here: the triggers' cold start stays light.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from shared import telemetry
from shared.model import Outcome, Status

log = logging.getLogger("autopilot.outcome")


class _Records(Protocol):
    def record(self, outcome: Outcome) -> None: ...


class _Sends(Protocol):
    def send(self, outcome: Outcome) -> None: ...


def log_outcome(outcome: Outcome) -> None:
    """JSON after a fixed prefix, so log queries can parse it; failures at WARNING. Then the telemetry event."""
    level = logging.WARNING if outcome.status is Status.FAILED else logging.INFO
    log.log(level, "outcome %s", json.dumps(outcome.as_log(), default=str, sort_keys=True))
    telemetry.record(outcome)


def tell(outcome: Outcome, outcomes: list[Outcome], ledger: _Records, notifier: _Sends | None) -> None:
    """Add the outcome to the run's report, log it, record it and send it (when a notifier is given).

    A redelivery's "duplicate" outcome is only logged: its claim already tells the story. A failure
    to record never fails the work it describes.
    """
    outcomes.append(outcome)
    log_outcome(outcome)
    if outcome.detail.startswith("duplicate:"):
        return
    try:
        ledger.record(outcome)
    except Exception as exc:
        log.warning("could not record the outcome for %s: %s", outcome.action.target, type(exc).__name__)
    if notifier is not None:
        notifier.send(outcome)

"""The one structured log line per outcome (no SDK imports: the triggers' cold start stays light)."""

from __future__ import annotations

import json
import logging

from shared.model import Outcome, Status

log = logging.getLogger("autopilot.outcome")


def log_outcome(outcome: Outcome) -> None:
    """JSON after a fixed prefix, so log queries can parse it; failures at WARNING."""
    level = logging.WARNING if outcome.status is Status.FAILED else logging.INFO
    log.log(level, "outcome %s", json.dumps(outcome.as_log(), default=str, sort_keys=True))

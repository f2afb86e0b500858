"""Each outcome as an Application Insights custom event and a metric, through OpenTelemetry.

Rules:
- Nothing at import: ``import function_app`` must stay cheap. The first outcome of a process
  decides, once: with ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, azure-monitor-opentelemetry is
  configured (``shared/adapters/telemetry.py``: custom events and metrics only, Entra-authenticated
  when ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` says so); without it, telemetry stays off.
- The event is named ``AutopilotOutcome``; its dimensions are ``DIMENSIONS``, all strings:
  kind, workspace, target, outcome (planned, done, skipped, failed), mode (the process's setting),
  trigger and, when the outcome says how many, cores_freed. It lands in the ``customEvents``
  table, which the workbook and the README's queries read.
- The metric ``autopilot.outcomes`` counts outcomes by kind, workspace, outcome and mode;
  ``autopilot.cores_freed`` adds the cores an outcome freed, when it says so.
- The event logger does not propagate: the host already logs each outcome once as a trace line
  (``shared/outcome_log.py``); this is the structured copy.
- Telemetry never fails the work it describes: a failure is logged once and telemetry is then off
  for the process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.model import Outcome

EVENT_NAME = "AutopilotOutcome"
EVENT_LOGGER = "autopilot.telemetry"
# The attribute azure-monitor-opentelemetry reads to turn a log record into a custom event.
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"
DIMENSIONS = ("kind", "workspace", "target", "outcome", "mode", "trigger", "cores_freed")
METRIC_DIMENSIONS = ("kind", "workspace", "outcome", "mode")

log = logging.getLogger("autopilot.outcome")


def cores_freed(outcome: Outcome) -> int | None:
    """The cores an outcome freed, when it says so (an optional field of the outcome or of its log form)."""
    value = getattr(outcome, "cores_freed", None)
    if value is None:
        value = outcome.as_log().get("cores_freed")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def dimensions(outcome: Outcome, mode: str) -> dict[str, str]:
    """The event's dimensions (see the module rules); cores_freed only when known."""
    found = {
        "kind": outcome.action.kind.value,
        "workspace": outcome.action.workspace.name,
        "target": outcome.action.target,
        "outcome": outcome.status.value,
        "mode": mode,
        "trigger": outcome.trigger,
    }
    cores = cores_freed(outcome)
    if cores is not None:
        found["cores_freed"] = str(cores)
    return found


class OutcomeTelemetry:
    """Sends outcomes as events (through `logger`, which carries an OpenTelemetry handler) and metrics."""

    def __init__(self, mode: str, logger: logging.Logger, meter_provider: Any) -> None:
        self.mode = mode
        self._logger = logger
        meter = meter_provider.get_meter("aml-autopilot")
        self._outcomes = meter.create_counter("autopilot.outcomes", unit="{outcome}",
                                              description="Outcomes of the autopilot's actions")
        self._cores = meter.create_counter("autopilot.cores_freed", unit="{core}",
                                           description="Cores freed by the autopilot's actions")

    def emit(self, outcome: Outcome) -> None:
        found = dimensions(outcome, self.mode)
        self._logger.info("%s %s %s/%s", EVENT_NAME, found["outcome"], found["workspace"], found["target"],
                          extra={CUSTOM_EVENT_ATTRIBUTE: EVENT_NAME, **found})
        by = {name: found[name] for name in METRIC_DIMENSIONS}
        self._outcomes.add(1, by)
        cores = cores_freed(outcome)
        if cores:
            self._cores.add(cores, by)


_lock = threading.Lock()
_sink: OutcomeTelemetry | None = None
_decided = False


def record(outcome: Outcome) -> None:
    """Send `outcome` when the process has telemetry (decided on the first call; see the module rules).

    Nothing raised here reaches the caller, be it from setting telemetry up or from sending.
    """
    global _sink
    try:
        sink = _process_sink()
        if sink is not None:
            sink.emit(outcome)
    except Exception as exc:  # telemetry must never fail the work it describes
        _sink = None
        log.warning("telemetry off for this process: %s: %s", type(exc).__name__, exc)


def _process_sink() -> OutcomeTelemetry | None:
    global _sink, _decided
    if _decided:
        return _sink
    with _lock:
        if not _decided:
            try:
                _sink = _configure()
            finally:
                _decided = True  # also when the setup raised: it is not retried on every outcome
    return _sink


def _configure() -> OutcomeTelemetry | None:
    from shared.settings import SettingsError, current

    try:
        settings = current()
    except SettingsError:
        return None  # said once by the start line; the triggers fail on it anyway
    return telemetry_for(settings)


def telemetry_for(settings: Any) -> OutcomeTelemetry | None:
    """The process's telemetry for these settings: None without a connection string (nothing is configured)."""
    if not settings.app_insights_connection:
        return None
    try:
        from shared.adapters.telemetry import configure

        meter_provider = configure(settings, EVENT_LOGGER)
    except Exception as exc:
        log.warning("telemetry off for this process: could not configure Azure Monitor: %s: %s", type(exc).__name__, exc)
        return None
    logger = logging.getLogger(EVENT_LOGGER)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return OutcomeTelemetry(settings.mode.value, logger, meter_provider)

"""Each outcome becomes one custom event with the documented dimensions and counts in the outcomes metric.

OpenTelemetry's own SDK with its in-memory exporter and reader stands where Azure Monitor's
exporter goes in the app; the event attribute is the one azure-monitor-opentelemetry turns into a
``customEvents`` row. The wire to Application Insights is tested end to end in
``tests/e2e/test_telemetry.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.actions import ScaleCluster, StopInstance
from shared.model import Action, Outcome, Status
from shared.telemetry import CUSTOM_EVENT_ATTRIBUTE, DIMENSIONS, EVENT_NAME, OutcomeTelemetry, cores_freed
from tests.unit.builders import NOW, WS


@pytest.fixture
def pipeline() -> Any:
    exporter, reader = InMemoryLogRecordExporter(), InMemoryMetricReader()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(f"test.telemetry.{id(exporter)}")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(LoggingHandler(logger_provider=provider))
    telemetry = OutcomeTelemetry("enforce", logger, MeterProvider(metric_readers=[reader]))
    return telemetry, exporter, reader


def _outcome(change: Any, status: Status = Status.DONE, target: str = "ci-alice", trigger: str = "timer:idle") -> Outcome:
    return Outcome(Action(change, WS, target, "idle 3h"), status, "stopped", NOW, trigger)


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [point for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
            if metric.name == name for point in metric.data.data_points]


def test_an_outcome_is_one_custom_event_with_its_dimensions(pipeline):
    telemetry, exporter, _ = pipeline
    telemetry.emit(_outcome(StopInstance()))
    (record,) = [r.log_record for r in exporter.get_finished_logs()]
    attributes = dict(record.attributes)
    assert attributes[CUSTOM_EVENT_ATTRIBUTE] == EVENT_NAME
    assert {k: attributes[k] for k in DIMENSIONS if k in attributes} == {
        "kind": "stop-instance", "workspace": "ws", "target": "ci-alice", "outcome": "done", "mode": "enforce",
        "trigger": "timer:idle",
    }
    assert "cores_freed" not in attributes, "unknown cores are left out, not reported as zero"


def test_outcomes_are_counted_by_kind_workspace_outcome_and_mode(pipeline):
    telemetry, _, reader = pipeline
    telemetry.emit(_outcome(StopInstance()))
    telemetry.emit(_outcome(StopInstance(), Status.FAILED, target="ci-bob"))
    telemetry.emit(_outcome(ScaleCluster(min_nodes=0, max_nodes=4, idle_s=120), target="cpu"))
    counted = {(p.attributes["kind"], p.attributes["outcome"], p.attributes["workspace"], p.attributes["mode"]): p.value
               for p in _points(reader, "autopilot.outcomes")}
    assert counted == {("stop-instance", "done", "ws", "enforce"): 1, ("stop-instance", "failed", "ws", "enforce"): 1,
                       ("scale-cluster", "done", "ws", "enforce"): 1}
    assert "target" not in str(_points(reader, "autopilot.outcomes")[0].attributes), "targets would explode the metric's cardinality"


def test_cores_freed_is_a_dimension_and_a_metric_when_the_outcome_says_so(pipeline):
    telemetry, exporter, reader = pipeline

    @dataclasses.dataclass(frozen=True)
    class WithCores(Outcome):
        cores_freed: int | None = None

    base = _outcome(ScaleCluster(min_nodes=0, max_nodes=4, idle_s=120), target="cpu")
    telemetry.emit(WithCores(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Outcome)}, cores_freed=8))
    (record,) = [r.log_record for r in exporter.get_finished_logs()]
    assert record.attributes["cores_freed"] == "8"
    assert [p.value for p in _points(reader, "autopilot.cores_freed")] == [8]


@pytest.mark.parametrize(("value", "expected"), [(None, None), (4, 4), ("12", 12), ("many", None), (True, None)])
def test_cores_freed_is_read_defensively(value, expected):
    @dataclasses.dataclass(frozen=True)
    class WithCores(Outcome):
        cores_freed: Any = None

    base = _outcome(StopInstance())
    assert cores_freed(WithCores(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Outcome)}, cores_freed=value)) == expected


def test_without_a_connection_string_nothing_is_configured():
    import json
    import sys
    from pathlib import Path

    from shared.settings import Settings
    from shared.telemetry import telemetry_for

    env = json.loads((Path(__file__).resolve().parents[2] / "local.settings.sample.json").read_text())["Values"]
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"] == ""
    loaded = "azure.monitor.opentelemetry" in sys.modules
    assert telemetry_for(Settings.from_env(env)) is None
    assert ("azure.monitor.opentelemetry" in sys.modules) == loaded, "nothing imported, nothing configured"


@pytest.fixture
def fresh_process(monkeypatch):
    """The module's per-process decision, reset for one test and restored after it."""
    import shared.telemetry as telemetry

    monkeypatch.setattr(telemetry, "_decided", False)
    monkeypatch.setattr(telemetry, "_sink", None)
    return telemetry


def test_a_telemetry_setup_that_raises_never_fails_the_outcome_and_is_not_retried(fresh_process, monkeypatch, caplog):
    from shared.outcome_log import log_outcome

    attempts = []

    def broken_setup():
        attempts.append(1)
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(fresh_process, "_configure", broken_setup)
    with caplog.at_level(logging.WARNING, logger="autopilot.outcome"):
        log_outcome(_outcome(StopInstance()))
        log_outcome(_outcome(StopInstance(), target="ci-bob"))
    assert attempts == [1], "decided once per process"
    assert [r.getMessage() for r in caplog.records if "telemetry off" in r.getMessage()] == [
        "telemetry off for this process: RuntimeError: exporter exploded"]


def test_a_send_that_raises_never_fails_the_outcome_and_turns_telemetry_off(fresh_process, monkeypatch, pipeline):
    from shared.outcome_log import log_outcome

    telemetry, exporter, _ = pipeline

    class Refusing:
        def add(self, *_: Any) -> None:
            raise ValueError("metric refused")

    telemetry._outcomes = Refusing()
    monkeypatch.setattr(fresh_process, "_configure", lambda: telemetry)
    log_outcome(_outcome(StopInstance()))
    assert fresh_process._sink is None, "off after the first failure"
    log_outcome(_outcome(StopInstance(), target="ci-bob"))
    assert len(exporter.get_finished_logs()) == 1, "nothing more is sent once off"

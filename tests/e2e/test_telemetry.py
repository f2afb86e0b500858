"""Outcomes reach Application Insights as custom events and metrics, sent by the app's own worker.

The dev host's worker runs the project with an Application Insights connection string whose
ingestion endpoint is the emulator's (``local/emulator/sinks.py``): the real
azure-monitor-opentelemetry exporter sends there, authenticated with the managed identity (the
sink, like the deployed component, refuses telemetry without an Entra token).
"""

from __future__ import annotations

import time
from typing import Any

from local import drive
from local.stack import LOCAL_CLIENT_ID
from shared.telemetry import EVENT_NAME
from tests.e2e.conftest import World

IKEY = "00000000-0000-4000-8000-00000000a1a1"
FAST_EXPORT = {
    # Export within a second instead of after 5 s (logs) and 60 s (metrics): the test waits less.
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "500",
    # The exporter's own usage reports go to Microsoft, which a test never reaches.
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
}


def _telemetry(world: World, wanted: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        envelopes = [r["envelope"] for r in world.emulator.state()["sinks"]["appinsights"]]
        if any(e["data"]["baseType"] == wanted for e in envelopes):
            return envelopes
        time.sleep(0.2)
    return [r["envelope"] for r in world.emulator.state()["sinks"]["appinsights"]]


def test_a_sweep_outcome_reaches_application_insights_as_an_event_and_a_metric(world: World, app):
    connection = f"InstrumentationKey={IKEY};IngestionEndpoint={world.emulator.url}/_sinks/appinsights/"
    stack = app("enforce", APPLICATIONINSIGHTS_CONNECTION_STRING=connection,
                APPLICATIONINSIGHTS_AUTHENTICATION_STRING=f"ClientId={LOCAL_CLIENT_ID};Authorization=AAD", **FAST_EXPORT)
    assert drive.timer(stack, "cluster_sweep").status == 202
    drive.wait_quiet(stack)

    envelopes = _telemetry(world, "EventData")
    events = [e for e in envelopes if e["data"]["baseType"] == "EventData"]
    assert [e["data"]["baseData"]["name"] for e in events] == [EVENT_NAME], f"got {envelopes}"
    properties = events[0]["data"]["baseData"]["properties"]
    assert {k: properties.get(k) for k in ("kind", "workspace", "target", "outcome", "mode", "trigger")} == {
        "kind": "scale-cluster", "workspace": "mlw-demo", "target": "cpu-cluster", "outcome": "done", "mode": "enforce",
        "trigger": properties["trigger"],
    }
    assert properties["trigger"], "the trigger is named"
    assert events[0]["iKey"] == IKEY

    envelopes = _telemetry(world, "MetricData")
    metrics = [m for e in envelopes if e["data"]["baseType"] == "MetricData" for m in e["data"]["baseData"]["metrics"]]
    assert "autopilot.outcomes" in {m["name"] for m in metrics}
    traces = [e for e in envelopes if e["data"]["baseType"] == "MessageData"]
    assert not traces, "only the outcome events go through OpenTelemetry; the host already ships the log lines"
    tokens = [c for c in world.emulator.journal(service="identity") if c["query"].get("resource", "").startswith("https://monitor.azure.com")]
    assert tokens and {c["query"].get("client_id") for c in tokens} == {LOCAL_CLIENT_ID}, "sent as the user-assigned identity"

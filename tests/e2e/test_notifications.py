"""Every outcome people act on reaches the webhook and the Event Grid topic; a failing channel never fails the work."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.model import Status
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World


def test_a_done_outcome_reaches_the_webhook_and_the_event_grid_topic(world: World):
    now = datetime.now(UTC)
    report = world.engine(world.settings()).run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    assert [o.status for o in report.outcomes] == [Status.DONE]
    sinks = world.emulator.state()["sinks"]
    (hook,) = sinks["webhooks"]["ops"]
    assert hook["body"]["status"] == "done" and hook["body"]["target"] == "cpu-cluster"
    assert hook["body"]["text"].startswith("[aml-autopilot] done: scale-cluster mlw-demo/cpu-cluster")
    (record,) = sinks["eventgrid"]["autopilot-events"]
    event = record["event"]
    assert record["schema"] == "CloudEventSchemaV1_0"
    assert event["type"] == "AmlAutopilot.scale-cluster.done" and event["source"] == "/aml-autopilot"
    assert event["subject"].endswith("/computes/cpu-cluster") and event["data"]["reason"] == hook["body"]["reason"]


def test_skipped_outcomes_are_logged_but_not_sent(world: World):
    now = datetime.now(UTC)
    engine = world.engine(world.settings(MAX_ACTIONS_PER_RUN="0"))
    report = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    assert [o.status for o in report.outcomes] == [Status.SKIPPED]
    assert world.emulator.state()["sinks"]["webhooks"] == {}


def test_a_failing_webhook_does_not_fail_the_remediation(world: World):
    world.emulator.fault(method="POST", path="/_sinks/webhook/", times=10, status=500)
    now = datetime.now(UTC)
    report = world.engine(world.settings()).run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    assert [o.status for o in report.outcomes] == [Status.DONE]
    assert world.emulator.state()["sinks"]["eventgrid"]["autopilot-events"], "the other channel still got it"

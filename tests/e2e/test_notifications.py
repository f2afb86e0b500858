"""Every outcome people act on reaches the webhook and the Event Grid topic; a failing channel never fails the work."""

from __future__ import annotations

import json
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


def test_an_idle_warning_in_teams_format_reaches_the_owners_own_webhook_with_the_owner_mentioned(world: World):
    owners = json.dumps({"Alice@Contoso.com": f"{world.emulator.url}/_sinks/webhook/alice"})
    settings = world.settings(NOTIFY_FORMAT="teams", NOTIFY_OWNER_WEBHOOKS=owners)
    now = datetime.now(UTC)
    report = world.engine(settings).run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)
    (alice,) = [o for o in report.outcomes if o.action.target == "ci-alice" and o.action.kind.value == "mark-idle"]
    assert alice.detail == "marked idle; owner alice@contoso.com reached on their own webhook; also sent via webhook, event grid"
    (frank,) = [o for o in report.outcomes if o.action.target == "ci-frank" and o.action.kind.value == "mark-idle"]
    assert frank.detail.endswith("owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS")
    hooks = world.emulator.state()["sinks"]["webhooks"]
    (to_alice,) = hooks["alice"]
    card = to_alice["body"]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["msteams"]["entities"][0]["mentioned"]["id"] == "alice@contoso.com"
    assert card["actions"][0]["url"].startswith("https://ml.azure.com/compute/ci-alice/details?wsid=/subscriptions/")
    assert any(f["title"] == "Time left" for f in card["body"][-1]["facts"])
    assert all(m["body"]["type"] == "message" for m in hooks["ops"])


def test_an_owner_webhook_that_fails_is_recorded_as_not_reaching_the_owner(world: World):
    owners = json.dumps({"alice@contoso.com": f"{world.emulator.url}/_sinks/webhook/alice"})
    world.emulator.fault(method="POST", path="/_sinks/webhook/alice", times=5, status=500)
    now = datetime.now(UTC)
    report = world.engine(world.settings(NOTIFY_FORMAT="slack", NOTIFY_OWNER_WEBHOOKS=owners)).run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)
    (alice,) = [o for o in report.outcomes if o.action.target == "ci-alice" and o.action.kind.value == "mark-idle"]
    assert alice.status is Status.DONE and alice.detail.endswith("owner not reached directly: their webhook failed")
    (ops,) = [m for m in world.emulator.state()["sinks"]["webhooks"]["ops"] if "Idle compute ci-alice" in m["body"]["text"]]
    assert ops["body"]["blocks"][0]["type"] == "header"

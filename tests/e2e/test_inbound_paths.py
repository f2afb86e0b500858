"""Each inbound path end to end through the dev host: Event Grid (both schemas), action-group alerts, timers.

Deliveries go to the same URLs Azure would call; the work runs in the queue-triggered worker; the
writes are read back from the emulator's journal and the lines from the host's log.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import drive
from local.stack import Stack
from shared.adapters.aml import Workspace
from tests.e2e.conftest import WS, World

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
TOPIC = WS.id


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def failed_run_event() -> list[dict[str, Any]]:
    """The sample RunStatusChanged (Failed) event, about the demo workspace's failed run on cpu-cluster."""
    events = payload("run-failed.eventgrid.json")
    for event in events:
        event["data"]["runId"] = "etl-nightly-0412"
        event["subject"] = "experiments/etl/runs/etl-nightly-0412"
    return events


def as_cloud_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"specversion": "1.0", "id": e["id"], "source": e["topic"], "type": e["eventType"], "subject": e["subject"],
             "time": e["eventTime"], "datacontenttype": "application/json", "data": e["data"]} for e in events]


def app_lines(stack: Stack, since: int = 0) -> list[str]:
    """What the autopilot itself logged (not the host), from byte `since` of the host log."""
    assert stack.host
    text = stack.host.logs().encode()[since:].decode(errors="replace")
    return [line.split(" ", 2)[2] for line in text.splitlines() if " autopilot." in line]


def log_size(stack: Stack) -> int:
    assert stack.host
    return len(stack.host.logs().encode())


def writes_by_compute(world: World, since: int) -> list[tuple[str, str]]:
    return [(w["method"], w["path"].split("/computes/", 1)[1]) for w in world.writes(since)]


def scale_of(write: dict[str, Any]) -> dict[str, Any]:
    return write["body"]["properties"]["properties"]["scaleSettings"]


def compute(world: World, name: str) -> dict[str, Any]:
    return next(c for c in world.emulator.ml_workspace()["computes"] if c["name"] == name)


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_a_failed_run_event_has_its_cluster_checked_at_once_in_either_schema(world: World, app, schema):
    stack = app(mode="enforce")
    start = world.mark()
    events = failed_run_event() if schema == "eventgrid" else as_cloud_events(failed_run_event())
    assert drive.event_grid(stack, events, cloud=schema == "cloudevents").status == 202
    drive.wait_quiet(stack)

    (write,) = world.writes(start)
    assert (write["method"], write["path"].rsplit("/", 1)[-1]) == ("PATCH", "cpu-cluster")
    assert scale_of(write) == {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT1800S"}
    lines = app_lines(stack)
    assert "INFO autopilot.intake: accepted run etl-nightly-0412 Failed in mlw-demo: check its compute" in lines
    assert "INFO autopilot.worker: run-ended mlw-demo: 1 done" in lines


def test_an_unusable_nodes_alert_recycles_the_cluster_and_the_cluster_sweep_timer_restores_its_max_nodes(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    answer = drive.alert(stack, payload("alert-unusable-nodes.json"))
    assert answer.status == 202 and "unusable nodes" in answer.json()["message"]
    drive.wait_quiet(stack)
    (recycle,) = world.writes(start)
    assert (recycle["method"], recycle["path"].rsplit("/", 1)[-1]) == ("PATCH", "gpu-cluster")
    assert scale_of(recycle) == {"minNodeCount": 0, "maxNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT1800S"}
    assert (compute(world, "gpu-cluster")["maxNodes"], compute(world, "gpu-cluster")["nodes"]) == (0, [])

    swept = world.mark()
    assert drive.timer(stack, "cluster_sweep").status == 202
    drive.wait_quiet(stack)
    restores = [w for w in world.writes(swept) if w["path"].endswith("/gpu-cluster")]
    assert [scale_of(w)["maxNodeCount"] for w in restores] == [2]
    assert (compute(world, "gpu-cluster")["minNodes"], compute(world, "gpu-cluster")["maxNodes"]) == (0, 2)
    assert sorted(writes_by_compute(world, swept)) == [("PATCH", "cpu-cluster"), ("PATCH", "gpu-cluster")]


def test_a_quota_alert_frees_idle_cores_of_its_family_most_cores_first(world: World, app):
    world.emulator.lro(polls=0)
    stack = app(mode="enforce")  # before any client in this process picks a cloud the host would inherit
    family = "standardDSv2Family"
    probe = Workspace(world.settings(), WS)
    used = lambda: next(u.current for u in probe.list_usages("westeurope") if u.family == family)  # noqa: E731
    assert used() == 28  # of 24: three running DS3_v2 instances, ci-dave's DS4_v2 and cpu-cluster's two nodes
    start = world.mark()

    assert drive.alert(stack, payload("alert-quota.json")).status == 202
    drive.wait_quiet(stack)
    assert sorted(writes_by_compute(world, start)) == [("PATCH", "cpu-cluster"), ("POST", "ci-alice/stop")]
    assert used() == 16, "8 cores of cpu-cluster's idle nodes, then 4 of idle ci-alice: under 80% of 24"
    rows = world.ledger().history(datetime.now(UTC) - timedelta(minutes=5))
    assert sorted((r["Action"], r["Target"], r["Status"]) for r in rows) == [
        ("scale-cluster", "cpu-cluster", "done"), ("stop-instance", "ci-alice", "done")]


def post(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_alert_endpoint_answers_each_kind_of_delivery_with_its_status_and_writes_nothing(world: World, app):
    stack = app(mode="enforce")
    assert stack.host
    start, logged = world.mark(), log_size(stack)
    url = f"{stack.host.url}/api/alerts?code={stack.host.function_key}"
    cases = [  # (what, how it is delivered, expected status)
        ("wrong function key", lambda: drive.alert(stack, payload("alert-quota.json"), key="not-the-key").status, 401),
        ("no function key", lambda: post(f"{stack.host.url}/api/alerts", json.dumps(payload("alert-quota.json")).encode()), 401),
        ("body is not JSON", lambda: post(url, b"{\"schemaId\": "), 400),
        ("JSON but not the common alert schema", lambda: drive.alert(stack, {"hello": "world"}).status, 400),
        ("forged alert target", lambda: drive.alert(stack, payload("alert-forged.json")).status, 403),
        ("resolved alert", lambda: drive.alert(stack, payload("alert-resolved.json")).status, 200),
    ]
    assert [(what, deliver()) for what, deliver, _ in cases] == [(what, status) for what, _, status in cases]
    drive.wait_quiet(stack)
    assert world.writes(start) == []
    lines = app_lines(stack, logged)
    assert len([line for line in lines if line.startswith("WARNING autopilot.intake: security: ")]) == 1
    assert any("resolved: nothing to do" in line for line in lines)
    assert "Functions.worker" not in stack.host.logs(), "no work was queued"


def test_forged_events_and_alerts_make_zero_writes_and_a_security_warning_each(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    assert drive.event_grid(stack, payload("run-forged.eventgrid.json")).status == 202  # acknowledged: no retry storm
    assert drive.event_grid(stack, as_cloud_events(payload("run-forged.eventgrid.json")), cloud=True).status == 202
    assert drive.alert(stack, payload("alert-forged.json")).status == 403
    drive.wait_quiet(stack)

    assert world.writes(start) == []
    security = [line for line in app_lines(stack) if "security:" in line]
    assert len(security) == 3 and all(line.startswith("WARNING autopilot.intake: security: rejected forged") for line in security)
    assert sum("99999999-9999-9999-9999-999999999999" in line for line in security) == 3, "each names the foreign source"
    assert "Functions.worker" not in stack.host.logs(), "no work was queued"


UNHANDLED = [  # (case, event, as a CloudEvent, what the one log line says)
    ("unknown event type", {"id": "u1", "topic": TOPIC, "subject": "blobServices/default/containers/x",
                            "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-26T09:00:00Z", "data": {}},
     False, "unknown event type 'Microsoft.Storage.BlobCreated'"),
    ("unknown Azure ML event type", {"id": "u2", "topic": TOPIC, "subject": "x", "eventType": "Microsoft.MachineLearningServices.SomethingNew",
                                     "eventTime": "2026-11-26T09:00:00Z", "data": {}},
     False, "unknown Azure ML event type"),
    ("CloudEvents version", {"specversion": "0.3", "id": "m1", "source": TOPIC, "type": "Microsoft.MachineLearningServices.RunStatusChanged",
                             "subject": "experiments/x/runs/r1", "data": {"runStatus": "Failed"}},
     True, "unsupported CloudEvents specversion '0.3'"),
    ("data not JSON", {"id": "m2", "topic": TOPIC, "subject": "experiments/x/runs/r1", "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
                       "eventTime": "2026-11-26T09:00:00Z", "data": "{not json"},
     False, "event data (a string) is not JSON"),
    ("no run id", {"id": "m3", "topic": TOPIC, "subject": "experiments/x/runs/", "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
                   "eventTime": "2026-11-26T09:00:00Z", "data": {"runStatus": "Failed"}},
     False, "without runId"),
]


def test_unknown_and_malformed_events_are_acknowledged_with_one_clear_log_line_and_no_work(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    for case, event, cloud, says in UNHANDLED:
        logged = log_size(stack)
        assert drive.event_grid(stack, [copy.deepcopy(event)], cloud=cloud).status == 202, case
        lines = app_lines(stack, logged)
        assert len(lines) == 1 and says in lines[0] and "autopilot.intake: " in lines[0], (case, lines)
    drive.wait_quiet(stack)
    assert world.writes(start) == []
    assert "Functions.worker" not in stack.host.logs(), "no work was queued"


def test_a_run_whose_compute_no_longer_exists_is_skipped_with_the_reason(world: World, app):
    assert world.emulator.control("DELETE", f"arm/computes?id={WS.id}/computes/cpu-cluster") == {"deleted": True}
    stack = app(mode="enforce")
    start = world.mark()
    assert drive.event_grid(stack, failed_run_event()).status == 202
    drive.wait_quiet(stack)

    assert world.writes(start) == []
    (summary,) = [line for line in app_lines(stack) if "autopilot.worker: " in line]
    assert summary == ("INFO autopilot.worker: run-ended mlw-demo: no actions: "
                       "run etl-nightly-0412 ran on cpu-cluster, which no longer exists: skipped, already gone")


def test_a_model_deploy_failed_alert_tells_each_failed_deployment_why_and_the_deployment_sweep_timer_deletes_the_one_without_traffic(
        world: World, app):
    world.emulator.lro(polls=0)
    stack = app(mode="enforce", FAILED_DEPLOYMENT_GRACE_MINUTES="0")
    start = world.mark()
    answer = drive.alert(stack, payload("alert-model-deploy-failed.json"))
    assert answer.status == 202 and "model deploy failed" in answer.json()["message"]
    drive.wait_quiet(stack)
    assert world.writes(start) == []  # told, marked in the ledger; nothing changed in Azure yet
    rows = world.ledger().history(datetime.now(UTC) - timedelta(minutes=5))
    told = {r["Target"]: r["Reason"] for r in rows if r["Action"] == "mark-failed-deployment"}
    assert set(told) == {f"{e}/deployments/{d}" for e, d in
                         (("churn-api", "green"), ("fraud-api", "v2"), ("scoring-api", "canary"), ("edge-api", "blue"))}
    assert all("status code InternalServerError" in reason for reason in told.values())

    swept = world.mark()
    assert drive.timer(stack, "deployment_sweep").status == 202
    drive.wait_quiet(stack)
    assert [(w["method"], w["path"]) for w in world.writes(swept)] == \
        [("DELETE", WS.path("onlineEndpoints", "scoring-api", "deployments", "canary"))]


def test_a_not_responding_run_event_and_the_not_responding_runs_alert_are_told_and_change_nothing(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    assert drive.event_grid(stack, payload("run-not-responding.eventgrid.json")).status == 202
    assert drive.alert(stack, payload("alert-not-responding-runs.json")).status == 202
    drive.wait_quiet(stack)
    assert world.writes(start) == []
    rows = world.ledger().history(datetime.now(UTC) - timedelta(minutes=5))
    notices = [r for r in rows if r["Action"] == "notify" and r["Target"] == "score-serverless-0107"]
    assert len(notices) == 2 and all("https://ml.azure.com/runs/score-serverless-0107?wsid=" in r["Reason"] for r in notices)


def test_a_failed_runs_alert_sweeps_the_clusters_of_its_workspace(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    assert drive.alert(stack, payload("alert-failed-runs.json")).status == 202
    drive.wait_quiet(stack)
    assert sorted(writes_by_compute(world, start)) == [("PATCH", "cpu-cluster")]  # idle for 3h at min 2: scaled to min 0

"""Hostile input through the real entry points (dev host, Azurite, emulator): acknowledged, one line, no write.

A payload naming a cluster with `../` or a query suffix, a recursion bomb, a forged or malformed queue
message: each is answered without a 5xx, changes nothing in Azure, and the queue keeps what it cannot use.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

from local import drive
from local.stack import Stack
from tests.e2e.conftest import WS, World

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
OTHER_WS = WS.id.replace("mlw-demo", "mlw-prod")


def alert(cluster: str) -> dict[str, Any]:
    payload = json.loads((PAYLOADS / "alert-unusable-nodes.json").read_text())
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [{"name": "ClusterName", "value": cluster}]
    return payload


def arm_requests(world: World, since: int) -> list[dict[str, Any]]:
    return [e for e in world.emulator.journal(since) if e["service"] == "arm"]


def queue(stack: Stack, name: str) -> QueueClient:
    return QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], name, message_encode_policy=BinaryBase64EncodePolicy(),
                                              message_decode_policy=BinaryBase64DecodePolicy())


def poisoned(stack: Stack, timeout: float = 20) -> list[bytes]:
    client = queue(stack, stack.env["WORK_QUEUE"] + "-poison")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = [m.content for m in client.receive_messages(visibility_timeout=60)]
        except ResourceNotFoundError:
            found = []
        if found:
            return found
        time.sleep(0.1)
    return []


@pytest.mark.parametrize("cluster", [
    "../../mlw-prod/computes/gpu-cluster",
    "gpu-cluster?api-version=2020-01-01&x=",
    "gpu-cluster/../../../mlw-prod/computes/gpu-cluster",
])
def test_an_alert_naming_a_cluster_outside_its_workspace_is_refused_and_reads_nothing(world: World, app, cluster):
    stack = app(mode="enforce")
    start = world.mark()
    answer = drive.alert(stack, alert(cluster))
    drive.wait_quiet(stack)
    assert answer.status == 403 and "ClusterName" in answer.json()["message"]
    assert arm_requests(world, start) == []


@pytest.mark.parametrize(("body", "reason"), [
    (b"[" * 100_000, "nested deeper"),
    (b"\xff\xfe\xfd", "not UTF-8"),
    (b'{"schemaId": "azureMonitorCommonAlertSchema", "data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "nested deeper"),
])
def test_a_poison_alert_body_gets_one_line_and_a_4xx_never_a_5xx(world: World, app, body, reason):
    stack = app(mode="enforce")
    assert stack.host
    answer = drive._post(f"{stack.host.url}/api/alerts?code={stack.host.function_key}", None, raw=body)
    assert answer.status == 400 and reason in answer.json()["message"]


def test_an_event_with_a_recursion_bomb_in_its_data_is_acknowledged_and_queues_nothing(world: World, app):
    stack = app(mode="enforce")
    event = json.loads((PAYLOADS / "run-failed.eventgrid.json").read_text())[0]
    bomb = copy.deepcopy(event)
    bomb["data"] = "[" * 50_000
    start = world.mark()
    assert drive.event_grid(stack, [bomb]).status == 202
    drive.wait_quiet(stack)
    assert arm_requests(world, start) == []


@pytest.mark.parametrize(("body", "why"), [
    (json.dumps({"kind": "unusable-nodes", "target": OTHER_WS, "trigger": "t", "params": {"cluster": "gpu-cluster"}}).encode(),
     "not in ALLOWED_WORKSPACES"),
    (json.dumps({"kind": "unusable-nodes", "target": WS.id, "trigger": "t", "params": {"cluster": "../../x/computes/y"}}).encode(),
     "parameter cluster"),
    (json.dumps({"kind": "deployment-sweep", "target": OTHER_WS.upper(), "trigger": "t", "params": {}}).encode(),
     "not in ALLOWED_WORKSPACES"),
    (json.dumps({"kind": "not-responding", "target": WS.id.upper(), "trigger": "t", "params": {"run": "x%2F..%2F..%2Fy"}}).encode(),
     "parameter run"),
    (json.dumps({"kind": "deployment-sweep", "target": WS.id, "trigger": "t", "params": {}, "delete": "all"}).encode(),
     "unknown field 'delete'"),
    (b'{"hello": "world"}', "unknown work item kind"),
    (b"\x00\xff binary", "not UTF-8"),
])
def test_a_queue_message_that_is_not_an_allowed_work_item_goes_to_the_poison_queue_intact(world: World, app, body, why):
    stack = app(mode="enforce")
    start = world.mark()
    work = queue(stack, stack.env["WORK_QUEUE"])
    with contextlib.suppress(ResourceExistsError):
        work.create_queue()
    work.send_message(body)
    assert poisoned(stack) == [body]
    drive.wait_quiet(stack)
    assert arm_requests(world, start) == []
    assert stack.host and why in stack.host.logs()


@pytest.mark.parametrize("when", ["not-a-date", 12345, ["x"], "2026-11-26", "2026-11-26T09:00:00+02:00", None])
def test_an_event_time_no_converter_can_parse_never_makes_the_delivery_fail(world: World, app, when):
    stack = app(mode="observe")
    (event,) = json.loads((PAYLOADS / "run-failed.eventgrid.json").read_text())[:1]
    odd = copy.deepcopy(event)
    odd["id"], odd["eventTime"] = "odd-time-1", when
    cloud = {"specversion": "1.0", "id": "odd-ce-1", "source": WS.id, "type": event["eventType"], "subject": event["subject"],
             "time": when, "self": "an extension attribute the converter cannot take", "data": event["data"]}
    assert drive.event_grid(stack, [event, odd]).status == 202
    assert drive.event_grid(stack, [cloud], cloud=True).status == 202
    drive.wait_quiet(stack)
    assert stack.host and "Executed 'Functions.on_event' (Failed" not in stack.host.logs()


def test_the_app_says_its_settings_once_at_start_and_a_bad_one_does_not_stop_indexing(world: World, app):
    good = app(mode="enforce")
    assert good.host and "settings: valid; mode enforce, 1 workspace(s), 1 vault(s)" in good.host.logs()
    bad = app(mode="enforce", AUTOPILOT_MODE="enforced")
    assert bad.host and "settings: AUTOPILOT_MODE: expected one of observe, enforce; got 'enforced'" in bad.host.logs()
    assert bad.host.errors == {}, "every function still indexes"

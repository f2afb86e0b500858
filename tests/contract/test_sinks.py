"""Contract: the notification receivers — an Event Grid custom topic as
``EventGridPublisherClient(endpoint, AzureKeyCredential(key))`` publishes to it, and plain webhooks.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

TOPIC = "autopilot-events"
KEY = "c2lua2Uta2V5LWZvci1jb250cmFjdC10ZXN0cw=="
SCENARIO: dict[str, Any] = {
    "sinks": {"eventgridTopics": {TOPIC: KEY, "strict-topic": {"key": KEY, "inputSchema": "CloudEventSchemaV1_0"}}}
}


@pytest.fixture(autouse=True)
def _seeded(emulator: Any) -> None:
    emulator.reset(SCENARIO)


def _publisher(emulator: Any, key: str, topic: str = TOPIC) -> EventGridPublisherClient:
    return EventGridPublisherClient(
        f"{emulator.url}/_sinks/eventgrid/{topic}/api/events", AzureKeyCredential(key), connection_verify=emulator.ca
    )


def _sink_calls(emulator: Any) -> list[dict[str, Any]]:
    return [e for e in emulator.journal() if e["service"] == "sinks"]


def test_cloud_events_published_with_the_topic_key_are_recorded(emulator: Any) -> None:
    events = [
        CloudEvent(source="/aml-autopilot/mlw-demo", type="AmlAutopilot.ComputeStopped", data={"compute": "ci-alice"}),
        CloudEvent(source="/aml-autopilot/mlw-demo", type="AmlAutopilot.SecretRotated", data={"secret": "stmldemo-key"}),
    ]

    _publisher(emulator, KEY).send(events)

    received = emulator.state()["sinks"]["eventgrid"][TOPIC]
    assert [r["event"]["type"] for r in received] == ["AmlAutopilot.ComputeStopped", "AmlAutopilot.SecretRotated"]
    assert [r["event"]["id"] for r in received] == [e.id for e in events]
    assert received[0]["event"]["specversion"] == "1.0" and received[0]["schema"] == "CloudEventSchemaV1_0"
    assert received[0]["event"]["data"] == {"compute": "ci-alice"}
    [call] = _sink_calls(emulator)
    assert (call["method"], call["path"], call["status"]) == ("POST", f"/_sinks/eventgrid/{TOPIC}/api/events", 200)
    assert call["query"]["api-version"] == "2018-01-01"


def test_a_wrong_key_is_refused_and_nothing_is_stored(emulator: Any) -> None:
    with pytest.raises(ClientAuthenticationError) as caught:
        _publisher(emulator, "not-the-key").send(CloudEvent(source="/x", type="AmlAutopilot.Test", data={}))

    assert caught.value.status_code == 401
    assert emulator.state()["sinks"]["eventgrid"][TOPIC] == []
    assert [c["status"] for c in _sink_calls(emulator)] == [401]


def test_event_grid_schema_events_get_the_topic_stamped(emulator: Any) -> None:
    event = EventGridEvent(subject="computes/ci-alice", event_type="AmlAutopilot.ComputeStopped", data={"a": 1}, data_version="1")

    _publisher(emulator, KEY).send([event])

    [record] = emulator.state()["sinks"]["eventgrid"][TOPIC]
    assert record["schema"] == "EventGridSchema"
    assert (record["event"]["id"], record["event"]["topic"]) == (str(event.id), f"/_sinks/eventgrid/{TOPIC}")


def test_a_cloud_events_topic_refuses_event_grid_schema(emulator: Any) -> None:
    event = EventGridEvent(subject="s", event_type="AmlAutopilot.Test", data={}, data_version="1")

    with pytest.raises(HttpResponseError) as caught:
        _publisher(emulator, KEY, "strict-topic").send([event])

    assert caught.value.status_code == 400
    assert emulator.state()["sinks"]["eventgrid"]["strict-topic"] == []


def test_webhooks_record_json_and_refuse_other_bodies(emulator: Any) -> None:
    url = f"{emulator.url}/_sinks/webhook/teams"

    ok = requests.post(url, json={"text": "stopped ci-alice: idle 3h12m"}, verify=emulator.ca, timeout=10)
    bad = requests.post(url, data="not json", headers={"Content-Type": "text/plain"}, verify=emulator.ca, timeout=10)

    assert (ok.status_code, ok.json()) == (200, {"received": 1})
    assert bad.status_code == 400
    [call] = emulator.state()["sinks"]["webhooks"]["teams"]
    assert call["body"] == {"text": "stopped ci-alice: idle 3h12m"}
    assert [c["status"] for c in _sink_calls(emulator)] == [200, 400]

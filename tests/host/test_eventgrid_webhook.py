"""The Event Grid webhook checks keys like the Functions host, answers like the Event Grid extension
and feeds the library's converter."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

from local.host.server import HostHandle
from tests.host.conftest import EVENTGRID_KEY, FUNCTION_KEY, MASTER_KEY, QueueReader

pytestmark = pytest.mark.stack
NOTIFY = {"aeg-event-type": "Notification"}
VALIDATE = {"aeg-event-type": "SubscriptionValidation"}


def webhook(host: HostHandle, name: str = "eg_handler", code: str | None = EVENTGRID_KEY) -> str:
    """The URL an Event Grid subscription posts to: the function's name and the system key as `code`."""
    return f"{host.url}/runtime/webhooks/eventgrid?functionName={name}" + (f"&code={code}" if code is not None else "")


def eg_event(subject: str = "experiments/1/runs/r1", **extra: object) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w",
        "subject": subject,
        "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "eventTime": "2024-05-01T10:00:00.1234567Z",
        "data": {"runStatus": "Failed"},
        "dataVersion": "2",
        **extra,
    }


def cloud_event(subject: str = "experiments/1/runs/r1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w",
        "type": "Microsoft.MachineLearningServices.RunStatusChanged",
        "subject": subject,
        "time": "2024-05-01T10:00:00Z",
        "data": {"runStatus": "Failed"},
    }


def records_for(queues: QueueReader, ids: list[str], expected: int | None = None) -> list[dict[str, Any]]:
    count = len(ids) if expected is None else expected
    return queues.collect("eg-out", lambda r: isinstance(r, dict) and r.get("id") in ids, count, timeout=5)


def validation_event(code: str = "512d38b6-c7b8") -> dict[str, Any]:
    return eg_event(eventType="Microsoft.EventGrid.SubscriptionValidationEvent", data={"validationCode": code})


def invocations(host: HostHandle) -> int:
    return host.logs().count("Executed 'Functions.eg_handler'")


def deliver(host: HostHandle, queues: QueueReader, **key: str) -> tuple[int, bool]:
    """One notification carrying a key as `code=` (query) or `header=` (x-functions-key): its status, and whether it ran."""
    event = eg_event()
    before = invocations(host)
    headers = {**NOTIFY, **({"x-functions-key": key["header"]} if "header" in key else {})}
    response = requests.post(webhook(host, code=key.get("code")), json=[event], headers=headers, timeout=10)
    # A delivery's invocations finish before its answer: had it run, its output would be there already.
    output = records_for(queues, [str(event["id"])], expected=1 if response.status_code == 202 else 0)
    return response.status_code, bool(output) or invocations(host) != before


def test_an_event_grid_delivery_without_a_key_is_401_and_invokes_nothing(host: HostHandle, queues: QueueReader) -> None:
    assert deliver(host, queues) == (401, False)


@pytest.mark.parametrize("where", ["code", "header"])
def test_an_event_grid_delivery_with_a_wrong_key_is_401_and_invokes_nothing(host: HostHandle, queues: QueueReader, where: str) -> None:
    assert deliver(host, queues, **{where: "wrong"}) == (401, False)


@pytest.mark.parametrize("where", ["code", "header"])
def test_the_eventgrid_extension_key_is_accepted_as_the_code_query_or_the_header(host: HostHandle, queues: QueueReader, where: str) -> None:
    assert deliver(host, queues, **{where: EVENTGRID_KEY}) == (202, True)


@pytest.mark.parametrize("where", ["code", "header"])
def test_the_master_key_is_accepted_on_the_event_grid_webhook(host: HostHandle, queues: QueueReader, where: str) -> None:
    assert deliver(host, queues, **{where: MASTER_KEY}) == (202, True)


@pytest.mark.parametrize("where", ["code", "header"])
def test_a_function_key_is_not_accepted_on_the_event_grid_webhook(host: HostHandle, queues: QueueReader, where: str) -> None:
    assert deliver(host, queues, **{where: FUNCTION_KEY}) == (401, False)


@pytest.mark.parametrize("code", [None, "wrong", FUNCTION_KEY], ids=["no-key", "wrong-key", "function-key"])
def test_the_subscription_validation_handshake_needs_the_key_too(host: HostHandle, code: str | None) -> None:
    handshake = requests.post(webhook(host, code=code), json=[validation_event()], headers=VALIDATE, timeout=10)
    assert handshake.status_code == 401
    assert "validationResponse" not in handshake.text


def test_the_cloudevents_abuse_protection_request_needs_the_key_too(host: HostHandle) -> None:
    response = requests.options(webhook(host, code=None), headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert response.status_code == 401
    assert "WebHook-Allowed-Origin" not in response.headers


def test_the_key_is_checked_before_the_function_name(host: HostHandle) -> None:
    assert requests.post(webhook(host, "nope", code=None), json=[eg_event()], headers=NOTIFY, timeout=10).status_code == 401


def test_event_grid_subscription_validation_answers_the_code_without_invoking(host: HostHandle, queues: QueueReader) -> None:
    event = validation_event()
    response = requests.post(webhook(host), json=[event], headers=VALIDATE, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8"}
    assert records_for(queues, [str(event["id"])], expected=0) == []


def test_cloudevents_abuse_protection_options_allows_the_event_grid_origin(host: HostHandle) -> None:
    response = requests.options(webhook(host), headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    # The extension sends no allowed rate, and answers an unknown origin with the public cloud's.
    assert "WebHook-Allowed-Rate" not in response.headers
    other = requests.options(webhook(host), headers={"WebHook-Request-Origin": "evil.example"}, timeout=10)
    assert other.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_a_batch_of_three_event_grid_events_is_three_invocations(host: HostHandle, queues: QueueReader) -> None:
    events = [eg_event() for _ in range(3)]
    response = requests.post(webhook(host), json=events, headers=NOTIFY, timeout=10)
    assert response.status_code == 202
    records = records_for(queues, [str(e["id"]) for e in events])
    assert sorted(r["id"] for r in records) == sorted(str(e["id"]) for e in events)
    assert {r["kind"] for r in records} == {"EventGridEvent"}
    assert records[0]["type"] == "Microsoft.MachineLearningServices.RunStatusChanged"
    assert records[0]["data"] == {"runStatus": "Failed"}


def test_one_raising_invocation_makes_the_batch_500_and_the_others_still_run(host: HostHandle, queues: QueueReader) -> None:
    good, bad = eg_event(), eg_event(subject="boom")
    response = requests.post(webhook(host), json=[good, bad], headers=NOTIFY, timeout=10)
    assert response.status_code == 500
    assert [r["id"] for r in records_for(queues, [str(good["id"]), str(bad["id"])], expected=1)] == [good["id"]]
    assert requests.get(f"{host.url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}, timeout=5).json()["state"] == "Running"


def test_a_structured_cloudevent_arrives_as_func_cloudevent(host: HostHandle, queues: QueueReader) -> None:
    event = cloud_event()
    response = requests.post(
        webhook(host),
        data=json.dumps(event),
        headers={**NOTIFY, "Content-Type": "application/cloudevents+json; charset=utf-8"},
        timeout=10,
    )
    assert response.status_code == 202
    [record] = records_for(queues, [str(event["id"])])
    assert record["kind"] == "CloudEvent"
    assert record["type"] == "Microsoft.MachineLearningServices.RunStatusChanged"
    assert record["subject"] == "experiments/1/runs/r1"


def test_a_cloudevents_batch_is_one_invocation_per_event(host: HostHandle, queues: QueueReader) -> None:
    events = [cloud_event(), cloud_event()]
    response = requests.post(
        webhook(host),
        data=json.dumps(events),
        headers={**NOTIFY, "Content-Type": "application/cloudevents-batch+json; charset=utf-8"},
        timeout=10,
    )
    assert response.status_code == 202
    assert {r["kind"] for r in records_for(queues, [str(e["id"]) for e in events])} == {"CloudEvent"}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", NOTIFY),
        (b'"a string"', NOTIFY),
        (json.dumps([1, 2]).encode(), NOTIFY),
        (b"[" * 100_000, NOTIFY),
        (json.dumps([{"id": "1", "eventType": "T", "subject": "s", "eventTime": "2024-01-01T00:00:00Z"}]).encode(), {}),
    ],
    ids=["malformed-json", "json-string", "not-objects", "recursion-bomb", "missing-aeg-event-type"],
)
def test_bad_deliveries_are_400(host: HostHandle, body: bytes, headers: dict[str, str]) -> None:
    response = requests.post(webhook(host), data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400


@pytest.mark.parametrize("url_suffix", ["?functionName=nope&", "?", "?functionName=work&"], ids=["unknown", "missing", "not-event-grid"])
def test_unknown_function_is_404(host: HostHandle, url_suffix: str) -> None:
    url = f"{host.url}/runtime/webhooks/eventgrid{url_suffix}code={EVENTGRID_KEY}"
    response = requests.post(url, json=[eg_event()], headers=NOTIFY, timeout=10)
    assert response.status_code == 404


def test_the_publisher_sdk_delivers_over_http_but_treats_202_as_an_error(host: HostHandle, queues: QueueReader) -> None:
    client = EventGridPublisherClient(webhook(host, code=None), AzureKeyCredential("x"))
    grid = EventGridEvent(subject="experiments/2/runs/r2", event_type="Custom.Type", data={"n": 1}, data_version="1.0")
    cloud = CloudEvent(source="/test", type="Custom.Cloud", data={"n": 2}, subject="s")
    for batch in ([grid], [cloud]):
        # Event Grid always sends aeg-event-type and the key; the SDK is a publisher, so the test adds them.
        with pytest.raises(HttpResponseError) as raised:
            client.send(batch, headers={**NOTIFY, "x-functions-key": EVENTGRID_KEY})
        # The SDK only accepts 200 (a topic's answer); the Functions webhook answers 202.
        assert raised.value.status_code == 202
    # The legacy EventGridEvent model keeps its id as a uuid.UUID.
    records = records_for(queues, [str(grid.id), str(cloud.id)])
    assert {r["kind"]: r["type"] for r in records} == {"EventGridEvent": "Custom.Type", "CloudEvent": "Custom.Cloud"}


def test_an_event_lacking_fields_is_invoked_like_the_rest_of_its_batch_so_it_costs_them_nothing(host: HostHandle) -> None:
    good = {"id": "batch-good-1", "eventType": "T", "subject": "s", "eventTime": "2024-01-01T00:00:00Z", "data": {}, "dataVersion": "1"}
    lacking = {"eventType": "T", "data": {}}
    response = requests.post(webhook(host), data=json.dumps([good, lacking]),
                             headers={**NOTIFY, "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 202

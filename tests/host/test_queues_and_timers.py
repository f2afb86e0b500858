"""Queue triggers against Azurite (retries, poison) and timers firing with --timers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from tests.host.conftest import TIMER_HOST_ID, QueueReader, Stack

pytestmark = pytest.mark.stack


def test_a_base64_message_is_processed_and_deleted(stack: Stack) -> None:
    queues = stack.queues
    body = f"job-{uuid.uuid4()}"
    queues.send("work-items", body)
    [record] = queues.collect("work-out", lambda r: r.get("body") == body, 1)
    assert record["dequeue_count"] == 1
    assert record["id"] and record["has_pop_receipt"]
    assert dt.datetime.fromisoformat(record["insertion_time"]).tzinfo is not None
    assert queues.count("work-items") == 0


def test_an_http_queue_output_feeds_the_queue_trigger(stack: Stack) -> None:
    body = f"chained-{uuid.uuid4()}"
    assert requests.post(f"{stack.host.url}/api/enqueue", data=body, timeout=10).status_code == 202
    assert stack.queues.collect("work-out", lambda r: r.get("body") == body, 1)


def test_a_failing_message_goes_to_poison_after_max_dequeue_count(stack: Stack) -> None:
    queues = stack.queues
    queues.drain("work-items-poison")
    failures_before = stack.host.logs().count("Executed 'Functions.work' (Failed")
    queues.send("work-items", "poison")
    poisoned = queues.collect("work-items-poison", lambda r: r == "poison", 1, timeout=15)
    assert poisoned == ["poison"]
    assert queues.count("work-items") == 0
    # maxDequeueCount is 2 in the fixture's host.json: two failed invocations, then the move.
    assert stack.host.logs().count("Executed 'Functions.work' (Failed") - failures_before == 2
    assert "Message has reached MaxDequeueCount of 2. Moving message to queue 'work-items-poison'." in stack.host.logs()


def test_a_message_that_is_not_base64_is_poisoned_without_an_invocation(stack: Stack) -> None:
    queues = stack.queues
    queues.drain("work-items-poison")
    invocations_before = stack.host.logs().count("Executed 'Functions.work'")
    raw = "not base64 at all!"
    queues.send("work-items", raw, encode=False)
    client = queues.service.get_queue_client("work-items-poison")
    deadline = time.monotonic() + 10
    contents: list[str] = []
    while not contents and time.monotonic() < deadline:
        try:
            contents = [m.content for m in client.receive_messages(visibility_timeout=30)]
        except ResourceNotFoundError:
            time.sleep(0.1)
    assert contents == [raw]
    assert stack.host.logs().count("Executed 'Functions.work'") == invocations_before


def _timer_records(queues: QueueReader, function: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    return queues.collect("timer-scheduled", lambda r: r.get("function") == function, count, timeout=timeout)


def test_timers_fire_on_schedule_and_a_missed_monitored_occurrence_runs_past_due(stack: Stack) -> None:
    queues = stack.queues
    records = queues.collect("timer-scheduled", lambda r: isinstance(r, dict), 1, timeout=1)
    # run_on_startup fires once at start, not past due; the seeded missed 03:00 run is past due.
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while dt.datetime.now() < deadline:
        names = [r["function"] for r in records]
        if "on_startup" in names and "nightly" in names and names.count("tick") >= 2:
            break
        records += queues.collect("timer-scheduled", lambda r: isinstance(r, dict), 1, timeout=1)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_name.setdefault(str(record["function"]), []).append(record)
    assert [r["past_due"] for r in by_name["on_startup"]] == [False]
    [nightly] = by_name["nightly"]
    assert nightly["past_due"] is True
    assert isinstance(nightly["schedule_status"], dict)
    assert dt.datetime.fromisoformat(str(nightly["schedule_status"]["Next"])) == stack.seeded_next
    # The sub-minute tick schedule is never monitored: no ScheduleStatus, never past due.
    assert len(by_name["tick"]) >= 2
    assert all(r["past_due"] is False and r["schedule_status"] == {} for r in by_name["tick"])
    # After the past-due run the status blob moved on to the next 03:00.
    container = BlobServiceClient.from_connection_string(stack.storage).get_container_client("azure-webjobs-hosts")
    status = json.loads(container.download_blob(f"timers/{TIMER_HOST_ID}/Host.Functions.nightly/status").readall())
    upcoming = dt.datetime.fromisoformat(status["Next"])
    assert upcoming > dt.datetime.now(dt.UTC)
    assert (upcoming.hour, upcoming.minute, upcoming.second) == (3, 0, 0)


def test_without_timers_the_host_does_not_fire_schedules(stack: Stack) -> None:
    deadline = time.monotonic() + 5
    while "Reason=Timer" not in stack.timer_host.logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Reason=Timer" not in stack.host.logs()
    assert "Reason=RunOnStartup" not in stack.host.logs()
    assert "Reason=Timer" in stack.timer_host.logs()


def test_output_messages_are_base64_like_the_real_host(stack: Stack) -> None:
    body = f"b64-{uuid.uuid4()}"
    requests.post(f"{stack.host.url}/admin/functions/work", json={"input": body}, headers={"x-functions-key": "test-master-key"}, timeout=10)
    client = stack.queues.service.get_queue_client("work-out")
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while dt.datetime.now() < deadline:
        for message in client.receive_messages(visibility_timeout=30):
            decoded = json.loads(base64.b64decode(message.content, validate=True))
            client.delete_message(message)
            if decoded.get("body") == body:
                return
    pytest.fail("the output message never arrived")

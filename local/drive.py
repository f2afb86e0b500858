"""Drive the running app through its real URLs, as Event Grid, an action group or an operator would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from azure.storage.queue import QueueClient

from local.stack import Stack


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _post(url: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Answer:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.read().decode())


def event_grid(stack: Stack, events: Any, *, cloud: bool = False, function: str = "on_event") -> Answer:
    """Deliver events the way an Event Grid subscription does (Event Grid schema, or CloudEvents 1.0; system key in `code`)."""
    assert stack.host
    headers = {"aeg-event-type": "Notification"}
    if cloud:
        headers["Content-Type"] = "application/cloudevents-batch+json; charset=utf-8" if isinstance(events, list) \
            else "application/cloudevents+json; charset=utf-8"
    query = urllib.parse.urlencode({"functionName": function, "code": stack.host.eventgrid_extension_key})
    return _post(f"{stack.host.url}/runtime/webhooks/eventgrid?{query}", events, headers)


def alert(stack: Stack, payload: Any, key: str | None = None) -> Answer:
    """Deliver a common-alert-schema payload the way an action group webhook does (function key in `code`)."""
    assert stack.host
    code = stack.host.function_key if key is None else key
    return _post(f"{stack.host.url}/api/alerts?code={code}", payload)


def timer(stack: Stack, name: str) -> Answer:
    """Run a timer function now through the admin API (master key)."""
    assert stack.host
    return _post(f"{stack.host.url}/admin/functions/{name}", {"input": ""}, {"x-functions-key": stack.host.master_key})


def work_queue(stack: Stack) -> QueueClient:
    return QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], stack.env.get("WORK_QUEUE", "autopilot-work"))


def active_invocations(stack: Stack) -> int:
    assert stack.host
    request = urllib.request.Request(f"{stack.host.url}/admin/host/status", headers={"x-functions-key": stack.host.master_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read()).get("activeInvocations", 0))


def wait_quiet(stack: Stack, *, settle: float = 0.5, timeout: float = 60.0) -> None:
    """Wait until the work queue is empty and no function is running, and it stays so for `settle` seconds."""
    assert stack.host
    queue = work_queue(stack)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            pending = queue.get_queue_properties().approximate_message_count
        except Exception:  # the queue does not exist before the first message
            pending = 0
        if pending or active_invocations(stack):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the app did not go quiet within {timeout}s; see {stack.host.log_path}")

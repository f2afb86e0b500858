"""Session stack for the dev-host tests: one Azurite and two hosts of the fixture app, as subprocesses.

- `host`: the fixture app without timers; the tests' HTTP, Event Grid, admin and queue target.
- `timer_host`: the same app with `--timers`, writing timer records to `timer-scheduled` and
  listening on its own work queue (environment values win over the settings file). Before it
  starts, the `nightly` timer's status blob is seeded with a missed occurrence, so it must run
  past due at start-up.
Results are read back from Azurite queues; output messages are base64 text, as the host writes them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from local import azurite
from local.host import server

FIXTURE_APP = Path(__file__).parent / "fixture_app"
MASTER_KEY = "test-master-key"
FUNCTION_KEY = "test-function-key"
EVENTGRID_KEY = "test-eventgrid-extension-key"
TIMER_HOST_ID = "fixture-timers"


class QueueReader:
    """Write and read Azurite queues the way the host encodes messages (base64)."""

    def __init__(self, connection_string: str) -> None:
        self.service = QueueServiceClient.from_connection_string(connection_string)

    def send(self, queue: str, text: str, *, encode: bool = True) -> None:
        client = self.service.get_queue_client(queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(base64.b64encode(text.encode()).decode() if encode else text)

    def drain(self, queue: str) -> list[str]:
        """Every message currently visible, decoded and deleted."""
        client = self.service.get_queue_client(queue)
        found: list[str] = []
        try:
            for message in client.receive_messages(messages_per_page=32, visibility_timeout=30):
                found.append(base64.b64decode(message.content).decode())
                client.delete_message(message)
        except ResourceNotFoundError:
            return []
        return found

    def collect(self, queue: str, match: Callable[[Any], bool], count: int, timeout: float = 10.0) -> list[Any]:
        """JSON records matching `match`, waiting until `count` arrived; others are discarded."""
        deadline = time.monotonic() + timeout
        records: list[Any] = []
        while True:
            for text in self.drain(queue):
                try:
                    record = json.loads(text)
                except ValueError:
                    record = text
                if match(record):
                    records.append(record)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    def count(self, queue: str) -> int:
        try:
            return int(self.service.get_queue_client(queue).get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0


@dataclass
class Stack:
    storage: str
    host: server.HostHandle
    timer_host: server.HostHandle
    queues: QueueReader
    seeded_next: dt.datetime


def _seed_nightly_status(connection_string: str) -> dt.datetime:
    """A status blob saying `nightly` last ran two days ago at 03:00, so its Next is already past."""
    now = dt.datetime.now(dt.UTC)
    last = (now - dt.timedelta(days=2)).replace(hour=3, minute=0, second=0, microsecond=0)
    nxt = last + dt.timedelta(days=1)
    container = BlobServiceClient.from_connection_string(connection_string).get_container_client("azure-webjobs-hosts")
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    status = {"Last": last.isoformat(), "Next": nxt.isoformat(), "LastUpdated": last.isoformat()}
    container.upload_blob(f"timers/{TIMER_HOST_ID}/Host.Functions.nightly/status", json.dumps(status), overwrite=True)
    return nxt


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    storage = azurite.start(tmp_path_factory.mktemp("azurite"))
    logs = tmp_path_factory.mktemp("host-logs")
    connection = storage.connection_string
    seeded_next = _seed_nightly_status(connection)
    common = {
        "AzureWebJobsStorage": connection,
        "FUNCTIONS_MASTER_KEY": MASTER_KEY,
        "FUNCTIONS_DEFAULT_KEY": FUNCTION_KEY,
        "FUNCTIONS_EVENTGRID_EXTENSION_KEY": EVENTGRID_KEY,
    }
    started: dict[str, server.HostHandle] = {}
    failures: list[BaseException] = []

    def launch(key: str, **kwargs: Any) -> None:
        try:
            started[key] = server.start(FIXTURE_APP, log_path=logs / f"{key}.log", **kwargs)
        except BaseException as exc:
            failures.append(exc)

    # Both hosts start in parallel: each spends most of its start-up importing the SDKs.
    threads = [
        threading.Thread(target=launch, args=("host",), kwargs={"env": {**common, "AzureFunctionsWebHost__hostid": "fixture-main"}}),
        threading.Thread(
            target=launch,
            args=("timer_host",),
            kwargs={
                "timers": True,
                "env": {
                    **common,
                    "AzureFunctionsWebHost__hostid": TIMER_HOST_ID,
                    "TIMER_OUT_QUEUE": "timer-scheduled",
                    "WORK_QUEUE": "work-timers",
                },
            },
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        if failures:
            raise failures[0]
        yield Stack(connection, started["host"], started["timer_host"], QueueReader(connection), seeded_next)
    finally:
        for handle in started.values():
            handle.stop()
        storage.stop()


@pytest.fixture
def host(stack: Stack) -> server.HostHandle:
    return stack.host


@pytest.fixture
def queues(stack: Stack) -> QueueReader:
    return stack.queues

"""Storage queues (Azurite or a real account) through azure-storage-queue, as the queue extension uses them.

Rules:
- One QueueServiceClient per connection string. No SDK encode/decode policy is installed: the
  extension's message encoding is applied here, so undecodable messages can be recognised.
- `messageEncoding` "base64" (the default): a message written is the base64 of its UTF-8 text (or
  of its bytes); "none": the text itself.
- Writing to a queue creates it when it does not exist (AddMessageAndCreateIfNotExists).
- A write to a queue wakes the in-process listener of that queue at once, as the extension's
  shared queue watcher does, instead of waiting for the next poll.
- Storage calls retry twice, half a second apart, and connect within 5 s: the SDK's default
  (15 s back-off) would hide a stopped emulator behind minutes of silence.
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.queue import LinearRetry, QueueClient, QueueServiceClient
from requests.adapters import HTTPAdapter


def client_options() -> dict[str, Any]:
    """Keyword arguments for storage clients: quick retries and timeouts (see the module rules)."""
    return {
        "retry_policy": LinearRetry(backoff=0.5, retry_total=2, random_jitter_range=0),  # type: ignore[arg-type]
        "connection_timeout": 5,
        "read_timeout": 30,
    }


POOL = 64  # connections kept per storage host: the host's deliveries and workers write to queues at once


def _pooled() -> RequestsTransport:
    """A transport whose connection pool holds as many connections as the host uses at once: with the
    default of 10, every further concurrent request opens a connection, then drops it with a warning.
    (The app's clients have their own, ``shared.adapters.azure.pooled_session``: the host imports nothing
    of the app, as the Functions host does not.)"""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=True, connection_timeout=5, read_timeout=30)


def encode_message(message: str | bytes, encoding: str) -> str:
    """The text stored for `message` under the extension's `messageEncoding`."""
    raw = message.encode("utf-8") if isinstance(message, str) else message
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    """The message body; raises ValueError when it is not valid under `encoding`."""
    if encoding == "base64":
        # Convert.FromBase64String ignores white space and rejects anything else invalid.
        return base64.b64decode("".join(content.split()), validate=True)
    return content.encode("utf-8")


class QueueStore:
    """Queue clients by connection string, plus in-process notifications of writes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._services: dict[str, QueueServiceClient] = {}
        self._watchers: dict[tuple[str, str], list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def client(self, connection: str, queue: str) -> QueueClient:
        with self._lock:
            service = self._services.get(connection)
            if service is None:
                service = QueueServiceClient.from_connection_string(connection, transport=_pooled(), **client_options())
                self._services[connection] = service
        return service.get_queue_client(queue)

    def watch(self, connection: str, queue: str, callback: Callable[[], None]) -> None:
        with self._lock:
            self._watchers.setdefault((connection, queue), []).append(callback)

    def notify(self, connection: str, queue: str) -> None:
        with self._lock:
            callbacks = list(self._watchers.get((connection, queue), []))
        for callback in callbacks:
            callback()

    def send_text(self, connection: str, queue: str, text: str) -> None:
        """Store already-encoded text, creating the queue when missing."""
        client = self.client(connection, queue)
        try:
            client.send_message(text)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            client.send_message(text)
        self.notify(connection, queue)

    def send(self, connection: str, queue: str, message: str | bytes) -> None:
        """Write one message as the queue output binding does."""
        self.send_text(connection, queue, encode_message(message, self.encoding))

    def close(self) -> None:
        with self._lock:
            services = list(self._services.values())
            self._services.clear()
        for service in services:
            service.close()

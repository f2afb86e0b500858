"""Queue triggers: polling, retries and poison messages, with the storage queue extension's rules.

Rules:
- A listener checks that the queue exists, then receives up to `batchSize` messages with a
  10-minute visibility timeout, renewed at half-time while the function runs. It keeps fetching
  while fewer than `newBatchThreshold` messages are in flight.
- When a poll finds nothing (or the queue is missing, or storage answers an error) it waits with
  the extension's randomized exponential back-off: from 100 ms, doubling with +-20 % jitter, up
  to `maxPollingInterval`; finding a message resets it. A write by this host to the queue wakes
  the listener at once.
- Bodies are decoded per `messageEncoding` (base64 by default). A message that does not decode
  is moved to the poison queue at once, without an invocation.
- A message whose dequeue count already exceeds `maxDequeueCount` goes to the poison queue
  without an invocation.
- After an invocation: success deletes the message. Failure with dequeue count >=
  `maxDequeueCount` copies the message to `{queue}-poison` (created when missing) and deletes
  it; a lower count makes it visible again after `visibilityTimeout`. A queue without a poison
  queue (its name ends in "-poison" or would be too long) leaves a failed message invisible.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from local.host import bindings
from local.host.index import FunctionEntry
from local.host.invoker import Invoker
from local.host.settings import QueuesOptions, poison_queue_name
from local.host.storage import QueueStore, decode_message

log = logging.getLogger("local.host.queues")

RECEIVE_VISIBILITY = 600  # seconds, the extension's fixed visibility while a message is processed
MINIMUM_POLL = 0.1


class Backoff:
    """The extension's RandomizedExponentialBackoffStrategy (minimum interval is also the delta)."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self._current = 0.0
        self._exponent = 0
        self._rng = rng or random.Random()

    def next_delay(self, found_since_last_delay: bool) -> float:
        if found_since_last_delay:
            self._current = self.minimum
            self._exponent = 1
        elif self._current != self.maximum:
            interval = self.minimum
            if self._exponent > 0:
                interval += self._rng.uniform(0.8, 1.2) * (2.0 ** (self._exponent - 1)) * self.minimum
            if interval < self.maximum:
                self._current = interval
                self._exponent += 1
            else:
                self._current = self.maximum
        return self._current


class _InFlight:
    """A received message whose pop receipt changes on every visibility renewal."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.pop_receipt: str = message.pop_receipt
        self.renew_at = time.monotonic() + RECEIVE_VISIBILITY / 2
        self.lock = threading.Lock()


class QueueListener:
    """Serves one queue-triggered function from its queue."""

    def __init__(self, entry: FunctionEntry, options: QueuesOptions, invoker: Invoker, store: QueueStore) -> None:
        assert entry.queue is not None
        self._entry = entry
        self._target = entry.queue
        self._options = options
        self._invoker = invoker
        self._store = store
        self._client = store.client(entry.queue.connection, entry.queue.queue_name)
        poison = poison_queue_name(entry.queue.queue_name)
        self._poison = store.client(entry.queue.connection, poison) if poison else None
        self._stop = threading.Event()
        self._renew_stop = threading.Event()
        self._wake = threading.Event()
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Condition()
        self._threads = [
            threading.Thread(target=self._poll_loop, name=f"queue-{entry.name}", daemon=True),
            threading.Thread(target=self._renew_loop, name=f"queue-renew-{entry.name}", daemon=True),
        ]
        store.watch(entry.queue.connection, entry.queue.queue_name, self.notify)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def notify(self) -> None:
        """Wake the poller now (a message was just written to this queue)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Stop fetching new messages now (the host signals every listener before waiting on any)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop fetching and wait up to `timeout` for in-flight messages to complete."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
        self._renew_stop.set()
        # A poll blocked in a storage call holds no message; its daemon thread need not be awaited
        # long: one second for all of them, not one each.
        joined = time.monotonic() + 1.0
        for thread in self._threads:
            thread.join(max(0.0, joined - time.monotonic()))

    # --- polling ---------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        backoff = Backoff(MINIMUM_POLL, self._options.max_polling_interval)
        found_since_last_delay = False
        queue_exists = False
        last_error = ""
        while not self._stop.is_set():
            messages: list[Any] = []
            try:
                if not queue_exists:
                    queue_exists = self._queue_exists()
                if queue_exists:
                    messages = list(
                        self._client.receive_messages(
                            messages_per_page=self._options.batch_size,
                            max_messages=self._options.batch_size,
                            visibility_timeout=RECEIVE_VISIBILITY,
                        )
                    )
                if last_error:
                    log.info("polling queue %s works again", self._target.queue_name)
                    last_error = ""
            except AzureError as exc:
                # Any storage error resets the existence check, as in the extension, and backs off.
                queue_exists = False
                # The same failure repeats every poll while storage is down: say it once.
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                level = logging.DEBUG if text == last_error else logging.WARNING
                log.log(level, "polling queue %s failed: %s", self._target.queue_name, text)
                last_error = text
            if messages:
                found_since_last_delay = True
                for message in messages:
                    self._dispatch(message)
                self._wait_for_batch_threshold()
                continue
            delay = backoff.next_delay(found_since_last_delay)
            found_since_last_delay = False
            self._wake.wait(delay)
            self._wake.clear()

    def _queue_exists(self) -> bool:
        try:
            self._client.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    def _wait_for_batch_threshold(self) -> None:
        threshold = self._options.batch_threshold()
        with self._lock:
            while len(self._in_flight) > threshold and not self._stop.is_set():
                self._lock.wait(0.5)

    def _dispatch(self, message: Any) -> None:
        item = _InFlight(message)
        with self._lock:
            self._in_flight[message.id] = item
        threading.Thread(target=self._process, args=(item,), name=f"queue-msg-{self._entry.name}", daemon=True).start()

    # --- one message -----------------------------------------------------------------------

    def _process(self, item: _InFlight) -> None:
        message = item.message
        try:
            if message.dequeue_count > self._options.max_dequeue_count:
                self._to_poison(item)
                return
            try:
                body = decode_message(message.content or "", self._store.encoding)
            except ValueError:
                log.warning(
                    "message %s in queue %s is not valid %s; moving it to the poison queue",
                    message.id,
                    self._target.queue_name,
                    self._store.encoding,
                )
                self._to_poison(item)
                return
            datum, metadata = bindings.queue_datum(
                body,
                message_id=message.id,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                next_visible_time=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            result = self._invoker.invoke(self._entry, datum, metadata, reason=f"New queue message detected on '{self._target.queue_name}'")
            if result.succeeded:
                self._delete(item)
            elif self._poison is not None:
                if message.dequeue_count >= self._options.max_dequeue_count:
                    self._to_poison(item)
                else:
                    self._release(item)
            # Without a poison queue the message stays invisible, which prevents a fast retry loop.
        except Exception:
            log.exception("completing message %s of queue %s failed", message.id, self._target.queue_name)
        finally:
            with self._lock:
                self._in_flight.pop(message.id, None)
                self._lock.notify_all()

    def _delete(self, item: _InFlight) -> None:
        with item.lock:
            try:
                self._client.delete_message(item.message.id, item.pop_receipt)
            except (ResourceNotFoundError, HttpResponseError) as exc:
                # Pop receipt mismatch or the message is already gone: someone else owns it now.
                log.debug("delete of message %s skipped: %s", item.message.id, exc)

    def _release(self, item: _InFlight) -> None:
        with item.lock:
            try:
                self._client.update_message(
                    item.message.id,
                    item.pop_receipt,
                    visibility_timeout=math.ceil(self._options.visibility_timeout),
                )
            except (ResourceNotFoundError, HttpResponseError) as exc:
                log.debug("release of message %s skipped: %s", item.message.id, exc)

    def _to_poison(self, item: _InFlight) -> None:
        if self._poison is None:
            return
        poison_name = self._poison.queue_name
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self._options.max_dequeue_count,
            poison_name,
        )
        # The stored text is copied unchanged: it is the same encoding the poison queue uses.
        self._store.send_text(self._target.connection, poison_name, item.message.content or "")
        self._delete(item)

    # --- visibility renewal ----------------------------------------------------------------

    def _renew_loop(self) -> None:
        while not self._renew_stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                due = [item for item in self._in_flight.values() if item.renew_at <= now]
            for item in due:
                with item.lock:
                    try:
                        updated = self._client.update_message(
                            item.message.id, item.pop_receipt, visibility_timeout=RECEIVE_VISIBILITY
                        )
                        item.pop_receipt = updated.pop_receipt or item.pop_receipt
                    except AzureError as exc:
                        log.warning("renewing visibility of message %s failed: %s", item.message.id, exc)
                    item.renew_at = time.monotonic() + RECEIVE_VISIBILITY / 2

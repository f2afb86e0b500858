"""Running one function invocation, with the worker's threading and the host's timeout and logging.

Rules:
- Synchronous functions run in a thread pool sized like the Python worker's
  (PYTHON_THREADPOOL_THREAD_COUNT, else min(32, cpus + 4)); `async def` functions run on one
  event loop thread, as in the worker.
- The trigger value is decoded, outputs are created, the function is called; only when it
  returns normally are its outputs encoded and written (queue outputs) or handed back (`$return`
  of an HTTP trigger). An exception anywhere, in binding, the call or an output write, fails the
  invocation; it is logged with its traceback and never escapes to the caller.
- host.json `functionTimeout`: an invocation still running when it expires fails with the host's
  message. The real host then restarts the worker; here the abandoned call keeps its thread
  (a Python thread cannot be killed) and an async call is cancelled.
- Every invocation is logged as one line, like the host's:
  `Executed 'Functions.NAME' (Succeeded|Failed, Id=..., Duration=Nms, Reason=...)`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.functions import meta

from local.host import bindings
from local.host.index import RETURN, FunctionEntry
from local.host.storage import QueueStore

log = logging.getLogger("local.host")


class FunctionTimeoutError(TimeoutError):
    """The invocation outlived host.json functionTimeout."""


@dataclass
class InvocationResult:
    """What the caller needs: success, the error, and the `$return` datum of an HTTP trigger."""

    invocation_id: str
    succeeded: bool
    error: BaseException | None = None
    http_return: meta.Datum | None = None


def _format_timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Invoker:
    """Invokes indexed functions; safe to use from many threads."""

    def __init__(self, queues: QueueStore, *, timeout: float | None, threads: int) -> None:
        self._queues = queues
        self._timeout = timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="function")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="function-async", daemon=True)
        self._loop_thread.start()
        self._active = 0
        self._idle = threading.Condition()

    def invoke(
        self,
        entry: FunctionEntry,
        datum: meta.Datum,
        metadata: bindings.Metadata,
        *,
        reason: str,
    ) -> InvocationResult:
        """Run one invocation to completion (or timeout) and return its result; never raises."""
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        with self._idle:
            self._active += 1
        try:
            result = self._run(entry, invocation_id, datum, metadata)
        except BaseException as exc:  # the host must survive anything a function does
            result = InvocationResult(invocation_id, False, exc)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
        duration = (time.monotonic() - started) * 1000
        outcome = "Succeeded" if result.succeeded else "Failed"
        line = f"Executed 'Functions.{entry.name}' ({outcome}, Id={invocation_id}, Duration={duration:.0f}ms, Reason={reason})"
        if result.succeeded:
            log.info(line)
        else:
            error = result.error
            log.error(line, exc_info=(type(error), error, error.__traceback__) if error is not None else None)
        return result

    def _run(self, entry: FunctionEntry, invocation_id: str, datum: meta.Datum, metadata: bindings.Metadata) -> InvocationResult:
        trigger = bindings.decode_generic(datum) if entry.generic_trigger else bindings.decode_trigger(entry.trigger_type, datum, metadata)
        kwargs: dict[str, Any] = {entry.trigger.name: trigger}
        outs: dict[str, bindings.Out[Any]] = {}
        for name in entry.outputs:
            outs[name] = bindings.Out()
            kwargs[name] = outs[name]
        if entry.wants_context:
            kwargs["context"] = bindings.InvocationContext(invocation_id, entry.name, entry.directory)
        future = self._submit(entry, kwargs)
        try:
            value = future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            assert self._timeout is not None
            raise FunctionTimeoutError(
                f"Timeout value of {_format_timespan(self._timeout)} exceeded by function 'Functions.{entry.name}' "
                f"(Id: '{invocation_id}'). Initiating cancellation."
            ) from exc
        http_return: meta.Datum | None = None
        writes: list[tuple[str, meta.Datum]] = []
        for name, out in outs.items():
            produced = out.get()
            if produced is not None:
                writes.append((name, bindings.encode_output(entry.outputs[name].type, produced, entry.out_types.get(name))))
        if entry.return_binding is not None and value is not None:
            datum_out = bindings.encode_output(entry.return_binding.type, value, entry.return_type)
            if entry.return_binding.type == "http":
                http_return = datum_out
            else:
                writes.append((RETURN, datum_out))
        elif value is not None:
            log.warning("function %s returned a value but has no $return binding; the value is ignored", entry.name)
        for name, out_datum in writes:
            target = entry.queue_outputs[name]
            for message in bindings.queue_messages(out_datum):
                self._queues.send(target.connection, target.queue_name, message)
        return InvocationResult(invocation_id, True, None, http_return)

    def _submit(self, entry: FunctionEntry, kwargs: dict[str, Any]) -> concurrent.futures.Future[Any]:
        if entry.is_async:
            return asyncio.run_coroutine_threadsafe(entry.func(**kwargs), self._loop)
        call: Callable[..., Any] = entry.func
        return self._pool.submit(call, **kwargs)

    @property
    def active(self) -> int:
        """How many invocations are running now."""
        with self._idle:
            return self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation is running; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)

"""Function inputs and outputs, built with the azure-functions library's own converters.

Rules (those of the Python worker, which receives trigger data from the host as typed data):
- The trigger value comes from the converter registered for the trigger's binding type
  (`meta.get_binding_registry().get(type).decode(datum, trigger_metadata=...)`), so an
  `EventGridEvent`-annotated parameter receives `func.CloudEvent` for a CloudEvents delivery,
  exactly as the converter decides.
- Trigger data reaches the converter in the shape the host sends: an Event Grid event or a
  CloudEvent as `json`; a timer as the `json` TimerInfo (`Schedule`, `ScheduleStatus`,
  `IsPastDue`); a queue message as `string` (or `bytes` when not UTF-8) with metadata `Id`,
  `DequeueCount`, `InsertionTime`, `ExpirationTime`, `NextVisibleTime`, `PopReceipt` and
  `QueueTrigger`; an HTTP request as an `http` datum.
- Output parameters are `func.Out[T]`. After a successful call each non-None `Out` value, and the
  return value when a `$return` binding exists, is encoded by that binding's converter
  (`encode(value, expected_type=T)`). Nothing is written when the function raised.
- A trigger parameter annotated `str` or `bytes` takes the worker's generic binding instead: the data
  exactly as the host sent it (an Event Grid event as its JSON text), no converter in between.
- A parameter named `context` receives a `func.Context` for the invocation.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions import meta

T = TypeVar("T")
Metadata = dict[str, meta.Datum]


class BindingError(RuntimeError):
    """A value that cannot be converted to or from a binding."""


class Out(func.Out[T]):
    """The worker's `func.Out` implementation: holds the value a function sets."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class _TraceContext(func_abc.TraceContext):
    def __init__(self) -> None:
        # A fresh W3C traceparent per invocation, as the host starts an activity for each one.
        self._parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> func_abc.RpcException:
        return None  # type: ignore[return-value]


class InvocationContext(func.Context):
    """`func.Context` for one invocation."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local()
        self._local.invocation_id = invocation_id
        self._trace = _TraceContext()
        self._retry = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return self._retry


def _string(value: str) -> meta.Datum:
    return meta.Datum(value, "string")


def _json(value: Any) -> meta.Datum:
    return meta.Datum(json.dumps(value), "json")


def iso(moment: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with an explicit offset, a form the converters' datetime parser accepts."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat()


def event_datum(event: Mapping[str, Any]) -> meta.Datum:
    """One Event Grid event or CloudEvent, as the host hands it to the worker."""
    return _json(event)


def timer_datum(*, past_due: bool, schedule_status: Mapping[str, Any] | None) -> meta.Datum:
    """The host's TimerInfo JSON; ScheduleStatus is null unless the schedule is monitored."""
    return _json({"Schedule": {"AdjustForDST": True}, "ScheduleStatus": schedule_status, "IsPastDue": past_due})


def queue_datum(
    body: bytes,
    *,
    message_id: str | None,
    dequeue_count: int,
    insertion_time: dt.datetime | None,
    expiration_time: dt.datetime | None,
    next_visible_time: dt.datetime | None,
    pop_receipt: str | None,
) -> tuple[meta.Datum, Metadata]:
    """A queue message and its trigger metadata."""
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    datum = _string(text) if text is not None else meta.Datum(body, "bytes")
    metadata: Metadata = {"DequeueCount": _json(dequeue_count)}
    if text is not None:
        metadata["QueueTrigger"] = _string(text)
    if message_id is not None:
        metadata["Id"] = _string(message_id)
    if pop_receipt is not None:
        metadata["PopReceipt"] = _string(pop_receipt)
    for key, moment in (
        ("InsertionTime", insertion_time),
        ("ExpirationTime", expiration_time),
        ("NextVisibleTime", next_visible_time),
    ):
        if moment is not None:
            metadata[key] = _json(iso(moment))
    return datum, metadata


def http_datum(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    route_params: Mapping[str, str],
    body: bytes,
) -> meta.Datum:
    """An HTTP request in the worker's `http` datum shape."""
    return meta.Datum(
        {
            "method": _string(method),
            "url": _string(url),
            "headers": {k: _string(v) for k, v in headers.items()},
            "query": {k: _string(v) for k, v in query.items()},
            "params": {k: _string(v) for k, v in route_params.items()},
            "body": meta.Datum(body, "bytes"),
        },
        "http",
    )


def decode_generic(datum: meta.Datum) -> Any:
    """The worker's generic binding (a `str` or `bytes` trigger parameter): string, bytes or JSON text as sent."""
    if datum.type in ("string", "bytes", "json") or datum.type is None:
        return datum.value
    raise BindingError(f"the generic binding cannot pass {datum.type!r} data")


def decode_trigger(binding_type: str, datum: meta.Datum, metadata: Metadata) -> Any:
    """The trigger parameter's value, from the library's converter for `binding_type`."""
    converter = meta.get_binding_registry().get(binding_type)
    if converter is None:
        raise BindingError(f"no converter is registered for binding type {binding_type!r}")
    try:
        return converter.decode(datum, trigger_metadata=metadata)
    except Exception as exc:  # the converter's own errors vary; they all mean "cannot bind"
        raise BindingError(f"cannot convert the {binding_type} trigger data: {exc}") from exc


def encode_output(binding_type: str, value: Any, expected_type: type | None) -> meta.Datum:
    """An output value encoded by the library's converter for `binding_type`."""
    converter = meta.get_binding_registry().get(binding_type)
    if converter is None:
        raise BindingError(f"no converter is registered for binding type {binding_type!r}")
    try:
        datum: meta.Datum | None = converter.encode(value, expected_type=expected_type)
    except NotImplementedError as exc:
        raise BindingError(f"a {type(value).__name__} value cannot be written to a {binding_type} binding") from exc
    if datum is None:
        raise BindingError(f"the {binding_type} converter produced no data")
    return datum


def queue_messages(datum: meta.Datum) -> list[str | bytes]:
    """The queue messages one output datum produces: a list is one message per element."""
    if datum.type == "string":
        return [str(datum.value)]
    if datum.type == "bytes":
        return [bytes(datum.value)]
    if datum.type == "json":
        parsed = json.loads(datum.value)
        items: Sequence[Any] = parsed if isinstance(parsed, list) else [parsed]
        return [item if isinstance(item, str) else json.dumps(item) for item in items]
    raise BindingError(f"unsupported queue output data type {datum.type!r}")


def http_response(datum: meta.Datum | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the response a function returned; None (no value) is 204."""
    if datum is None:
        return 204, [], b""
    if datum.type == "string":
        return 200, [("Content-Type", "text/plain; charset=utf-8")], str(datum.value).encode("utf-8")
    if datum.type != "http":
        raise BindingError(f"unsupported HTTP response data type {datum.type!r}")
    value = datum.value
    status = int(value["status_code"].value)
    headers = [(name, str(h.value)) for name, h in value["headers"].items()]
    for cookie in value.get("cookies") or []:
        for morsel in cookie.values():
            headers.append(("Set-Cookie", morsel.OutputString()))
    body_datum = value.get("body")
    body = body_datum.value if body_datum is not None and body_datum.value is not None else b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return status, headers, bytes(body)

"""The Event Grid trigger's webhook, `/runtime/webhooks/eventgrid?functionName=NAME`.

Rules (those of Microsoft.Azure.WebJobs.Extensions.EventGrid's HttpRequestProcessor and config
provider, unless marked "here"), for a request the host has already authorized with the
`eventgrid_extension` system key or the master key (see `auth`; subscriptions carry it as `code`):
- `functionName` missing or not an Event Grid-triggered function: 404 "cannot find function".
- OPTIONS (CloudEvents abuse protection): 200 with `WebHook-Allowed-Origin` echoing
  `WebHook-Request-Origin` when it is an Event Grid origin (eventgrid.azure.net, .us, .cn, ...),
  else "eventgrid.azure.net". The extension sends no `WebHook-Allowed-Rate`, so neither does this.
- `aeg-event-type: SubscriptionValidation`: 200 `{"validationResponse": code}` taken from
  `data.validationCode` of the first event (an object's `data` may be JSON text), without
  invoking the function.
- `aeg-event-type: Notification`: the body is a JSON array of events, or one object (a single
  CloudEvent); content type is not consulted, so `application/cloudevents+json` and
  `application/cloudevents-batch+json` work alike. Every event is one invocation, all run in
  parallel; 202 when all succeeded, 500 when any failed (Event Grid then retries the batch).
- `aeg-event-type: Unsubscribe`: 202. Any other or missing `aeg-event-type`: 400. Event Grid
  always sends the header; post it yourself when testing (`headers=` on the SDK's send).
- Every JSON object of the batch is an invocation, whatever fields it lacks (the extension does
  not check them: the function receives an event with empty fields and judges it itself), so one
  malformed event never costs the others their delivery.
- Here: a body that is not JSON (or nested too deep to parse), not an object or array, or holds an
  element that is not an object is answered 400 before any invocation.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Mapping
from typing import Any

from local.host.bindings import event_datum
from local.host.index import EVENT_GRID_TRIGGER, FunctionIndex
from local.host.invoker import Invoker
from local.httpwire import Request, Response

PUBLIC_ORIGIN = "eventgrid.azure.net"
EVENT_GRID_ORIGINS = frozenset(
    {
        PUBLIC_ORIGIN,
        "eventgrid.azure.us",
        "eventgrid.azure.eaglex.ic.gov",
        "eventgrid.azure.microsoft.scloud",
        "eventgrid.azure.cn",
    }
)


def handle(request: Request, index: FunctionIndex, invoker: Invoker) -> Response:
    """Answer one webhook request."""
    name = request.query.get("functionName") or ""
    entry = index.functions.get(name)
    if entry is None or entry.trigger_type != EVENT_GRID_TRIGGER:
        return Response(404, f"cannot find function: '{name}'")
    if request.method == "OPTIONS":
        origin = (request.header("WebHook-Request-Origin") or "").strip()
        allowed = origin if origin in EVENT_GRID_ORIGINS else PUBLIC_ORIGIN
        return Response(200, None, [("WebHook-Allowed-Origin", allowed)])
    if request.method != "POST":
        return Response(405, None, [("Allow", "POST, OPTIONS")])
    kind = (request.header("aeg-event-type") or "").strip().lower()
    if kind == "unsubscribe":
        return Response(202)
    if kind not in ("subscriptionvalidation", "notification"):
        return Response(400, "missing or unknown aeg-event-type header")
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Response(400, "the request content is not valid JSON")
    if kind == "subscriptionvalidation":
        code = _validation_code(payload)
        if code is None:
            return Response(400, "no data.validationCode in the subscription validation event")
        return Response(200, {"validationResponse": code})
    if isinstance(payload, dict):
        events: list[Any] = [payload]
    elif isinstance(payload, list):
        events = payload
    else:
        return Response(400, "the request content should be a JSON object or array")
    for position, event in enumerate(events):
        if not isinstance(event, Mapping):
            return Response(400, f"event {position} is not a JSON object")
    if not events:
        return Response(202)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(events), 16), thread_name_prefix="eventgrid") as pool:
        results = list(
            pool.map(
                lambda event: invoker.invoke(entry, event_datum(event), {}, reason="EventGrid trigger fired"),
                events,
            )
        )
    failed = next((r for r in results if not r.succeeded), None)
    if failed is not None:
        return Response(500, str(failed.error) if failed.error else "function failed")
    return Response(202)


def _validation_code(payload: Any) -> str | None:
    first = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(first, Mapping):
        return None
    data = first.get("data")
    if isinstance(data, str):
        # The CloudEvent form of the validation event carries its data as JSON text.
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, Mapping) or data.get("validationCode") is None:
        return None
    return str(data["validationCode"])

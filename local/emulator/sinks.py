"""Receivers for the app's outbound notifications, recorded for tests to read.

Rules:
- ``POST /_sinks/webhook/{name}`` takes any JSON body and answers 200 ``{"received": n}``; a body
  that is not JSON is 400. The server's fault injection can make this path fail like a real
  receiver (500, timeouts).
- ``POST /_sinks/eventgrid/{topic}/api/events`` is an Event Grid custom topic endpoint, what
  ``EventGridPublisherClient(endpoint, AzureKeyCredential(key))`` sends to (api-version
  2018-01-01, header ``aeg-sas-key``):
  * the topic must be in the scenario (``"sinks": {"eventgridTopics": {topic: key}}``, or
    ``{topic: {"key": key, "inputSchema": "CloudEventSchemaV1_0" | "EventGridSchema"}}``), else 404;
  * a missing or wrong key is 401 ``Unauthorized``, as Event Grid answers;
  * ``application/cloudevents-batch+json`` carries CloudEvents 1.0 (each needs id, source, type,
    specversion "1.0"); ``application/json`` carries Event Grid events (each needs id, subject,
    eventType, eventTime; a missing topic is filled in); a topic created with
    an input schema refuses the other one; a malformed batch is 400 and nothing is stored;
  * a batch over 1 MB is 413; success is 200 with an empty body.
- ``POST /_sinks/appinsights/v2.1/track`` (and ``v2/track``) is Application Insights' ingestion
  endpoint, what azure-monitor-opentelemetry's exporter sends to when a connection string's
  ``IngestionEndpoint`` is ``{emulator}/_sinks/appinsights/``. The component has local
  authentication off, as infra/ deploys it: a request without an unexpired Entra token for
  ``https://monitor.azure.com`` is 401. The body is a JSON array of envelopes (gzip when
  ``Content-Encoding: gzip``); each needs ``name``, ``time``, ``iKey`` and ``data.baseType``, else
  its index is reported in ``errors`` with 400 and the others are kept (206 when some are refused),
  as the ingestion service answers ``{"itemsReceived", "itemsAccepted", "errors"}``.
- ``state()`` lists what each receiver got, with the time received; keys are never echoed.
"""

from __future__ import annotations

import gzip
import hmac
import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

from local.emulator import wire
from local.httpwire import Request, Response

EVENTGRID_API_VERSION = "2018-01-01"
MAX_BATCH_BYTES = 1024 * 1024
CLOUD_EVENTS = "CloudEventSchemaV1_0"
EVENTGRID_SCHEMA = "EventGridSchema"

_WEBHOOK = re.compile(r"^/_sinks/webhook/(?P<name>[^/]+)/?$")
_TOPIC = re.compile(r"^/_sinks/eventgrid/(?P<topic>[^/]+)/api/events/?$")
_TRACK = re.compile(r"^/_sinks/appinsights/+v2(\.1)?/track/?$")
_ENVELOPE_REQUIRED = ("name", "time", "iKey")
MONITOR_AUDIENCE = "https://monitor.azure.com"
_CLOUD_REQUIRED = ("id", "source", "type", "specversion")
_EVENTGRID_REQUIRED = ("id", "subject", "eventType", "eventTime")


def _eg_error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


class SinksService:
    """Webhook and Event Grid topic receivers."""

    name = "sinks"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, tuple[str, str | None]] = {}  # name -> (key, input schema or None)
        self._webhooks: dict[str, list[dict[str, Any]]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._telemetry: list[dict[str, Any]] = []

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        """Load ``scenario["sinks"]["eventgridTopics"]`` and forget everything received."""
        del now
        topics: dict[str, tuple[str, str | None]] = {}
        for name, spec in ((scenario.get("sinks") or {}).get("eventgridTopics") or {}).items():
            if isinstance(spec, dict):
                topics[name] = (str(spec["key"]), spec.get("inputSchema"))
            else:
                topics[name] = (str(spec), None)
        with self._lock:
            self._topics = topics
            self._webhooks = {}
            self._events = {name: [] for name in topics}
            self._telemetry = []

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "webhooks": {name: list(calls) for name, calls in self._webhooks.items()},
                "eventgrid": {name: list(events) for name, events in self._events.items()},
                "appinsights": list(self._telemetry),
            }

    def handle(self, req: Request) -> Response | None:
        path = req.path
        match = _WEBHOOK.match(path)
        if match:
            return self._webhook(req, match.group("name"))
        match = _TOPIC.match(path)
        if match:
            return self._eventgrid(req, match.group("topic"))
        if _TRACK.match(path):
            return self._track(req)
        return None

    def _track(self, req: Request) -> Response:
        if req.method != "POST":
            return Response(405, {"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": 405,
                                                                                        "message": "POST only"}]})
        refused = wire.require_bearer(req, MONITOR_AUDIENCE)
        if refused is not None:
            # Local authentication is off: an instrumentation key alone is refused.
            return Response(401, {"itemsReceived": 0, "itemsAccepted": 0, "errors": [{
                "index": 0, "statusCode": 401,
                "message": "Authentication with Microsoft Entra ID is required for this Application Insights resource."}]})
        try:
            body = gzip.decompress(req.body) if (req.header("content-encoding") or "").lower() == "gzip" else req.body
            envelopes = json.loads(body.decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return Response(400, {"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": 400,
                                                                                        "message": "Invalid JSON"}]})
        if isinstance(envelopes, dict):
            envelopes = [envelopes]
        if not isinstance(envelopes, list):
            envelopes = []
        errors, accepted = [], []
        received = wire.iso(datetime.now(UTC))
        for index, envelope in enumerate(envelopes):
            missing = [k for k in _ENVELOPE_REQUIRED if not isinstance(envelope, dict) or not envelope.get(k)]
            data = envelope.get("data") if isinstance(envelope, dict) else None
            if not missing and not (isinstance(data, dict) and data.get("baseType")):
                missing = ["data.baseType"]
            if missing:
                errors.append({"index": index, "statusCode": 400, "message": f"Field(s) {', '.join(missing)} required"})
            else:
                accepted.append({"receivedAt": received, "envelope": envelope})
        with self._lock:
            self._telemetry.extend(accepted)
        status = 200 if not errors else (206 if accepted else 400)
        return Response(status, {"itemsReceived": len(envelopes), "itemsAccepted": len(accepted), "errors": errors})

    def _webhook(self, req: Request, name: str) -> Response:
        if req.method != "POST":
            return wire.arm_error(405, "MethodNotAllowed", "Webhook sinks accept POST only.")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return wire.arm_error(400, "BadRequest", "The webhook body is not JSON.")
        record = {
            "receivedAt": wire.iso(datetime.now(UTC)),
            "contentType": req.header("content-type"),
            "body": body,
        }
        with self._lock:
            calls = self._webhooks.setdefault(name, [])
            calls.append(record)
            count = len(calls)
        return Response(200, {"received": count})

    def _eventgrid(self, req: Request, topic: str) -> Response:
        if req.method != "POST":
            return _eg_error(405, "MethodNotAllowed", "Event Grid topics accept POST only.")
        with self._lock:
            spec = self._topics.get(topic)
        if spec is None:
            return _eg_error(404, "NotFound", f"The topic '{topic}' does not exist in this emulator's scenario.")
        key, input_schema = spec
        presented = req.header("aeg-sas-key") or ""
        # Constant-time comparison, as for any shared secret.
        if not presented or not hmac.compare_digest(presented.encode(), key.encode()):
            return _eg_error(
                401,
                "Unauthorized",
                f"The request authorization key is not authorized for {topic}. This is due to the reason: "
                "The specified SAS key is invalid or missing.",
            )
        if req.query.get("api-version") != EVENTGRID_API_VERSION:
            return _eg_error(400, "BadRequest", f"The api-version must be {EVENTGRID_API_VERSION}.")
        if len(req.body) > MAX_BATCH_BYTES:
            return _eg_error(413, "RequestEntityTooLarge", f"The maximum size ({MAX_BATCH_BYTES}) has been exceeded.")
        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        schema = CLOUD_EVENTS if content_type == "application/cloudevents-batch+json" else EVENTGRID_SCHEMA
        if input_schema and input_schema != schema:
            return _eg_error(400, "BadRequest", f"This topic accepts {input_schema} events only; got {schema}.")
        try:
            events = json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return _eg_error(400, "BadRequest", "The request body is not valid JSON.")
        problem = _validate(events, schema)
        if problem:
            return _eg_error(400, "BadRequest", problem)
        received = wire.iso(datetime.now(UTC))
        records = []
        for event in events:
            if schema == EVENTGRID_SCHEMA and not event.get("topic"):
                # Event Grid stamps the topic on events published without one.
                event = {**event, "topic": f"/_sinks/eventgrid/{topic}"}
            records.append({"receivedAt": received, "schema": schema, "event": event})
        with self._lock:
            self._events.setdefault(topic, []).extend(records)
        return Response(200)


def _validate(events: Any, schema: str) -> str | None:
    """Why Event Grid would refuse the batch, or None."""
    if not isinstance(events, list) or not events:
        return "The request body must be a non-empty JSON array of events."
    required = _CLOUD_REQUIRED if schema == CLOUD_EVENTS else _EVENTGRID_REQUIRED
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            return f"Event at index {index} is not a JSON object."
        missing = [name for name in required if event.get(name) in (None, "")]
        if missing:
            return f"Event at index {index} is missing required properties: {', '.join(missing)}."
        if schema == CLOUD_EVENTS and event.get("specversion") != "1.0":
            return f"Event at index {index} has specversion {event.get('specversion')!r}; only 1.0 is accepted."
    return None


SERVICE = SinksService()

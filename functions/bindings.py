"""Turn binding objects into plain payloads `shared` understands, never raising on what a sender sent."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json


def event_payload(event: Any) -> dict[str, Any]:
    """An Event Grid trigger input as the wire dict it came from.

    A CloudEvents delivery reaches an EventGridEvent parameter as `func.CloudEvent` (`.type`, no
    `.event_type`), so both shapes are read back into their own schema.
    """
    if hasattr(event, "event_type"):
        return {"id": event.id, "topic": event.topic, "subject": event.subject, "eventType": event.event_type,
                "eventTime": str(event.event_time or ""), "dataVersion": event.data_version, "data": event.get_json()}
    return {"specversion": getattr(event, "specversion", None) or "1.0", "id": event.id, "source": event.source,
            "type": event.type, "subject": getattr(event, "subject", None), "time": str(getattr(event, "time", "") or ""),
            "data": event.get_json() if hasattr(event, "get_json") else getattr(event, "data", None)}


def json_body(req: func.HttpRequest, what: str = "request body") -> tuple[Any, str | None]:
    """The request's JSON body within Event Grid's 1 MB bound, or one line saying what is wrong with it."""
    try:
        return load_json(req.get_body(), MAX_EVENT_BYTES, what), None
    except PayloadError as exc:
        return None, str(exc)

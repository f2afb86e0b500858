"""Turn binding objects into plain payloads `shared` understands, never raising on what a sender sent."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json


def json_body(req: func.HttpRequest, what: str = "request body") -> tuple[Any, str | None]:
    """The request's JSON body within Event Grid's 1 MB bound, or one line saying what is wrong with it."""
    try:
        return load_json(req.get_body(), MAX_EVENT_BYTES, what), None
    except PayloadError as exc:
        return None, str(exc)

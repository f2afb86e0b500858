"""On-demand rotation of one managed credential (admin key), with `dryRun`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import azure.functions as func

from functions.bindings import json_body

bp = func.Blueprint()
log = logging.getLogger("autopilot.rotate")


def _answer(status: int, body: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def _refuse(error: str) -> func.HttpResponse:
    log.error("rejected rotation request: %s", error)
    return _answer(400, {"error": error})


@bp.route(route="rotate", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def rotate(req: func.HttpRequest) -> func.HttpResponse:
    """Body: {"vault": "<vault resource id>", "secret": "<name>", "dryRun": false}. Runs now and answers the outcome."""
    from shared.errors import AzureError, TransientFailure
    from shared.fleet import current
    from shared.ondemand import RequestError, rotation_request
    from shared.runtime import handle

    payload, error = json_body(req)
    if error:
        return _refuse(error)
    try:
        item, dry_run = rotation_request(payload, current(), datetime.now(UTC))
    except RequestError as exc:
        return _refuse(str(exc))
    try:
        report = handle(item, datetime.now(UTC), dry_run=dry_run)
    except TransientFailure as exc:
        return _answer(503, {"error": str(exc)})
    except AzureError as exc:
        log.error("rotation of %s failed: %s", item.params.get("secret"), exc)
        return _answer(503 if exc.transient else 502, {"error": str(exc)})
    return _answer(200, {"summary": report.summary(), "outcomes": [o.as_log() for o in report.outcomes], "notes": report.notes})

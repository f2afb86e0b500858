"""On-demand rotation of one managed credential (admin key), with `dryRun`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import azure.functions as func

from functions.bindings import json_body

bp = func.Blueprint()


def _answer(status: int, body: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


@bp.route(route="rotate", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def rotate(req: func.HttpRequest) -> func.HttpResponse:
    """Body: {"vault": "<vault resource id>", "secret": "<name>", "dryRun": false}. Runs now and answers the outcome."""
    from shared.ondemand import RequestError, rotation_request
    from shared.runtime import handle
    from shared.settings import current

    payload, error = json_body(req)
    if error:
        return _answer(400, {"error": error})
    try:
        item, dry_run = rotation_request(payload, current(), datetime.now(UTC))
    except RequestError as exc:
        return _answer(400, {"error": str(exc)})
    from shared.errors import AzureError, TransientFailure

    try:
        report = handle(item, datetime.now(UTC), dry_run=dry_run)
    except TransientFailure as exc:
        return _answer(503, {"error": str(exc)})
    except AzureError as exc:
        return _answer(503 if exc.transient else 502, {"error": str(exc)})
    return _answer(200, {"summary": report.summary(), "outcomes": [o.as_log() for o in report.outcomes], "notes": report.notes})

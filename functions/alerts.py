"""Azure Monitor alerts (common alert schema) from an action group webhook: authenticate, hand off."""

from __future__ import annotations

import json

import azure.functions as func

from shared.events import Ignored, Rejected
from shared.fleet import current
from shared.intake import accept_alert_body

bp = func.Blueprint()


def _answer(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"message": message}), status_code=status, mimetype="application/json")


@bp.route(route="alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def on_alert(req: func.HttpRequest, work: func.Out[str]) -> func.HttpResponse:
    intake = accept_alert_body(req.get_body(), current())
    if intake.queued:
        work.set(intake.queued)
        return _answer(202, intake.line())
    # Action groups retry only on 408/429/5xx: a 4xx acknowledges a bad or forged alert for good.
    parsed = intake.parsed
    status = 200 if isinstance(parsed, Ignored) else 403 if isinstance(parsed, Rejected) and parsed.security else 400
    return _answer(status, intake.line())

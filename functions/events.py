"""Event Grid (Azure ML and Key Vault system topics): authenticate, hand off, answer fast."""

from __future__ import annotations

import azure.functions as func

from shared.fleet import current
from shared.intake import accept_event_text

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def on_event(event: str, work: func.Out[str]) -> None:
    # A `str` parameter takes the event as the host sent it (the worker's generic binding), not through
    # azure-functions' EventGridEvent converter, which fails — and so answers 500, retried for a day — on
    # an eventTime it cannot parse. Rejected and ignored events return normally: acknowledged, not retried.
    message = accept_event_text(event, current()).queued
    if message:
        work.set(message)

"""Event Grid (Azure ML and Key Vault system topics): authenticate, hand off, answer fast."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.bindings import event_payload
from shared.intake import accept_event
from shared.settings import current

bp = func.Blueprint()
log = logging.getLogger("autopilot.events")


@bp.event_grid_trigger(arg_name="event")
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def on_event(event: func.EventGridEvent, work: func.Out[str]) -> None:
    # Rejected and ignored events return normally: the delivery is acknowledged, never retried.
    settings = current()
    try:
        message = accept_event(event_payload(event), settings).queued
    except Exception as exc:  # a sender's payload must never earn a retry storm: one line, acknowledged
        log.error("rejected: the event could not be read (%s); acknowledged", type(exc).__name__)
        return
    if message:
        work.set(message)

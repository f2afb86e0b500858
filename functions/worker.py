"""The queue-triggered worker: the only function that makes ARM calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared.runtime import handle
from shared.work import BadWorkItem, WorkItem

bp = func.Blueprint()
log = logging.getLogger("autopilot.worker")


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def worker(msg: func.QueueMessage) -> None:
    try:
        item = WorkItem.from_json(msg.get_body().decode("utf-8", errors="replace"))
    except BadWorkItem as exc:
        log.error("dropped queue message %s: %s", msg.id, exc)  # retrying cannot fix it
        return
    try:
        report = handle(item, datetime.now(UTC))
    except Exception as exc:
        from shared.adapters.azure import AzureError  # azure.core stays out of the cold-start import

        if not isinstance(exc, AzureError) or exc.transient:
            raise  # the host makes the message visible again, retries, and poisons it after maxDequeueCount
        log.error("%s %s failed permanently, not retried: %s", item.kind.value, item.target, exc)
        return
    log.info("%s", report.summary())

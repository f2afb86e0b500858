"""The queue-triggered worker: the only function that makes ARM calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared.runtime import engine
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
    report = engine().run(item, datetime.now(UTC))  # transient failures raise: the host retries, then poisons
    log.info("%s", report.summary())

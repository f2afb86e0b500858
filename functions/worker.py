"""The queue-triggered worker: the only function that makes ARM calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared.fleet import current
from shared.intake import allowed
from shared.work import BadWorkItem, WorkItem

bp = func.Blueprint()
log = logging.getLogger("autopilot.worker")


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="poison", queue_name="%WORK_QUEUE%-poison", connection="AzureWebJobsStorage")
def worker(msg: func.QueueMessage, poison: func.Out[bytes]) -> None:
    body = msg.get_body()
    try:
        item = WorkItem.from_json(body, allowed(current()))
    except BadWorkItem as exc:
        # Retrying cannot fix it; the poison queue keeps it, byte for byte, for an operator to read.
        level = logging.WARNING if exc.security else logging.ERROR
        log.log(level, "%squeue message %s moved to the poison queue: %s", "security: " if exc.security else "", msg.id, exc)
        poison.set(body)
        return
    from shared.runtime import handle  # the engine and its policy load on the first work item, not at indexing

    try:
        report = handle(item, datetime.now(UTC))
    except Exception as exc:
        from shared.errors import AzureError

        if not isinstance(exc, AzureError) or exc.transient:
            raise  # the host makes the message visible again, retries, and poisons it after maxDequeueCount
        # Retrying now cannot help (a missing role, a refused request); the poison queue keeps the work
        # for an operator to replay once it is fixed.
        log.error("%s %s failed permanently, moved to the poison queue: %s", item.kind.value, item.target, exc)
        poison.set(body)
        return
    log.info("%s", report.summary())

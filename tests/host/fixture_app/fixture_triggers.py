"""Triggers of the fixture app; each writes what it received to a queue so tests can read it back.

Queues written: eg-out (Event Grid), %TIMER_OUT_QUEUE% (timers), work-out (queue trigger).
Failure hooks: an event with subject "boom", a queue message "poison", and GET /api/explode raise.
"""

import json
import logging

import azure.functions as func

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
@bp.queue_output(arg_name="out", queue_name="eg-out", connection="AzureWebJobsStorage")
def eg_handler(event: func.EventGridEvent, out: func.Out[str]) -> None:
    # A CloudEvents delivery reaches an EventGridEvent parameter as func.CloudEvent.
    if isinstance(event, func.CloudEvent):
        kind, event_type = "CloudEvent", event.type
    else:
        kind, event_type = "EventGridEvent", event.event_type
    record = {"kind": kind, "id": event.id, "type": event_type, "subject": event.subject, "data": event.get_json()}
    if event.subject == "boom":
        raise RuntimeError("boom event")
    out.set(json.dumps(record))


def _timer_record(name: str, timer: func.TimerRequest) -> str:
    # schedule_status is on the concrete TimerRequest the worker passes, not on the abstract type.
    status = getattr(timer, "schedule_status", {})
    return json.dumps({"function": name, "past_due": timer.past_due, "schedule_status": status})


@bp.timer_trigger(arg_name="timer", schedule="%FIXTURE_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="out", queue_name="%TIMER_OUT_QUEUE%", connection="AzureWebJobsStorage")
def tick(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(_timer_record("tick", timer))


@bp.timer_trigger(arg_name="timer", schedule="%NIGHTLY_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="out", queue_name="%TIMER_OUT_QUEUE%", connection="AzureWebJobsStorage")
def nightly(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(_timer_record("nightly", timer))


@bp.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True, use_monitor=False)
@bp.queue_output(arg_name="out", queue_name="%TIMER_OUT_QUEUE%", connection="AzureWebJobsStorage")
def on_startup(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(_timer_record("on_startup", timer))


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="out", queue_name="work-out", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, out: func.Out[str]) -> None:
    body = msg.get_body().decode("utf-8")
    if body == "poison":
        raise ValueError("poison message")
    out.set(
        json.dumps(
            {
                "body": body,
                "id": msg.id,
                "dequeue_count": msg.dequeue_count,
                "insertion_time": msg.insertion_time.isoformat() if msg.insertion_time else None,
                "has_pop_receipt": bool(msg.pop_receipt),
            }
        )
    )


@bp.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    body = {"name": req.route_params.get("name"), "query": dict(req.params), "method": req.method}
    return func.HttpResponse(json.dumps(body), mimetype="application/json", headers={"X-Fixture": "hello"})


@bp.route(route="secure", methods=["GET", "POST"])
async def secure(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(f"function-level ok {context.function_name}", status_code=200)


@bp.route(route="ops/restricted", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def restricted(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin-level ok", status_code=200)


@bp.route(route="explode", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def explode(req: func.HttpRequest) -> func.HttpResponse:
    logging.info("about to fail on purpose")
    raise RuntimeError("exploded on purpose")


@bp.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.queue_output(arg_name="out", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode("utf-8"))
    return func.HttpResponse(status_code=202)

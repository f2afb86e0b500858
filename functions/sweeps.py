"""Timers: fan the sweeps out to the work queue, one item per allowed workspace."""

from __future__ import annotations

import logging
import typing
from datetime import UTC, datetime

import azure.functions as func

from shared.fleet import current
from shared.work import Kind, sweep

bp = func.Blueprint()
log = logging.getLogger("autopilot.sweeps")

# The Functions worker accepts `typing.List[str]` for a multi-message queue output, not `list[str]`
# (azure.functions.meta.is_iterable_type_annotation does not recognise the builtin generic).
Messages = typing.List[str]  # noqa: UP006


def _fan_out(kind: Kind, work: func.Out[Messages]) -> None:
    now = datetime.now(UTC)
    settings = current()
    targets = settings.vaults if kind is Kind.ROTATE else settings.workspaces
    # By subscription: workers that run side by side then share ARM buckets' and getBatch calls' subscription.
    items = [sweep(kind, target.id, now).to_json() for target in sorted(targets, key=lambda t: t.subscription.lower())]
    work.set(items)
    log.info("%s: queued %d item(s)", kind.value, len(items))


@bp.timer_trigger(arg_name="timer", schedule="%IDLE_SWEEP_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def idle_sweep(timer: func.TimerRequest, work: func.Out[Messages]) -> None:
    _fan_out(Kind.IDLE_SWEEP, work)


@bp.timer_trigger(arg_name="timer", schedule="%CLUSTER_SWEEP_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def cluster_sweep(timer: func.TimerRequest, work: func.Out[Messages]) -> None:
    _fan_out(Kind.CLUSTER_SWEEP, work)


@bp.timer_trigger(arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def rotation_sweep(timer: func.TimerRequest, work: func.Out[Messages]) -> None:
    _fan_out(Kind.ROTATE, work)


@bp.timer_trigger(arg_name="timer", schedule="%DEPLOYMENT_SWEEP_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def deployment_sweep(timer: func.TimerRequest, work: func.Out[Messages]) -> None:
    _fan_out(Kind.DEPLOYMENT_SWEEP, work)

"""The same trigger delivered many times, in sequence and concurrently, makes exactly one write.

Every write is claimed first in Azure Table storage (an insert that fails atomically when the row
exists), so duplicates and concurrent deliveries find the claim and do nothing.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local import drive
from local.stack import Stack
from shared.engine import Report
from shared.model import Status
from shared.work import Kind, WorkItem, sweep
from tests.e2e.conftest import WS, World

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
CPU_CLUSTER = {"name": "cpu-cluster", "type": "AmlCompute", "size": "Standard_DS3_v2", "minNodes": 2, "maxNodes": 4,
               "idleTimeBeforeScaleDown": "PT7200S", "nodes": [{"state": "idle"}, {"state": "idle"}], "createdAt": "now-200d"}


def failed_run_event() -> list[dict[str, Any]]:
    """The sample RunStatusChanged (Failed) event, about the demo workspace's failed run on cpu-cluster."""
    events = json.loads((PAYLOADS / "run-failed.eventgrid.json").read_text())
    for event in events:
        event["data"]["runId"] = "etl-nightly-0412"
        event["subject"] = "experiments/etl/runs/etl-nightly-0412"
    return events


def deliver(stack: Stack, events: list[dict[str, Any]], attempts: int = 5) -> int:
    """One Event Grid delivery; like Event Grid, try again when the connection fails before an answer."""
    for attempt in range(attempts):
        try:
            return drive.event_grid(stack, copy.deepcopy(events)).status
        except (ConnectionError, urllib.error.URLError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def cluster_patches(world: World, since: int) -> list[dict[str, Any]]:
    return [w for w in world.writes(since) if w["method"] == "PATCH" and w["path"].endswith("/computes/cpu-cluster")]


def test_the_same_event_delivered_thirty_times_including_concurrently_makes_exactly_one_write(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    event = failed_run_event()

    answers = [deliver(stack, event) for _ in range(10)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers += list(pool.map(lambda _: deliver(stack, event), range(20)))
    assert answers == [202] * 30
    drive.wait_quiet(stack)

    (patch,) = world.writes(start)
    assert patch in cluster_patches(world, start)
    assert patch["body"]["properties"]["properties"]["scaleSettings"]["minNodeCount"] == 0
    rows = list(world.ledger().history(datetime.now(UTC) - timedelta(minutes=5)))
    assert [(r["Status"], r["Action"], r["Target"]) for r in rows if r["Status"] == "done"] == [("done", "scale-cluster", "cpu-cluster")]
    assert {r["Status"] for r in rows} == {"done"}, "duplicates leave no second outcome row"
    logs = stack.host.logs()
    accepted = logs.count("autopilot.intake: accepted run etl-nightly-0412 Failed")
    assert accepted >= 30
    assert logs.count("Executed 'Functions.worker' (Succeeded") == accepted, "every delivery was handled, none failed"


def test_a_burst_of_concurrent_deliveries_while_the_host_is_busy_is_queued_not_reset(world: World, app):
    stack = app(mode="enforce")
    assert stack.host
    event = json.loads((PAYLOADS / "model-registered.eventgrid.json").read_text())  # acknowledged, no work: a cheap delivery

    def once(_: int) -> object:
        try:
            return drive.event_grid(stack, copy.deepcopy(event)).status
        except (ConnectionError, urllib.error.URLError) as exc:
            return type(getattr(exc, "reason", exc)).__name__

    os.kill(stack.host.process.pid, signal.SIGSTOP)  # the host is busy for half a second: nothing is accepted
    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = pool.map(once, range(30))
            time.sleep(0.5)
            os.kill(stack.host.process.pid, signal.SIGCONT)
            answers = list(answers)
    finally:
        os.kill(stack.host.process.pid, signal.SIGCONT)
    assert answers == [202] * 30


def test_thirty_concurrent_runs_of_one_work_item_make_exactly_one_write(world: World):
    item = WorkItem(Kind.RUN_ENDED, WS.id, "evt-concurrent-0001", {"run": "etl-nightly-0412", "status": "Failed"})
    settings = world.settings()
    engines = [world.engine(settings) for _ in range(30)]  # thirty workers, each with its own clients
    for engine in engines:
        assert engine.workspace(WS).ml is not None  # built up front so the threads race on the claim, not on imports
    # The winner's write is slow, so every other worker has decided to write too before it lands.
    world.emulator.fault(method="PATCH", path="/computes/cpu-cluster$", times=1, delay_ms=1500)
    start = world.mark()
    now = datetime.now(UTC)
    barrier = threading.Barrier(30)

    def worker(engine: Any) -> Report:
        barrier.wait()
        return engine.run(item, now)

    with ThreadPoolExecutor(max_workers=30) as pool:
        reports = list(pool.map(worker, engines))

    outcomes = [o for r in reports for o in r.outcomes]
    assert len(cluster_patches(world, start)) == 1 and len(world.writes(start)) == 1
    assert [o.status for o in outcomes].count(Status.DONE) == 1
    duplicates = [o for o in outcomes if o.status is Status.SKIPPED]
    assert duplicates, "the workers really raced for the claim"
    assert all(o.detail.startswith("duplicate: ") for o in duplicates)
    assert len(outcomes) == 1 + len(duplicates), "nothing failed"


def test_a_sweep_fired_twice_within_the_same_minute_makes_no_second_write(world: World):
    engine = world.engine(world.settings(COOLDOWN_MINUTES="0"))  # only the claim can stop the second write
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    start = world.mark()

    first = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, minute + timedelta(seconds=5)), minute + timedelta(seconds=5))
    assert [(o.action.target, o.status) for o in first.outcomes] == [("cpu-cluster", Status.DONE)]
    world.emulator.control("POST", "arm/computes", {"workspace": WS.id, "compute": CPU_CLUSTER})  # min nodes back at 2

    second = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, minute + timedelta(seconds=50)), minute + timedelta(seconds=50))
    ((target, status, detail),) = [(o.action.target, o.status, o.detail) for o in second.outcomes]
    assert (target, status) == ("cpu-cluster", Status.SKIPPED)
    assert detail.startswith("duplicate: already done by an earlier delivery")
    assert len(cluster_patches(world, start)) == 1

    next_minute = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, minute + timedelta(seconds=65)), minute + timedelta(seconds=65))
    assert [(o.action.target, o.status) for o in next_minute.outcomes] == [("cpu-cluster", Status.DONE)]
    assert len(cluster_patches(world, start)) == 2, "the next minute's sweep is a new trigger and writes"


def test_six_distinct_events_for_one_cluster_handled_at_once_write_it_once_and_the_rest_cool_down(world: World):
    """A failed pipeline of six steps on one cluster: six RunStatusChanged events, six triggers, one write."""
    settings = world.settings()
    engines = [world.engine(settings) for _ in range(6)]
    for engine in engines:
        assert engine.workspace(WS).ml is not None
    start = world.mark()
    now = datetime.now(UTC)
    barrier = threading.Barrier(6)

    def worker(pair: tuple[int, Any]) -> Report:
        i, engine = pair
        barrier.wait()
        return engine.run(WorkItem(Kind.RUN_ENDED, WS.id, f"evt-step-{i}", {"run": "etl-nightly-0412", "status": "Failed"}), now)

    with ThreadPoolExecutor(max_workers=6) as pool:
        reports = list(pool.map(worker, enumerate(engines)))

    outcomes = [o for r in reports for o in r.outcomes]
    assert len(cluster_patches(world, start)) == 1
    assert [o.status for o in outcomes].count(Status.DONE) == 1
    assert all(o.detail.startswith(("cooldown: ", "already at the wanted")) for o in outcomes if o.status is Status.SKIPPED), \
        [o.detail for o in outcomes]

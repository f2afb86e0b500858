"""Faults on the write path: bounded retries, and an outcome that says what really happened.

The emulator injects the faults at the wire (429 with Retry-After, 5xx, a dropped connection, a
slow answer, a failed long-running operation, 404, 400); the real SDKs and the engine run
unchanged. ci-alice carries an idle mark older than the grace period, so one sweep stops it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.engine import Engine, Report, TransientFailure
from shared.model import Mark, compute_key
from shared.work import Kind, WorkItem, sweep
from tests.e2e.conftest import WS, World

STOP_ALICE = "/computes/ci-alice/stop"


@pytest.fixture(autouse=True)
def prompt_operations(world: World) -> None:
    world.emulator.lro(polls=0)  # long-running operations end on their first status read


def due(world: World, *names: str, **settings: str) -> tuple[Engine, WorkItem, datetime]:
    """An engine, and an idle sweep in which each named instance is due to be stopped."""
    s = world.settings(IDLE_SHUTDOWN_MINUTES="0", **settings)
    now = datetime.now(UTC)
    ledger = world.ledger(s)
    for name in names or ("ci-alice",):
        ledger.put_mark(Mark(compute_key(WS, name), now - timedelta(minutes=90), "idle"))
    return world.engine(s), sweep(Kind.IDLE_SWEEP, WS.id, now), now


def stop_posts(world: World, since: int, name: str = "ci-alice") -> list[Any]:
    """The status of every stop request sent for `name` (None: the connection was dropped)."""
    return [e["status"] for e in world.emulator.journal(since, method="POST", path=f"/computes/{name}/stop")]


def outcome_of(report: Report, name: str = "ci-alice") -> tuple[str, str]:
    (found,) = [o for o in report.outcomes if o.action.target == name and o.action.kind.value == "stop-instance"]
    return found.status.value, found.detail


def recorded(world: World, name: str = "ci-alice") -> list[tuple[str, str]]:
    """Stop outcomes of `name` in the ledger, oldest first."""
    rows = world.ledger().history(datetime.now(UTC) - timedelta(minutes=10))
    return [(r["Status"], r["Detail"]) for r in reversed(list(rows)) if r["Target"] == name and r["Action"] == "stop-instance"]


def state(world: World, name: str = "ci-alice") -> str:
    return next(c["state"] for c in world.emulator.ml_workspace()["computes"] if c["name"] == name)


def test_throttling_with_a_short_retry_after_is_retried_in_the_call_and_the_stop_lands(world: World):
    engine, item, now = due(world)
    start = world.mark()
    world.emulator.fault(method="POST", path=STOP_ALICE, times=2, status=429, headers={"Retry-After": "1"})
    report = engine.run(item, now)
    assert outcome_of(report) == ("done", "stop ci-alice: verified")
    assert stop_posts(world, start) == [429, 429, 202]
    assert state(world) == "Stopped"


@pytest.mark.parametrize(("fault", "settings", "first_attempts"), [
    pytest.param({"status": 500, "times": 10}, {"ARM_MAX_RETRIES": "1"}, [500, 500], id="500 past ARM_MAX_RETRIES"),
    pytest.param({"status": 503, "times": 10}, {"ARM_MAX_RETRIES": "0"}, [503], id="503 with ARM_MAX_RETRIES=0"),
    pytest.param({"drop": True, "times": 1}, {}, [None], id="dropped connection (a POST is not replayed blindly)"),
    pytest.param({"status": 429, "times": 1, "headers": {"Retry-After": "3600"}}, {}, [429], id="Retry-After beyond the budget"),
])
def test_a_transient_failure_is_recorded_raised_and_its_claim_released_so_the_redelivery_writes_once(
        world: World, fault, settings, first_attempts):
    engine, item, now = due(world, **settings)
    start = world.mark()
    world.emulator.fault(method="POST", path=STOP_ALICE, **fault)

    began = time.monotonic()
    with pytest.raises(TransientFailure):
        engine.run(item, now)
    assert time.monotonic() - began < 8, "no sleeping past the retry budget"
    assert stop_posts(world, start) == first_attempts
    ((status, detail),) = recorded(world)
    assert status == "failed" and detail.startswith("transient, will retry: ")
    assert state(world) == "Running"

    world.emulator.control("DELETE", "faults")
    again = world.mark()
    report = engine.run(item, now + timedelta(minutes=1))  # the platform redelivers the same work item
    assert outcome_of(report) == ("done", "stop ci-alice: verified")
    assert stop_posts(world, again) == [202]
    assert state(world) == "Stopped"


def test_a_timeout_fails_transiently_and_the_redelivery_finds_the_stop_already_done(world: World):
    engine, item, now = due(world, ARM_TIMEOUT_SECONDS="1", ARM_MAX_RETRIES="0")
    start = world.mark()
    world.emulator.fault(method="POST", path=STOP_ALICE, times=1, delay_ms=2500)  # answers, but too late
    began = time.monotonic()
    with pytest.raises(TransientFailure):
        engine.run(item, now)
    assert time.monotonic() - began < 2.4, "ARM_TIMEOUT_SECONDS bounds the wait"
    ((status, detail),) = recorded(world)
    assert status == "failed" and detail.startswith("transient, will retry:")

    deadline = time.monotonic() + 10
    while stop_posts(world, start) != [202] and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow request lands in Azure after the client gave up
    again = world.mark()
    report = engine.run(item, now + timedelta(minutes=1))
    (alice,) = [v for v in report.verdicts if v.target == "ci-alice" and v.rule == "idle-instance"]
    assert alice.reason.startswith("state is Stopp"), "the state is read again, not assumed from the failure"
    assert [o.action.kind.value for o in report.outcomes if o.action.target == "ci-alice"] == ["clear-mark"]
    assert stop_posts(world, again) == [], "no second stop"


def test_a_failed_long_running_operation_is_a_failure_not_a_success(world: World):
    engine, item, now = due(world)
    start = world.mark()
    world.emulator.lro_fail(path="ci-alice", times=1)
    report = engine.run(item, now)
    status, detail = outcome_of(report)
    assert status == "failed" and "OperationFailed" in detail
    assert stop_posts(world, start) == [202]
    assert state(world) == "Running"


@pytest.mark.parametrize(("method", "path"), [
    pytest.param("GET", "/computes/ci-alice$", id="deleted before the re-read"),
    pytest.param("POST", STOP_ALICE, id="deleted between the re-read and the write"),
])
def test_a_compute_that_vanished_before_the_write_is_skipped_as_already_gone(world: World, method, path):
    engine, item, now = due(world)
    start = world.mark()
    world.emulator.fault(method=method, path=path, times=1, status=404)
    report = engine.run(item, now)
    assert outcome_of(report) == ("skipped", "skipped: already gone")
    assert [s for s in stop_posts(world, start) if s != 404] == []
    assert recorded(world) == [("skipped", "skipped: already gone")]


def test_a_permanent_error_is_recorded_once_and_not_retried(world: World):
    engine, item, now = due(world)
    start = world.mark()
    world.emulator.fault(method="POST", path=STOP_ALICE, times=5, status=400)
    report = engine.run(item, now)  # no exception: the platform must not retry it
    status, detail = outcome_of(report)
    assert status == "failed" and detail.startswith("permanent: stop ci-alice: HTTP 400")
    assert stop_posts(world, start) == [400]

    again = engine.run(item, now + timedelta(minutes=1))  # a duplicate delivery of the same item
    status, detail = outcome_of(again)
    assert status == "skipped" and detail.startswith("duplicate: already failed by an earlier delivery")
    assert stop_posts(world, start) == [400]
    assert state(world) == "Running"


def test_one_resources_failure_never_aborts_the_batch(world: World):
    engine, item, now = due(world, "ci-alice", "ci-frank", ARM_MAX_RETRIES="0")
    start = world.mark()
    world.emulator.fault(method="POST", path=STOP_ALICE, times=5, status=500)
    with pytest.raises(TransientFailure):  # raised only after the whole batch ran
        engine.run(item, now)
    assert stop_posts(world, start, "ci-alice") == [500]
    assert stop_posts(world, start, "ci-frank") == [202]
    assert (state(world, "ci-alice"), state(world, "ci-frank")) == ("Running", "Stopped")
    assert recorded(world, "ci-frank") == [("done", "stop ci-frank: verified")]
    assert [s for s, _ in recorded(world, "ci-alice")] == ["failed"]

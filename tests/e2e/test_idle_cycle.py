"""The idle-instance cycle: mark and warn the owner, wait out the grace period, stop, clear the mark.

Every sweep runs the real engine in-process with an explicit `now`, so a test steps through time;
the writes are read back from the emulator's journal, the marks from the ledger.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.engine import Engine, Report
from shared.model import ActionKind, Decision, Mark, Status, compute_key
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World

ALICE = compute_key(WS, "ci-alice")
DAVE_SPEC = {"name": "ci-dave", "type": "ComputeInstance", "size": "Standard_DS4_v2", "state": "Running",
             "createdBy": {"userName": "dave@contoso.com"}, "lastOperation": {"name": "Start", "time": "now-3d"},
             "createdAt": "now-120d"}


@pytest.fixture(autouse=True)
def prompt_operations(world: World) -> None:
    # Long-running operations end on their first status read: a stop then takes a fraction of a second.
    world.emulator.lro(polls=0)


def idle_sweep(engine: Engine, now: datetime) -> Report:
    return engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)


def stops(world: World, since: int, name: str) -> list[dict[str, Any]]:
    return [w for w in world.writes(since) if w["method"] == "POST" and w["path"].endswith(f"/computes/{name}/stop")]


def verdict(report: Report, name: str, rule: str = "idle-instance") -> Any:
    (found,) = [v for v in report.verdicts if v.target == name and v.rule == rule]
    return found


def outcomes(report: Report, name: str) -> list[tuple[str, str, str]]:
    return [(o.action.kind.value, o.status.value, o.detail) for o in report.outcomes if o.action.target == name]


def instance(world: World, name: str) -> dict[str, Any]:
    return next(c for c in world.emulator.ml_workspace()["computes"] if c["name"] == name)


def test_an_idle_instance_is_marked_then_waits_out_the_grace_then_is_stopped_and_its_mark_cleared(world: World):
    settings = world.settings(IDLE_SHUTDOWN_MINUTES="0")  # this test is about the stop; the native setting has its own
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    start = world.mark()

    marked = idle_sweep(engine, now)
    assert outcomes(marked, "ci-alice") == [("mark-idle", "done", "marked idle; warning for owner alice@contoso.com sent via webhook, event grid; "
                                                             "owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS")]
    (mark_outcome,) = [o for o in marked.outcomes if o.action.target == "ci-alice"]
    assert mark_outcome.action.owner == "alice@contoso.com"
    assert ledger.marks()[ALICE].marked_at == now
    assert world.writes(start) == [], "marking writes nothing to Azure"
    warned = [e["body"] for e in world.emulator.journal(start, service="sinks", path="/webhook/")
              if e["body"].get("target") == "ci-alice"]
    assert [(w["action"], w["owner"]) for w in warned] == [("mark-idle", "alice@contoso.com")]
    history = [r for r in ledger.history(now - timedelta(minutes=1)) if r["Target"] == "ci-alice"]
    assert [(r["Action"], r["Status"], r["Owner"]) for r in history] == [("mark-idle", "done", "alice@contoso.com")]

    waiting = idle_sweep(engine, now + timedelta(minutes=30))
    assert verdict(waiting, "ci-alice").decision is Decision.WAIT
    assert "marked 30m ago, stops after 1h grace" in verdict(waiting, "ci-alice").reason
    assert outcomes(waiting, "ci-alice") == []
    assert stops(world, start, "ci-alice") == [] and ALICE in ledger.marks()

    before_stop = world.mark()
    stopped = idle_sweep(engine, now + timedelta(minutes=61))
    assert verdict(stopped, "ci-alice").decision is Decision.ACT
    assert outcomes(stopped, "ci-alice") == [("stop-instance", "done", "stop ci-alice: verified")]
    assert len(stops(world, before_stop, "ci-alice")) == 1
    assert instance(world, "ci-alice")["state"] == "Stopped"

    after = world.mark()
    cleared = idle_sweep(engine, now + timedelta(minutes=62))
    assert verdict(cleared, "ci-alice").reason == "state is Stopped"
    assert outcomes(cleared, "ci-alice") == [("clear-mark", "done", "idle mark cleared")]
    assert ALICE not in ledger.marks()
    assert world.writes(after) == []
    assert len(stops(world, start, "ci-alice")) == 1, "one stop over the whole cycle"


@pytest.mark.parametrize(("job", "why"), [
    pytest.param({"status": "Running"}, "job nb-alice-0002 is Running on it", id="a job starts on it"),
    pytest.param({"status": "Completed", "ended": 10}, "activity returned", id="a job ran on it after the mark"),
])
def test_a_mark_is_cleared_and_nothing_stopped_when_activity_returns_during_the_grace_period(world: World, job, why):
    settings = world.settings(IDLE_SHUTDOWN_MINUTES="0")
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    start = world.mark()
    idle_sweep(engine, now)
    assert ALICE in ledger.marks()

    spec = {"name": "nb-alice-0002", "status": job["status"], "compute": "ci-alice",
            "createdAt": (now + timedelta(minutes=5)).isoformat(), "experimentName": "notebooks", "createdBy": "alice@contoso.com"}
    if "ended" in job:
        spec["endedAt"] = (now + timedelta(minutes=job["ended"])).isoformat()
    world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": spec})

    report = idle_sweep(engine, now + timedelta(minutes=61))
    assert verdict(report, "ci-alice").decision is Decision.KEEP
    assert why in verdict(report, "ci-alice").reason
    assert outcomes(report, "ci-alice") == [("clear-mark", "done", "idle mark cleared")]
    assert ALICE not in ledger.marks()
    assert stops(world, start, "ci-alice") == []
    assert instance(world, "ci-alice")["state"] == "Running"


def test_a_job_that_starts_between_the_decision_and_the_write_is_caught_by_the_re_read(world: World):
    settings = world.settings(IDLE_SHUTDOWN_MINUTES="0", IDLE_GRACE_MINUTES="0")
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    ledger.put_mark(Mark(ALICE, now - timedelta(minutes=5), "idle"))
    start = world.mark()
    # The re-read of ci-alice just before the write is held for a moment; a job starts on it meanwhile.
    world.emulator.fault(method="GET", path="/computes/ci-alice$", times=1, delay_ms=1500)
    job = {"name": "nb-alice-0003", "status": "Running", "compute": "ci-alice", "createdBy": "alice@contoso.com"}

    def start_job_during_the_re_read() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if world.emulator.journal(start, method="GET", path="/computes/ci-alice"):
                world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": job})
                return
            time.sleep(0.02)

    helper = threading.Thread(target=start_job_during_the_re_read)
    helper.start()
    report = idle_sweep(engine, now)
    helper.join()

    assert verdict(report, "ci-alice").decision is Decision.ACT, "the plan saw no job and decided to stop"
    assert outcomes(report, "ci-alice") == [("stop-instance", "skipped", "job nb-alice-0003 is Running on it now (re-read)")]
    assert stops(world, start, "ci-alice") == []
    assert instance(world, "ci-alice")["state"] == "Running"


@pytest.mark.parametrize(("tags", "pattern", "exempt"), [
    pytest.param({"autopilot-exempt": "true"}, "", True, id="tagged true"),
    pytest.param({"Autopilot-Exempt": ""}, "", True, id="tag key alone, any case"),
    pytest.param({}, "^ci-dave$", True, id="name matches EXEMPT_NAME_PATTERN"),
    pytest.param({"autopilot-exempt": "false"}, "", False, id="tagged false is not exempt"),
])
def test_an_exempt_instance_is_never_touched_however_long_it_idles(world: World, tags, pattern, exempt):
    world.emulator.control("POST", "arm/computes", {"workspace": WS.id, "compute": {**DAVE_SPEC, "tags": tags}})
    engine = world.engine(world.settings(IDLE_GRACE_MINUTES="0", EXEMPT_NAME_PATTERN=pattern))
    now = datetime.now(UTC)
    start = world.mark()
    reports = [idle_sweep(engine, now + timedelta(minutes=m)) for m in (0, 1)]

    touched = [w for w in world.writes(start) if "/computes/ci-dave" in w["path"]]
    acted = [o for r in reports for o in r.outcomes if o.action.target == "ci-dave"]
    if exempt:
        assert touched == [] and acted == []
        assert all(verdict(r, "ci-dave").reason.startswith("exempt: ") for r in reports)
        assert all(verdict(r, "ci-dave", "native-idle-shutdown").decision is Decision.SKIP for r in reports)
        assert instance(world, "ci-dave")["state"] == "Running"
    else:
        assert sorted(w["path"].rsplit("/", 1)[-1] for w in touched) == ["stop", "updateIdleShutdownSetting"]
        assert instance(world, "ci-dave")["state"] == "Stopped"


@pytest.mark.parametrize(("means", "minutes", "eligible", "why"), [
    pytest.param("busy", 150, False, "no CPU metric data; treated as busy (NO_METRICS_MEANS=busy)", id="busy: never stopped"),
    pytest.param("idle", 0, False, "up 20m, minimum uptime 30m", id="idle: minimum uptime still holds"),
    pytest.param("idle", 150, True, "idle 2h50m", id="idle: stopped once idle past the threshold"),
])
def test_no_metrics_means_decides_whether_an_instance_without_cpu_data_may_be_stopped(world: World, means, minutes, eligible, why):
    # ci-erin was started 20 minutes ago and has no CPU metric series at all.
    engine = world.engine(world.settings(NO_METRICS_MEANS=means, IDLE_GRACE_MINUTES="0", IDLE_SHUTDOWN_MINUTES="0"))
    now = datetime.now(UTC) + timedelta(minutes=minutes)
    start = world.mark()
    first = idle_sweep(engine, now)
    second = idle_sweep(engine, now + timedelta(minutes=1))

    assert why in verdict(first, "ci-erin").reason
    if eligible:
        assert verdict(first, "ci-erin").decision is Decision.WAIT
        assert [o[0] for o in outcomes(first, "ci-erin")] == ["mark-idle"]
        assert outcomes(second, "ci-erin") == [("stop-instance", "done", "stop ci-erin: verified")]
        assert len(stops(world, start, "ci-erin")) == 1
    else:
        assert verdict(first, "ci-erin").decision is Decision.KEEP
        assert verdict(second, "ci-erin").decision is Decision.KEEP
        assert outcomes(first, "ci-erin") == outcomes(second, "ci-erin") == []
        assert stops(world, start, "ci-erin") == []


def test_the_native_idle_shutdown_is_set_where_it_is_missing_or_longer_than_the_policy(world: World):
    engine = world.engine(world.settings())  # IDLE_SHUTDOWN_MINUTES defaults to 60
    now = datetime.now(UTC)
    start = world.mark()
    report = idle_sweep(engine, now)

    posts = [w for w in world.writes(start) if w["path"].endswith("/updateIdleShutdownSetting")]
    assert sorted(w["path"].split("/computes/")[1].split("/")[0] for w in posts) == ["ci-alice", "ci-erin", "ci-frank"]
    assert all(w["method"] == "POST" and w["body"] == {"idleTimeBeforeShutdown": "PT60M"} for w in posts)
    expected = {  # instance: (decision, what the rule said, native setting afterwards)
        "ci-alice": (Decision.ACT, "no native idle shutdown", "PT60M"),
        "ci-bob": (Decision.KEEP, "native idle shutdown is 60m", "PT60M"),
        "ci-carol": (Decision.KEEP, "native idle shutdown is 30m", "PT30M"),
        "ci-dave": (Decision.SKIP, "exempt: tagged autopilot-exempt=true", None),
        "ci-erin": (Decision.ACT, "no native idle shutdown", "PT60M"),
        "ci-frank": (Decision.ACT, "native idle shutdown 180m is longer than 60m", "PT60M"),
    }
    for name, (decision, why, setting) in expected.items():
        found = verdict(report, name, "native-idle-shutdown")
        assert (found.decision, why in found.reason, instance(world, name)["idleTimeBeforeShutdown"]) == (decision, True, setting), name
    done = [o for o in report.outcomes if o.action.kind is ActionKind.SET_IDLE_SHUTDOWN]
    assert {o.action.target for o in done if o.status is Status.DONE} == {"ci-alice", "ci-erin", "ci-frank"}

    again = world.mark()
    idle_sweep(engine, now + timedelta(minutes=1))
    assert [w for w in world.writes(again) if w["path"].endswith("/updateIdleShutdownSetting")] == []

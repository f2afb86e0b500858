"""Blast-radius caps and cooldowns hold writes back, and a sweep that selects nothing says why."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.engine import Engine, Report
from shared.model import Mark, compute_key
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World

CPU_CLUSTER = {"name": "cpu-cluster", "type": "AmlCompute", "size": "Standard_DS3_v2", "minNodes": 2, "maxNodes": 4,
               "idleTimeBeforeScaleDown": "PT7200S", "nodes": [{"state": "idle"}, {"state": "idle"}], "createdAt": "now-200d"}


@pytest.fixture(autouse=True)
def prompt_operations(world: World) -> None:
    world.emulator.lro(polls=0)  # long-running operations end on their first status read


def run(engine: Engine, kind: Kind, now: datetime) -> Report:
    return engine.run(sweep(kind, WS.id, now), now)


def results(report: Report) -> list[tuple[str, str, str]]:
    """(target, status, detail) of every outcome that is an Azure write or was held back from one."""
    return [(o.action.target, o.status.value, o.detail) for o in report.outcomes if o.action.change.writes_to_azure]


def written(world: World, since: int) -> list[str]:
    """'<compute>/<verb>' of every Azure write since the journal position."""
    out = []
    for w in world.writes(since):
        tail = w["path"].split("/computes/", 1)[1]
        out.append(tail if "/" in tail else f"{tail}/{w['method']}")
    return out


def reseed_cpu_cluster(world: World) -> None:
    """Put cpu-cluster back at min 2 nodes, so a sweep has reason to write it again."""
    world.emulator.control("POST", "arm/computes", {"workspace": WS.id, "compute": CPU_CLUSTER})


def add_job(world: World, name: str, compute: str, status: str = "Running") -> None:
    world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": {"name": name, "status": status, "compute": compute}})


@pytest.mark.parametrize(("mode", "first", "writes"), [
    pytest.param("enforce", ("ci-alice", "done", "set idle shutdown of ci-alice to 60m: verified"), 1, id="enforce"),
    pytest.param("observe", ("ci-alice", "planned", "observe mode: would set idle shutdown of ci-alice to 60m"), 0, id="observe"),
])
def test_max_actions_per_run_lets_one_write_through_and_skips_the_rest_with_the_reason(world: World, mode, first, writes):
    engine = world.engine(world.settings(mode=mode, MAX_ACTIONS_PER_RUN="1"))
    start = world.mark()
    report = run(engine, Kind.IDLE_SWEEP, datetime.now(UTC))
    assert results(report) == [
        first,
        ("ci-erin", "skipped", "cap: MAX_ACTIONS_PER_RUN=1 reached"),
        ("ci-frank", "skipped", "cap: MAX_ACTIONS_PER_RUN=1 reached"),
    ]
    assert written(world, start) == ["ci-alice/updateIdleShutdownSetting"][:writes]


def test_max_actions_per_hour_holds_writes_back_across_runs_until_the_hour_has_passed(world: World):
    engine = world.engine(world.settings(MAX_ACTIONS_PER_HOUR="2"))
    now = datetime.now(UTC)
    start = world.mark()
    idle = run(engine, Kind.IDLE_SWEEP, now)
    assert [(t, s) for t, s, _ in results(idle)] == [("ci-alice", "done"), ("ci-erin", "done"), ("ci-frank", "skipped")]
    assert results(idle)[-1][2] == "cap: MAX_ACTIONS_PER_HOUR=2 reached"

    later = run(engine, Kind.CLUSTER_SWEEP, now + timedelta(minutes=20))
    assert results(later) == [("cpu-cluster", "skipped", "cap: MAX_ACTIONS_PER_HOUR=2 reached")]

    next_hour = run(engine, Kind.CLUSTER_SWEEP, now + timedelta(minutes=61))
    assert results(next_hour) == [("cpu-cluster", "done", "scale cpu-cluster to min 0 max 4, scale down after 1800s: verified")]
    assert written(world, start) == ["ci-alice/updateIdleShutdownSetting", "ci-erin/updateIdleShutdownSetting", "cpu-cluster/PATCH"]


def test_max_actions_per_hour_counts_every_write_even_to_the_same_resource(world: World):
    engine = world.engine(world.settings(MAX_ACTIONS_PER_HOUR="2"))  # COOLDOWN_MINUTES stays at its default, 30
    now = datetime.now(UTC)
    start = world.mark()
    run(engine, Kind.CLUSTER_SWEEP, now)
    reseed_cpu_cluster(world)
    run(engine, Kind.CLUSTER_SWEEP, now + timedelta(minutes=31))  # past the cooldown: a second write, allowed
    assert written(world, start) == ["cpu-cluster/PATCH", "cpu-cluster/PATCH"]

    third = run(engine, Kind.IDLE_SWEEP, now + timedelta(minutes=40))  # still within the hour of both writes
    assert {s for _, s, _ in results(third)} == {"skipped"}
    assert written(world, start) == ["cpu-cluster/PATCH", "cpu-cluster/PATCH"], "two writes within an hour is the cap"


@pytest.mark.parametrize(("minutes", "expected"), [
    pytest.param(10, ("cpu-cluster", "skipped", "cooldown: last write 10m ago (COOLDOWN_MINUTES=30)"), id="within the cooldown"),
    pytest.param(29, ("cpu-cluster", "skipped", "cooldown: last write 29m ago (COOLDOWN_MINUTES=30)"), id="just within"),
    pytest.param(31, ("cpu-cluster", "done", "scale cpu-cluster to min 0 max 4, scale down after 1800s: verified"), id="after it"),
])
def test_the_cooldown_holds_a_second_write_to_the_same_resource_back(world: World, minutes, expected):
    engine = world.engine(world.settings(COOLDOWN_MINUTES="30"))
    now = datetime.now(UTC)
    start = world.mark()
    assert [s for _, s, _ in results(run(engine, Kind.CLUSTER_SWEEP, now))] == ["done"]
    reseed_cpu_cluster(world)  # someone puts min nodes back: the policy wants to write again
    again = run(engine, Kind.CLUSTER_SWEEP, now + timedelta(minutes=minutes))
    assert results(again) == [expected]
    assert written(world, start) == ["cpu-cluster/PATCH"] * (2 if expected[1] == "done" else 1)


def test_the_cooldown_is_per_kind_of_change_so_setting_idle_shutdown_does_not_delay_a_due_stop(world: World):
    settings = world.settings(IDLE_GRACE_MINUTES="0", COOLDOWN_MINUTES="30")
    now = datetime.now(UTC)
    world.ledger(settings).put_mark(Mark(compute_key(WS, "ci-alice"), now - timedelta(minutes=5), "idle"))
    start = world.mark()
    report = run(world.engine(settings), Kind.IDLE_SWEEP, now)
    alice = [(s, d) for t, s, d in results(report) if t == "ci-alice"]
    assert alice == [("done", "stop ci-alice: verified"), ("done", "set idle shutdown of ci-alice to 60m: verified")]
    assert [w for w in written(world, start) if w.startswith("ci-alice/")] == ["ci-alice/stop", "ci-alice/updateIdleShutdownSetting"]


def test_an_idle_sweep_that_selects_no_running_instance_says_why(world: World):
    add_job(world, "nb-alice-0100", "ci-alice")
    add_job(world, "nb-frank-0100", "ci-frank", "Queued")
    engine = world.engine(world.settings(IDLE_SHUTDOWN_MINUTES="0"))
    start = world.mark()
    report = run(engine, Kind.IDLE_SWEEP, datetime.now(UTC))

    assert report.outcomes == [] and world.writes(start) == []
    (note,) = report.notes
    assert note.startswith("5 running instance(s), none idle: ")
    # ci-bob's CPU is busy: kept whatever its jobs, so its jobs are not asked for and the CPU is its reason.
    for name, why in (("ci-alice", "job nb-alice-0100 is Running on it"), ("ci-bob", r"idle [01]m of 2h; CPU busy at"),
                      ("ci-dave", "exempt: tagged autopilot-exempt=true"), ("ci-erin", "up 20m, minimum uptime 30m"),
                      ("ci-frank", "job nb-frank-0100 is Queued on it")):
        # ci-bob's last busy minute is the current one or the one before, as the sweep meets a minute's turn.
        assert re.search(f"{name}: {why}", note), name
    summary = report.summary()
    assert summary.startswith("idle-sweep mlw-demo: no actions: ") and summary.endswith(note)
    assert "ci-carol skip (state is Stopped)" in summary


def test_a_cluster_sweep_that_selects_no_cluster_holding_nodes_says_why(world: World):
    add_job(world, "etl-rerun-0413", "cpu-cluster")
    engine = world.engine(world.settings(CLUSTER_MAX_SCALE_DOWN_SECONDS="7200"))
    start = world.mark()
    report = run(engine, Kind.CLUSTER_SWEEP, datetime.now(UTC))

    assert report.outcomes == [] and world.writes(start) == []
    (note,) = report.notes
    assert note.startswith("1 cluster(s) hold nodes at min > 0, none selected: cpu-cluster: min nodes 2 kept: job etl-rerun-0413 is Running")
    assert report.summary().endswith(note)

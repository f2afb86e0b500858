"""Observe mode plans and writes nothing; enforce mode acts, and every write is verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from local import drive
from shared.model import Status
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World


def test_observe_mode_plans_every_action_and_writes_nothing_to_azure(world: World):
    engine = world.engine(world.settings(mode="observe", IDLE_GRACE_MINUTES="0"))
    now = datetime.now(UTC)
    start = world.mark()
    first = engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)
    second = engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now + timedelta(minutes=1)), now + timedelta(minutes=1))
    clusters = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    planned = [o for r in (first, second, clusters) for o in r.outcomes if o.status is Status.PLANNED]
    assert {(o.action.kind.value, o.action.target) for o in planned} >= {
        ("set-idle-shutdown", "ci-alice"), ("stop-instance", "ci-alice"), ("scale-cluster", "cpu-cluster")}
    assert world.writes(start) == []
    assert all("observe mode: would" in o.detail for o in planned)


def test_enforce_mode_acts_and_verifies(world: World):
    engine = world.engine(world.settings(mode="enforce"))
    now = datetime.now(UTC)
    start = world.mark()
    report = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    (outcome,) = [o for o in report.outcomes if o.action.target == "cpu-cluster"]
    assert outcome.status is Status.DONE and outcome.detail.endswith("verified")
    (patch,) = world.writes(start)
    assert patch["method"] == "PATCH" and patch["path"].endswith("/computes/cpu-cluster")
    assert patch["body"] == {"properties": {"properties": {"scaleSettings": {
        "minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT1800S"}}}}
    cluster = next(c for c in world.emulator.ml_workspace()["computes"] if c["name"] == "cpu-cluster")
    assert cluster["minNodes"] == 0 and cluster["subnet"], "only scale settings change: the subnet survives"


def test_a_timer_through_the_dev_host_runs_the_sweep_in_the_worker(world: World, app):
    stack = app(mode="enforce")
    start = world.mark()
    assert drive.timer(stack, "cluster_sweep").status == 202
    drive.wait_quiet(stack)
    assert [e["path"].rsplit("/", 1)[-1] for e in world.writes(start)] == ["cpu-cluster"]
    rows = list(world.ledger().history(datetime.now(UTC) - timedelta(minutes=5)))
    assert [(r["Status"], r["Target"]) for r in rows] == [("done", "cpu-cluster")]


def test_observe_mode_reports_a_would_be_write_once_a_day_not_at_every_sweep(world: World):
    engine = world.engine(world.settings(mode="observe"))
    now = datetime.now(UTC).replace(hour=10, minute=0)
    first = engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)
    later = engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now + timedelta(minutes=15)), now + timedelta(minutes=15))
    next_day = now + timedelta(days=1)
    tomorrow = engine.run(sweep(Kind.IDLE_SWEEP, WS.id, next_day), next_day)
    planned = lambda report: sorted(o.action.target for o in report.outcomes if o.status is Status.PLANNED)  # noqa: E731
    assert planned(first) == ["ci-alice", "ci-erin", "ci-frank"]  # native idle shutdown on each
    assert planned(later) == [] and all(o.detail.startswith("duplicate:") for o in later.outcomes
                                        if o.action.kind.value == "set-idle-shutdown")
    assert planned(tomorrow) == ["ci-alice", "ci-erin", "ci-frank"]
    rows = list(world.ledger().history(now - timedelta(days=1), limit=100))
    assert sum(r["Action"] == "set-idle-shutdown" for r in rows) == 6, "duplicates leave no ledger row"

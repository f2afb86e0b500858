"""Recycling a cluster with unusable nodes never leaves it stuck at max 0 nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.engine import TransientFailure
from shared.model import Status, compute_key
from shared.work import Kind, WorkItem, sweep
from tests.e2e.conftest import WS, World


def unusable(now: datetime) -> WorkItem:
    return WorkItem(Kind.UNUSABLE_NODES, WS.id, f"alert-{now:%H%M%S%f}", {"cluster": "gpu-cluster"})


def gpu(world: World) -> dict:
    return next(c for c in world.emulator.ml_workspace()["computes"] if c["name"] == "gpu-cluster")


def test_the_max_to_restore_is_remembered_before_the_recycle_and_given_back_after(world: World):
    engine = world.engine(world.settings())
    now = datetime.now(UTC)
    report = engine.run(unusable(now), now)
    assert [o.status for o in report.outcomes] == [Status.DONE]
    assert gpu(world)["maxNodes"] == 0
    assert world.ledger().restores()[compute_key(WS, "gpu-cluster")][0] == 2
    later = now + timedelta(minutes=1)
    swept = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, later), later)
    restored = [o for o in swept.outcomes if o.action.target == "gpu-cluster"]
    assert [o.status for o in restored] == [Status.DONE] and "max nodes restored to 2" in restored[0].action.reason
    assert gpu(world)["maxNodes"] == 2 and world.ledger().restores() == {}


def test_a_recycle_whose_write_failed_does_not_leave_a_restore_behind(world: World):
    engine = world.engine(world.settings(ARM_MAX_RETRIES="0"))
    world.emulator.fault(method="PATCH", path="/computes/gpu-cluster", times=1, status=500)
    now = datetime.now(UTC)
    with pytest.raises(TransientFailure):
        engine.run(unusable(now), now)
    assert gpu(world)["maxNodes"] == 2, "the PATCH never took"
    # A sweep right away keeps the entry (the recycle might still be in flight) …
    soon = now + timedelta(minutes=1)
    kept = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, soon), soon)
    assert world.ledger().restores() and all(o.action.target != "gpu-cluster" for o in kept.outcomes)
    # … and once it is older than a claim's lease, a cluster not at max 0 drops it.
    later = now + timedelta(minutes=11)
    swept = engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, later), later)
    assert world.ledger().restores() == {}
    assert any("recycle no longer in effect" in note for note in swept.notes)
    assert gpu(world)["maxNodes"] == 2

"""Each action kind alone: what it checks on the re-read, what it writes, how it verifies, how it reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.memory import MemoryLedger, MemoryNotifier, MemoryWorkspace
from shared.actions import (
    REGISTRY,
    ClearMark,
    MarkIdle,
    Notify,
    ScaleCluster,
    SetIdleShutdown,
    StopInstance,
    change_from,
    operation_stamp,
)
from shared.model import Action, ActionKind, Cluster, ComputeInstance, Freed, Mark, Status, compute_key
from tests.unit.builders import NOW, WS, cluster, instance, job


def no_jobs() -> list:
    return []


def running_job() -> list:
    return [job("train-1", "Running", "ci")]


@pytest.mark.parametrize(("case", "change", "fresh", "jobs", "expected"), [
    ("a running idle instance may be stopped", StopInstance(), instance(), no_jobs, None),
    ("a stopped instance is not stopped again", StopInstance(), instance(state="Stopped"), no_jobs, "state is now Stopped (re-read)"),
    ("a job on the instance holds the stop", StopInstance(), instance(), running_job, "job train-1 is Running on it now (re-read)"),
    ("a cluster is never stopped as an instance", StopInstance(), cluster(), no_jobs, "not a compute instance (re-read)"),
    ("idle shutdown is set on a settled instance", SetIdleShutdown(60), instance(state="Stopped"), no_jobs, None),
    ("idle shutdown waits for a transition to end", SetIdleShutdown(60), instance(state="Starting"), no_jobs,
     "state is now Starting; settings change only when settled (re-read)"),
    ("a shorter idle shutdown is kept", SetIdleShutdown(60), instance(idle_shutdown=30), no_jobs,
     "native idle shutdown is already 30m (re-read)"),
    ("a shrink under a job is held", ScaleCluster(0, 4, 1800), cluster(min_nodes=2), lambda: [job("etl", "Queued", "cpu")],
     "job etl is Queued on it now (re-read)"),
    ("nodes at work hold a shrink though no job is listed (a pipeline's step)", ScaleCluster(0, 0, 1800, restore_max=4),
     cluster(min_nodes=0, busy=2), no_jobs, "2 node(s) running or preparing a job now (re-read)"),
    ("a grow ignores jobs", ScaleCluster(0, 6, 1800, restore=True), cluster(min_nodes=0, max_nodes=0), running_job, None),
    ("an unchanged scale is not written", ScaleCluster(2, 4, 1800), cluster(), no_jobs, "already at the wanted scale settings (re-read)"),
    ("an instance is never scaled", ScaleCluster(0, 4, 1800), instance(), no_jobs, "not a cluster (re-read)"),
])
def test_precheck(case, change, fresh, jobs, expected):
    assert change.precheck(fresh, jobs) == expected


def test_an_instance_restarted_since_it_was_judged_idle_is_not_stopped():
    judged = instance(op_ago=300)
    restarted = instance(op_ago=1)
    assert StopInstance(operation_stamp(judged)).precheck(judged, no_jobs) is None
    assert StopInstance(operation_stamp(judged)).precheck(restarted, no_jobs).endswith("since it was judged idle (re-read)")


def test_an_operators_change_to_a_clusters_nodes_since_the_decision_is_never_reverted():
    change = ScaleCluster(0, 4, 1800, seen=(2, 4))
    assert change.precheck(cluster(min_nodes=2, max_nodes=4, idle_s=3600), no_jobs) is None
    raised = change.precheck(cluster(min_nodes=2, max_nodes=8, idle_s=3600), no_jobs)
    assert raised == "scale settings changed since the decision (now min 2 max 8) (re-read)"


def test_the_job_list_is_read_only_when_the_change_could_hurt_a_job():
    reads = []

    def jobs() -> list:
        reads.append(1)
        return []

    ScaleCluster(2, 6, 1800).precheck(cluster(min_nodes=2, max_nodes=4), jobs)  # a grow
    SetIdleShutdown(60).precheck(instance(), jobs)
    assert reads == []
    StopInstance().precheck(instance(), jobs)
    assert reads == [1]


@pytest.mark.parametrize(("case", "change", "fresh", "expected"), [
    ("a stopping instance is a stop that took", StopInstance(), instance(state="Stopping"), None),
    ("a running instance after a stop is a failure", StopInstance(), instance(), "verification: state is Running after stop"),
    ("a vanished compute is a failure", StopInstance(), None, "verification: state is gone after stop"),
    ("the idle shutdown read back", SetIdleShutdown(60), instance(idle_shutdown=60), None),
    ("another idle shutdown read back", SetIdleShutdown(60), instance(idle_shutdown=120),
     "verification: idle shutdown is 120m, wanted 60m"),
    ("the scale read back", ScaleCluster(0, 4, 1800), cluster(min_nodes=0), None),
    ("another scale read back", ScaleCluster(0, 4, 1800), cluster(min_nodes=2),
     "verification: scale is min 2 max 4 idle 1800s, wanted min 0 max 4 idle 1800s"),
    ("a scale with the old idle time did not take", ScaleCluster(0, 4, 1800), cluster(min_nodes=0, idle_s=3600),
     "verification: scale is min 0 max 4 idle 3600s, wanted min 0 max 4 idle 1800s"),
])
def test_verify(case, change, fresh, expected):
    assert change.verify(fresh) == expected


def test_each_write_kind_executes_its_own_verb_on_the_workspace():
    ws = MemoryWorkspace(WS, [instance("ci"), cluster("cpu")])
    StopInstance().execute("ci", ws)
    SetIdleShutdown(45).execute("CI", ws)  # ARM names are case-insensitive
    ScaleCluster(0, 3, 600).execute("cpu", ws)
    assert ws.writes == [("stop_instance", ("ci",)), ("set_idle_shutdown", ("CI", 45)), ("set_scale", ("cpu", 0, 3, 600))]
    assert ws.get_compute("ci").state == "Stopped" and ws.get_compute("ci").idle_shutdown_minutes == 45


def test_a_recycle_remembers_its_max_before_the_write_and_a_restore_forgets_it_after():
    ledger = MemoryLedger()
    key = compute_key(WS, "cpu")
    ScaleCluster(0, 0, 1800, restore_max=4).remember(key, ledger, NOW)
    assert ledger.restores() == {key: (4, NOW)}
    ScaleCluster(0, 4, 1800).forget(key, ledger)  # not a restore: nothing to forget
    assert ledger.restores()
    ScaleCluster(0, 4, 1800, restore=True).forget(key, ledger)
    assert ledger.restores() == {}


def test_only_a_restore_bypasses_the_cooldown():
    assert ScaleCluster(0, 4, 1800, restore=True).bypasses_cooldown()
    assert not ScaleCluster(0, 4, 1800).bypasses_cooldown() and not StopInstance().bypasses_cooldown()


def mark_action(owner: str | None = "alice") -> Action:
    return Action(MarkIdle(), WS, "ci", "idle 3h", owner=owner)


def test_an_owner_is_warned_only_when_a_channel_took_the_warning():
    ledger, notifier = MemoryLedger(), MemoryNotifier(channels=("webhook",))
    assert MarkIdle().apply(mark_action(), ledger, notifier, NOW) == (Status.DONE, "marked idle; warning for owner alice sent via webhook; owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS")
    assert compute_key(WS, "ci") in ledger.marks() and len(notifier.sent) == 1


def test_with_no_channel_the_mark_says_nobody_was_warned():
    ledger = MemoryLedger()
    status, detail = MarkIdle().apply(mark_action(), ledger, MemoryNotifier(channels=()), NOW)
    assert (status, detail) == (Status.DONE, "marked idle; owner alice not warned: no notification channel is configured")
    assert "warned via" not in detail and compute_key(WS, "ci") in ledger.marks()


def test_a_warning_no_channel_took_places_no_mark_so_the_grace_never_starts_unwarned():
    ledger = MemoryLedger()
    status, detail = MarkIdle().apply(mark_action(), ledger, MemoryNotifier(channels=("webhook",), down=("webhook",)), NOW)
    assert status is Status.FAILED and "not marked" in detail and ledger.marks() == {}


def test_clearing_a_mark_and_notifying_are_bookkeeping_that_is_not_announced_twice():
    ledger = MemoryLedger()
    ledger.put_mark(Mark(compute_key(WS, "ci"), NOW, "idle"))
    assert ClearMark().apply(Action(ClearMark(), WS, "CI", "busy"), ledger, MemoryNotifier(), NOW) == (Status.DONE, "idle mark cleared")
    assert ledger.marks() == {}
    assert Notify().apply(Action(Notify(), WS, "cpu", "x"), ledger, MemoryNotifier(channels=()), NOW)[1].startswith("logged")
    assert not ClearMark.announced and not MarkIdle.announced and Notify.announced


def test_every_kind_is_registered_once_and_rebuilds_from_its_recorded_parameters():
    assert set(REGISTRY) == set(ActionKind)
    for change in (StopInstance(), SetIdleShutdown(30), ScaleCluster(0, 0, 60, restore_max=4), MarkIdle()):
        assert change_from(change.kind.value, change.params()) == change
    with pytest.raises(ValueError, match="unknown action kind"):
        change_from("delete-workspace", {})


def test_a_description_reads_as_what_it_does():
    assert StopInstance().describe("ci") == "stop ci"
    assert ScaleCluster(0, 4, 1800).describe("cpu") == "scale cpu to min 0 max 4, scale down after 1800s"
    assert ScaleCluster(0, 4, None).params() == {"min_nodes": 0, "max_nodes": 4, "idle_s": None}


# --- owner reach and cores freed ------------------------------------------------------------------


def test_an_owner_with_a_route_of_their_own_is_reached_there_and_the_outcome_says_so():
    ledger, notifier = MemoryLedger(), MemoryNotifier(channels=("webhook",), owners=("alice",))
    assert MarkIdle().apply(mark_action(), ledger, notifier, NOW) == (
        Status.DONE, "marked idle; owner alice reached on their own webhook; also sent via webhook")


def test_an_owner_whose_own_webhook_fails_is_said_not_reached():
    notifier = MemoryNotifier(channels=("webhook",), owners=("alice",), down=("owner webhook",))
    assert MarkIdle().apply(mark_action(), MemoryLedger(), notifier, NOW)[1] == (
        "marked idle; warning for owner alice sent via webhook; owner not reached directly: their webhook failed")


@pytest.mark.parametrize(("before", "change", "vms"), [
    ((2, 4, 2), ScaleCluster(0, 4, 1800), 2),   # min 2 held two idle nodes: both freed
    ((2, 4, 3), ScaleCluster(0, 4, 1800), 2),   # a third node would have gone anyway: not counted
    ((0, 2, 1), ScaleCluster(0, 0, 1800), 1),   # a recycle lets every node go
    ((0, 4, 0), ScaleCluster(0, 4, 1800), 0),   # only the idle time changed: nothing freed now
    ((0, 0, 0), ScaleCluster(0, 2, 1800, restore=True), 0),  # giving max nodes back frees nothing
])
def test_a_scale_change_frees_the_nodes_only_its_old_min_held_or_those_above_its_new_max(before, change, vms):
    low, high, current = before
    cluster = Cluster(WS, "c", "Standard_DS3_v2", low, high, 7200, current, 0, None)
    freed = change.freed(cluster)
    assert (freed.vms if freed else 0) == vms


def test_a_stop_frees_one_vm_and_remembers_when_the_instance_was_started():
    started = NOW - timedelta(hours=5)
    ci = ComputeInstance(WS, "ci", "Running", "Standard_DS3_v2", "alice", "Start", started, None, None)
    assert StopInstance().freed(ci) == Freed("Standard_DS3_v2", 1, started)


@pytest.mark.parametrize(("state", "op", "op_at", "expected"), [
    ("Stopped", "Stop", NOW + timedelta(minutes=2), (False, None)),   # our own stop: still saving
    ("Running", "Start", NOW + timedelta(hours=3), (True, NOW + timedelta(hours=3))),  # started again then
    ("Stopped", "Stop", NOW + timedelta(hours=5), (True, None)),   # started and stopped since: when, unknown
    ("Running", "Start", NOW - timedelta(hours=1), (True, None)),   # running, start time not after the stop
])
def test_a_stop_saves_until_the_instance_is_started_again(state, op, op_at, expected):
    ci = ComputeInstance(WS, "ci", state, "Standard_DS3_v2", "alice", op, op_at, None, None)
    assert StopInstance().resumed(ci, NOW) == expected
    assert StopInstance().resumed(None, NOW) == (True, None)  # gone since

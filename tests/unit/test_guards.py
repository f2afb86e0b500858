"""Each guard alone, then the pipeline's order, with in-memory ports: no server, microseconds a test."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.memory import MemoryLedger, MemoryNotifier, MemoryWorkspace
from shared.actions import MarkIdle, ScaleCluster, SetIdleShutdown, StopInstance
from shared.errors import AzureError, Conflict, Gone
from shared.guards import (
    AllowList,
    Attempt,
    Caps,
    ClaimIt,
    Cooldown,
    Exemption,
    ReRead,
    Run,
    Stop,
    Verify,
    Write,
    pipeline,
)
from shared.model import Action, Mode, ResourceId, Status
from shared.policy.common import Exemptions
from shared.ports import LEASE
from tests.unit.builders import NOW, WS, cluster, instance, job

EXEMPT = Exemptions("autopilot-exempt")
OTHER = ResourceId.parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/other")
TRANSIENT = AzureError("ledger: claim: HTTP 503", transient=True, status=503)


def stop(name: str = "ci", workspace: ResourceId = WS, tags: dict[str, str] | None = None) -> Action:
    return Action(StopInstance(), workspace, name, "idle", owner="alice", tags=tuple((tags or {}).items()))


def attempt(action: Action | None = None, ws: MemoryWorkspace | None = None, writes: int = 0) -> Attempt:
    return Attempt(action or stop(), Run("trigger-1", NOW, ws or MemoryWorkspace(WS, [instance()]), writes=writes))


# --- one guard at a time ----------------------------------------------------------------------------


def test_the_allow_list_refuses_an_action_on_a_workspace_it_does_not_hold():
    assert AllowList([WS]).check(attempt(stop(workspace=OTHER))).status is Status.SKIPPED
    assert AllowList([WS]).check(attempt()) is None


def test_the_allow_list_compares_workspace_ids_case_insensitively():
    upper = ResourceId.parse(WS.id.upper().replace("PROVIDERS", "providers"))
    assert AllowList([WS]).check(attempt(stop(workspace=upper))) is None


def test_the_exemption_guard_skips_a_compute_tagged_as_exempt_when_judged():
    assert Exemption(EXEMPT).check(attempt(stop(tags={"Autopilot-Exempt": ""}))).detail.startswith("exempt")
    assert Exemption(EXEMPT).check(attempt()) is None


@pytest.mark.parametrize(("case", "writes", "hour", "mode", "expected"), [
    ("under both caps", 0, 0, Mode.ENFORCE, None),
    ("the run's cap reached", 2, 0, Mode.ENFORCE, "cap: MAX_ACTIONS_PER_RUN=2 reached"),
    ("the hour's cap reached", 0, 5, Mode.ENFORCE, "cap: MAX_ACTIONS_PER_HOUR=5 reached"),
    ("observe mode has no hourly cap", 0, 5, Mode.OBSERVE, None),
])
def test_caps(case, writes, hour, mode, expected):
    ledger = MemoryLedger()
    for _ in range(hour):
        ledger.count_write("x", NOW - timedelta(minutes=10))
    result = Caps(2, 5, mode, ledger).check(attempt(writes=writes))
    assert (result.detail if result else None) == expected


def test_the_hourly_cap_counts_writes_attempted_not_only_those_that_succeeded():
    ledger = MemoryLedger()
    ws = MemoryWorkspace(WS, [instance()], fail={"stop_instance": AzureError("stop ci: HTTP 400", transient=False)})
    outcome = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 1, 0, ledger, MemoryNotifier()).run(stop(), Run("t", NOW, ws))
    assert outcome.status is Status.FAILED
    assert ledger.writes_since(NOW - timedelta(hours=1)) == 1
    again = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 1, 0, ledger, MemoryNotifier()).run(stop("ci"), Run("t2", NOW, ws))
    assert again.detail == "cap: MAX_ACTIONS_PER_HOUR=1 reached"


def test_the_cooldown_holds_a_second_write_of_the_same_kind_and_lets_a_restore_through():
    ledger = MemoryLedger()
    action = Action(ScaleCluster(0, 4, 1800), WS, "cpu", "idle")
    ledger.take_write(f"scale-cluster|{action.key}", NOW - timedelta(minutes=10), timedelta(0), "an-earlier-sweep")
    held = Cooldown(30, Mode.ENFORCE, ledger).check(attempt(action))
    assert held and held.detail == "cooldown: last write 10m ago (COOLDOWN_MINUTES=30)"
    restore = Action(ScaleCluster(0, 4, 1800, restore=True), WS, "cpu", "drained")
    assert Cooldown(30, Mode.ENFORCE, ledger).check(attempt(restore)) is None
    assert Cooldown(30, Mode.OBSERVE, ledger).check(attempt(action)) is None


def test_a_claim_is_taken_once_per_trigger_and_a_second_delivery_is_a_duplicate():
    ledger = MemoryLedger()
    first, second = attempt(), attempt()
    assert ClaimIt(Mode.ENFORCE, ledger).check(first) is None and first.claim is not None
    assert ClaimIt(Mode.ENFORCE, ledger).check(second).detail.startswith("duplicate: already claimed")


def test_a_ledger_outage_at_the_claim_fails_the_action_transiently_and_writes_nothing():
    ledger = MemoryLedger(fail={"claim": TRANSIENT})
    result = ClaimIt(Mode.ENFORCE, ledger).check(attempt())
    assert result.status is Status.FAILED and result.transient and "not writing without a claim" in result.detail


def test_settling_a_claim_another_run_took_over_leaves_that_runs_record_standing():
    ledger = MemoryLedger()
    slow = attempt()
    ClaimIt(Mode.ENFORCE, ledger).check(slow)
    # The slow run outlives its lease; a redelivery takes the claim over and settles it.
    later = Attempt(stop(), Run("trigger-1", NOW + LEASE + timedelta(minutes=1), MemoryWorkspace(WS, [instance()])))
    ClaimIt(Mode.ENFORCE, ledger).check(later)
    assert later.claim.taken_over
    ClaimIt(Mode.ENFORCE, ledger).after(later, Stop(Status.DONE, "stop ci: verified"))
    ended = ClaimIt(Mode.ENFORCE, ledger).after(slow, Stop(Status.FAILED, "verification: state is Running after stop"))
    assert "another run took the claim over" in ended.detail
    (row,) = ledger.claims.values()
    assert (row["Status"], row["Detail"]) == ("done", "stop ci: verified")


def test_in_observe_mode_a_skip_releases_the_days_claim_so_the_report_is_not_hidden():
    ledger = MemoryLedger()
    busy = attempt()
    ClaimIt(Mode.OBSERVE, ledger).check(busy)
    ClaimIt(Mode.OBSERVE, ledger).after(busy, Stop(Status.SKIPPED, "job x is Running on it now (re-read)"))
    later = attempt()
    assert ClaimIt(Mode.OBSERVE, ledger).check(later) is None  # the same day: taken again, not "duplicate"
    ClaimIt(Mode.OBSERVE, ledger).after(later, Stop(Status.PLANNED, "observe mode: would stop ci"))
    assert ClaimIt(Mode.OBSERVE, ledger).check(attempt()).detail.startswith("duplicate: already planned")


def test_the_re_read_sees_a_job_submitted_under_another_spelling_of_the_compute_name():
    ws = MemoryWorkspace(WS, [instance("ci-alice")], jobs=[job("nb-1", "Running", compute="CI-Alice")])
    result = ReRead(EXEMPT).check(attempt(stop("ci-alice"), ws))
    assert result.detail == "job nb-1 is Running on it now (re-read)"


def test_the_re_read_skips_a_vanished_compute_and_an_exemption_tagged_since_the_decision():
    assert ReRead(EXEMPT).check(attempt(ws=MemoryWorkspace(WS, []))).detail == "skipped: already gone"
    tagged = MemoryWorkspace(WS, [instance(tags={"autopilot-exempt": "true"})])
    assert ReRead(EXEMPT).check(attempt(ws=tagged)).detail == "exempt: tagged autopilot-exempt=true (re-read)"


def test_the_re_read_of_a_taken_over_claim_records_a_write_the_dead_run_made():
    ledger = MemoryLedger()
    ledger.claims["k"] = {"Key": "k", "Status": "claimed", "ClaimedAt": NOW - LEASE - timedelta(minutes=1), "etag": "1"}
    taken = ledger.claim("k", NOW)
    stopped = MemoryWorkspace(WS, [instance(state="Stopped")])
    result = ReRead(EXEMPT).check(Attempt(stop(), Run("t", NOW, stopped), claim=taken))
    assert result.status is Status.DONE and "done by an earlier run that stopped before recording it" in result.detail


def test_observe_mode_writes_nothing_and_plans():
    ws = MemoryWorkspace(WS, [instance()])
    result = Write(Mode.OBSERVE, MemoryLedger(), 30, 30).check(attempt(ws=ws))
    assert (result.status, result.detail) == (Status.PLANNED, "observe mode: would stop ci") and ws.writes == []


@pytest.mark.parametrize(("case", "error", "status", "transient"), [
    ("a vanished compute", Gone("stop ci: not found"), Status.SKIPPED, False),
    ("another operation in progress", Conflict("stop ci: conflict"), Status.SKIPPED, False),
    ("throttled", AzureError("stop ci: HTTP 429", transient=True, status=429), Status.FAILED, True),
    ("refused", AzureError("stop ci: HTTP 400", transient=False, status=400), Status.FAILED, False),
])
def test_write_errors(case, error, status, transient):
    ws = MemoryWorkspace(WS, [instance()], fail={"stop_instance": error})
    result = Write(Mode.ENFORCE, MemoryLedger(), 30, 30).check(attempt(ws=ws))
    assert (result.status, result.transient) == (status, transient)


def test_verify_reads_the_compute_back_after_the_write():
    ws = MemoryWorkspace(WS, [instance(state="Stopped")])
    assert Verify(MemoryLedger()).check(attempt(ws=ws)).detail == "stop ci: verified"
    unchanged = MemoryWorkspace(WS, [instance()])
    assert Verify(MemoryLedger()).check(attempt(ws=unchanged)).status is Status.FAILED


# --- the pipeline ----------------------------------------------------------------------------------


def test_the_pipeline_runs_the_guards_in_the_documented_order():
    p = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 30, MemoryLedger(), MemoryNotifier())
    assert [type(g).__name__ for g in p.azure_write] == ["AllowList", "Exemption", "Caps", "Cooldown", "ClaimIt", "ReRead", "Write", "Verify"]
    assert [type(g).__name__ for g in p.bookkeeping] == ["AllowList", "Apply"]


def test_an_enforced_stop_claims_rereads_writes_verifies_and_records_once():
    ledger, notifier = MemoryLedger(), MemoryNotifier()
    ws = MemoryWorkspace(WS, [instance()])
    outcome = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 30, ledger, notifier).run(stop(), Run("t", NOW, ws))
    assert (outcome.status, outcome.detail) == (Status.DONE, "stop ci: verified")
    assert [c[0] for c in ledger.calls] == ["writes_since", "last_write", "claim", "count_write", "writes_since", "take_write",
                                            "settle", "record"]
    # The region's VM sizes are read once, after the write took, to record the cores it freed.
    assert [c[0] for c in ws.calls] == ["get_compute", "active_jobs", "stop_instance", "get_compute", "location", "vm_sizes"]
    assert notifier.sent == [outcome] and ledger.outcomes == [outcome]


def test_a_capped_action_is_never_claimed_so_observe_mode_reports_it_once_the_cap_frees():
    ledger = MemoryLedger()
    p = pipeline(Mode.OBSERVE, [WS], EXEMPT, 0, 30, 30, ledger, MemoryNotifier())
    capped = p.run(stop(), Run("t", NOW, MemoryWorkspace(WS, [instance()])))
    assert capped.detail == "cap: MAX_ACTIONS_PER_RUN=0 reached" and ledger.claims == {}
    later = pipeline(Mode.OBSERVE, [WS], EXEMPT, 1, 30, 30, ledger, MemoryNotifier()).run(stop(), Run("t2", NOW, MemoryWorkspace(WS, [instance()])))
    assert later.status is Status.PLANNED


def test_a_ledger_outage_on_one_action_does_not_stop_the_next():
    ledger = MemoryLedger(fail={"claim": TRANSIENT})
    ws = MemoryWorkspace(WS, [instance("a"), instance("b")])
    p = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 0, ledger, MemoryNotifier())
    run = Run("t", NOW, ws)
    first = p.run(stop("a"), run)
    ledger.fail.clear()
    second = p.run(stop("b"), run)
    assert (first.status, second.status) == (Status.FAILED, Status.DONE) and run.transient == 1


def test_a_ledger_outage_at_settlement_keeps_the_outcome_and_says_so():
    ledger = MemoryLedger(fail={"settle": TRANSIENT})
    outcome = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 0, ledger, MemoryNotifier()).run(
        stop(), Run("t", NOW, MemoryWorkspace(WS, [instance()])))
    assert outcome.status is Status.DONE and "claim not settled" in outcome.detail


def test_bookkeeping_passes_only_the_allow_list_and_applies_itself():
    ledger = MemoryLedger()
    p = pipeline(Mode.ENFORCE, [WS], EXEMPT, 0, 0, 0, ledger, MemoryNotifier(channels=()))
    mark = p.run(Action(MarkIdle(), WS, "ci", "idle", owner="alice"), Run("t", NOW, MemoryWorkspace(WS, [])))
    assert mark.status is Status.DONE and ledger.marks()
    refused = p.run(Action(MarkIdle(), OTHER, "ci", "idle"), Run("t", NOW, MemoryWorkspace(OTHER, [])))
    assert refused.status is Status.SKIPPED and "not in ALLOWED_WORKSPACES" in refused.detail


def test_a_setting_change_is_verified_by_its_own_kind():
    ws = MemoryWorkspace(WS, [instance(idle_shutdown=None)])
    action = Action(SetIdleShutdown(60), WS, "ci", "no idle shutdown")
    outcome = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 0, MemoryLedger(), MemoryNotifier()).run(action, Run("t", NOW, ws))
    assert outcome.detail == "set idle shutdown of ci to 60m: verified"
    assert [c[0] for c in ws.calls] == ["get_compute", "set_idle_shutdown", "get_compute"]  # no job list: it cannot hurt a job


def test_a_cluster_shrink_is_held_by_a_job_on_the_cluster_under_any_spelling():
    ws = MemoryWorkspace(WS, [cluster("cpu-cluster")], jobs=[job("etl", "Queued", "CPU-Cluster")])
    action = Action(ScaleCluster(0, 4, 1800), WS, "cpu-cluster", "idle")
    outcome = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 30, 0, MemoryLedger(), MemoryNotifier()).run(action, Run("t", NOW, ws))
    assert outcome.detail == "job etl is Queued on it now (re-read)" and ws.writes == []


def test_workers_in_parallel_all_past_the_early_cap_check_still_write_no_more_than_the_hourly_cap():
    ledger = MemoryLedger()
    a, b = Attempt(stop("a"), Run("t-a", NOW, MemoryWorkspace(WS, [instance("a")]))), Attempt(stop("b"), Run("t-b", NOW, MemoryWorkspace(WS, [instance("b")])))
    caps = Caps(10, 1, Mode.ENFORCE, ledger)
    assert caps.check(a) is None and caps.check(b) is None  # both read the count before either wrote
    write = Write(Mode.ENFORCE, ledger, 1, 30)
    first, second = write.check(a), write.check(b)
    assert first is None and second.detail == "cap: MAX_ACTIONS_PER_HOUR=1 reached"
    assert ledger.writes_since(NOW - timedelta(hours=1)) == 1


def test_runs_racing_for_one_resource_past_the_early_cooldown_check_write_it_once():
    ledger = MemoryLedger()
    ws = MemoryWorkspace(WS, [cluster("cpu")])
    runs = [Attempt(Action(ScaleCluster(0, 4, 1800), WS, "cpu", "idle"), Run(f"evt-{i}", NOW, ws)) for i in range(6)]
    early = Cooldown(30, Mode.ENFORCE, ledger)
    assert all(early.check(a) is None for a in runs)  # six events of one pipeline, all read before any wrote
    write = Write(Mode.ENFORCE, ledger, 30, 30)
    results = [write.check(a) for a in runs]
    assert results[0] is None and all(r and r.detail.startswith("cooldown: last write 0m ago") for r in results[1:])
    assert [c[0] for c in ws.writes] == ["set_scale"] and ledger.writes_since(NOW - timedelta(hours=1)) == 1


def test_a_write_that_never_happened_gives_its_cooldown_slot_back():
    ledger = MemoryLedger()
    ws = MemoryWorkspace(WS, [instance()], fail={"stop_instance": AzureError("stop ci: HTTP 503", transient=True, status=503)})
    assert Write(Mode.ENFORCE, ledger, 30, 30).check(attempt(ws=ws)).transient
    assert ledger.last_write(f"stop-instance|{stop().key}") is None  # the retry is not held by a cooldown


def test_a_ledger_failure_after_the_slot_is_taken_gives_slot_and_place_back_so_the_retry_can_write():
    ledger = MemoryLedger(fail={"put_restore": TRANSIENT})
    ws = MemoryWorkspace(WS, [cluster("gpu", min_nodes=0, max_nodes=2, unusable=1)])
    recycle = Action(ScaleCluster(0, 0, 1800, restore_max=2), WS, "gpu", "unusable nodes")
    first = Write(Mode.ENFORCE, ledger, 30, 30).check(Attempt(recycle, Run("alert-1", NOW, ws)))
    assert first is not None and first.transient and ws.writes == []
    assert ledger.last_write(f"scale-cluster|{recycle.key}") is None and ledger.writes_since(NOW - timedelta(hours=1)) == 0
    ledger.fail.clear()
    later = NOW + timedelta(minutes=1)
    assert Write(Mode.ENFORCE, ledger, 30, 30).check(Attempt(recycle, Run("alert-1", later, ws))) is None
    assert [c[0] for c in ws.writes] == ["set_scale"]


def test_the_early_hourly_cap_check_reads_the_ledger_once_per_run_and_counts_the_runs_own_writes_after():
    ledger = MemoryLedger()
    for _ in range(3):
        ledger.count_write("x", NOW - timedelta(minutes=10))
    ws = MemoryWorkspace(WS, [instance(f"ci-{i}") for i in range(4)])
    p = pipeline(Mode.ENFORCE, [WS], EXEMPT, 10, 5, 0, ledger, MemoryNotifier())
    run = Run("t", NOW, ws)
    outcomes = [p.run(stop(f"ci-{i}"), run) for i in range(4)]
    assert [o.status for o in outcomes] == [Status.DONE, Status.DONE, Status.SKIPPED, Status.SKIPPED]
    assert outcomes[2].detail == "cap: MAX_ACTIONS_PER_HOUR=5 reached"
    early = [c for c in ledger.calls if c[0] == "writes_since"]
    assert len(early) == 1 + 2, "one early count for the run, then one per write with its own place"

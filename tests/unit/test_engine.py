"""The real engine on in-memory ports: gather → decide → guards, for the holes a careful operator would hit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local.memory import MemoryLedger, MemoryMetrics, MemoryNotifier, MemoryWorkspace
from shared.engine import Engine
from shared.errors import AzureError, TransientFailure
from shared.model import ActionKind, Decision, Mark, Mode, ResourceId, Status, Usage, compute_key
from shared.policy.decide import Purpose, Rules, Snapshot, decide
from shared.ports import LEASE
from shared.settings import Settings
from shared.work import Kind, WorkItem, sweep
from tests.unit.builders import NOW, WS, cluster, cpu, instance, job

OTHER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/other"


def settings(**env: str) -> Settings:
    return Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "AUTOPILOT_MODE": "enforce", "IDLE_SHUTDOWN_MINUTES": "0", **env})


def engine(ws: MemoryWorkspace, s: Settings | None = None, ledger: MemoryLedger | None = None,
           metrics: MemoryMetrics | None = None) -> tuple[Engine, MemoryLedger]:
    ledger = ledger or MemoryLedger()
    return Engine(s or settings(), lambda rid: ws, metrics or MemoryMetrics(), ledger, MemoryNotifier()), ledger


def marked(ledger: MemoryLedger, name: str, minutes: float = 90) -> MemoryLedger:
    ledger.put_mark(Mark(compute_key(WS, name), NOW - timedelta(minutes=minutes), "idle"))
    ledger.calls.clear()
    return ledger


def stops(ws: MemoryWorkspace) -> list[str]:
    return [args[0] for method, args in ws.writes if method == "stop_instance"]


# --- one identity per resource ------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["CI-Alice", "ci-alice ", "CI-ALICE"])
def test_a_job_submitted_under_another_spelling_protects_the_instance_from_the_idle_sweep(spelling):
    ws = MemoryWorkspace(WS, [instance("ci-alice", op_ago=600)], jobs=[job("nb-1", "Running", compute=spelling)])
    eng, _ledger = engine(ws, metrics=MemoryMetrics({"ci-alice": cpu()}))
    report = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert stops(ws) == [] and report.verdicts[0].reason == "job nb-1 is Running on it"


def test_a_job_submitted_under_another_spelling_keeps_quota_relief_off_the_cluster():
    rules = Rules.from_settings(settings())
    snap = Snapshot(WS, (cluster("gpu", min_nodes=0, current=2, size="Standard_NC6s_v3"),),
                    (job("train", "Running", compute="GPU"),), usages=(Usage("standardNCSv3Family", 12, 12),),
                    sizes={"standard_nc6s_v3": ("standardNCSv3Family", 6)})
    verdict = decide(Purpose.QUOTA, {"family": "StandardNCSv3Family"}, snap, rules, NOW).verdicts[0]
    assert verdict.actions == () and "no idle compute" in verdict.reason


def test_a_job_under_another_spelling_keeps_a_cluster_at_its_minimum():
    rules = Rules.from_settings(settings())
    snap = Snapshot(WS, (cluster("cpu-cluster", min_nodes=2),), (job("etl", "Queued", compute="CPU-CLUSTER"),))
    (verdict,) = decide(Purpose.CLUSTER_SWEEP, {}, snap, rules, NOW).verdicts
    assert not any(a.change.min_nodes == 0 for a in verdict.actions)


def test_a_mark_made_under_one_spelling_is_found_under_another():
    ws = MemoryWorkspace(WS, [instance("CI-Alice", op_ago=600)])
    eng, ledger = engine(ws, metrics=MemoryMetrics({"CI-Alice": cpu()}))
    marked(ledger, "ci-alice")
    eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert stops(ws) == ["CI-Alice"]


# --- metrics --------------------------------------------------------------------------------------


def test_a_metrics_outage_is_never_read_as_idle_even_with_no_metrics_means_idle():
    ws = MemoryWorkspace(WS, [instance("ci-busy", op_ago=600)])
    outage = MemoryMetrics(error=AzureError("CPU metrics of ws: HTTP 503", transient=True, status=503))
    eng, ledger = engine(ws, settings(NO_METRICS_MEANS="idle"), metrics=outage)
    marked(ledger, "ci-busy")
    report = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert stops(ws) == []
    assert report.verdicts[0].reason == "CPU metrics could not be read; not judged idle"
    assert any("CPU metrics could not be read" in note for note in report.notes)


def test_no_metric_data_with_no_metrics_means_idle_is_still_idle():
    ws = MemoryWorkspace(WS, [instance("ci-quiet", op_ago=600)])
    eng, ledger = engine(ws, settings(NO_METRICS_MEANS="idle"), metrics=MemoryMetrics({"ci-quiet": cpu(has_data=False)}))
    marked(ledger, "ci-quiet")
    eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert stops(ws) == ["ci-quiet"]


def test_the_metrics_region_is_the_workspaces_own_location():
    ws = MemoryWorkspace(WS, [instance("ci", op_ago=600)], region="swedencentral")
    metrics = MemoryMetrics()
    engine(ws, metrics=metrics)[0].run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert metrics.regions == ["swedencentral"]


# --- the queue is a trust boundary --------------------------------------------------------------


def test_a_work_item_for_a_workspace_not_allowed_is_refused_before_any_read():
    ws = MemoryWorkspace(ResourceId.parse(OTHER), [instance()])
    eng, ledger = engine(ws)
    report = eng.run(WorkItem(Kind.IDLE_SWEEP, OTHER, "forged"), NOW)
    assert ws.calls == [] and ledger.calls == [] and report.notes[0].startswith("refused:")


# --- interrupted runs -----------------------------------------------------------------------------


def orphan(ledger: MemoryLedger, name: str, change: dict[str, object]) -> None:
    record = {"workspace": WS.id, "target": name, "reason": "idle 3h", "owner": "alice", **change}
    key = f"enforce|trigger-0|{record['kind']}|{compute_key(WS, name)}"
    ledger.claims[key] = {"Key": key, "Status": "claimed", "ClaimedAt": NOW - LEASE - timedelta(minutes=5), "Mode": "enforce",
                          "Workspace": WS.key, "Trigger": "trigger-0", "Record": json.dumps(record), "etag": "0"}


def test_a_stop_made_by_a_run_that_died_is_recorded_and_notified_by_the_next_run():
    ws = MemoryWorkspace(WS, [instance("ci-alice", state="Stopped")])
    eng, ledger = engine(ws)
    orphan(ledger, "ci-alice", {"kind": "stop-instance", "params": {}})
    report = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    (recovered,) = [o for o in report.outcomes if o.action.kind is ActionKind.STOP_INSTANCE]
    assert recovered.status is Status.DONE and "done by a run that stopped before recording it" in recovered.detail
    assert eng.notifier.sent == [recovered] and ledger.outcomes[0] == recovered
    assert next(iter(ledger.claims.values()))["Status"] == "done"


def test_a_write_a_dead_run_never_made_is_recorded_as_interrupted_and_decided_again():
    ws = MemoryWorkspace(WS, [cluster("cpu", min_nodes=2)])
    eng, ledger = engine(ws)
    orphan(ledger, "cpu", {"kind": "scale-cluster", "params": {"min_nodes": 0, "max_nodes": 4, "idle_s": 1800}})
    # The dead run had taken the cluster's cooldown slot just before it died.
    ledger.take_write(f"scale-cluster|{compute_key(WS, 'cpu')}", NOW - LEASE - timedelta(minutes=5), timedelta(0), "trigger-0")
    report = eng.run(sweep(Kind.CLUSTER_SWEEP, WS.id, NOW), NOW)
    interrupted = [o for o in report.outcomes if o.detail.startswith("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].status is Status.FAILED
    assert [o.detail for o in report.outcomes if o.status is Status.DONE] == ["scale cpu to min 0 max 4, scale down after 1800s: verified"]


def test_observe_mode_looks_for_no_interrupted_writes():
    ws = MemoryWorkspace(WS, [])
    eng, ledger = engine(ws, settings(AUTOPILOT_MODE="observe"))
    eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert "orphans" not in [c[0] for c in ledger.calls]


# --- the batch ----------------------------------------------------------------------------------


def test_a_transient_failure_of_one_write_lets_the_others_land_then_retries_the_item():
    ws = MemoryWorkspace(WS, [instance("a", op_ago=600), instance("b", op_ago=600)],
                         fail={"stop_instance:a": AzureError("stop a: HTTP 503", transient=True, status=503)})
    eng, ledger = engine(ws, metrics=MemoryMetrics({"a": cpu(), "b": cpu()}))
    marked(ledger, "a")
    marked(ledger, "b")
    with pytest.raises(TransientFailure):
        eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert [o.status for o in ledger.outcomes if o.action.kind is ActionKind.STOP_INSTANCE] == [Status.FAILED, Status.DONE]


def test_plan_and_the_idle_sweep_decide_alike():
    ws = MemoryWorkspace(WS, [instance("ci", op_ago=600), cluster("cpu")])
    eng, _ledger = engine(ws, metrics=MemoryMetrics({"ci": cpu()}))
    planned, _ = eng.plan(WS, NOW, marks={}, restores={})
    swept = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    idle_rules = {"idle-instance", "native-idle-shutdown"}
    assert [v for v in planned if v.rule in idle_rules] == swept.verdicts
    assert any(v.decision is Decision.WAIT for v in planned)


def test_a_mark_made_in_observe_mode_never_lets_the_first_enforce_sweep_stop_without_a_fresh_warning():
    ws = MemoryWorkspace(WS, [instance("ci-alice", op_ago=600)])
    eng, ledger = engine(ws, metrics=MemoryMetrics({"ci-alice": cpu()}))
    ledger.put_mark(Mark(compute_key(WS, "ci-alice"), NOW - timedelta(days=3), "idle", Mode.OBSERVE))
    report = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert stops(ws) == []
    assert [o.action.kind for o in report.outcomes] == [ActionKind.MARK_IDLE]
    assert ledger.marks()[compute_key(WS, "ci-alice")].mode is Mode.ENFORCE


def test_an_observe_mode_warning_says_nothing_will_be_stopped():
    ws = MemoryWorkspace(WS, [instance("ci-alice", op_ago=600)])
    eng, _ = engine(ws, settings(AUTOPILOT_MODE="observe"), metrics=MemoryMetrics({"ci-alice": cpu()}))
    eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    (warning,) = eng.notifier.sent
    assert "observe mode: nothing is stopped" in warning.detail


def test_a_warning_no_channel_took_is_sent_again_at_the_next_sweep_and_only_then_the_grace_starts():
    ws = MemoryWorkspace(WS, [instance("ci-alice", op_ago=600)])
    eng, ledger = engine(ws, metrics=MemoryMetrics({"ci-alice": cpu()}))
    eng.notifier.down = ("webhook",)
    first = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, NOW), NOW)
    assert [o.status for o in first.outcomes] == [Status.FAILED] and ledger.marks() == {}
    eng.notifier.down = ()
    later = NOW + timedelta(minutes=15)
    second = eng.run(sweep(Kind.IDLE_SWEEP, WS.id, later), later)
    assert [o.detail for o in second.outcomes] == ["marked idle; warning for owner alice sent via webhook; owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS"]
    assert ledger.marks()[compute_key(WS, "ci-alice")].marked_at == later


def test_a_name_matching_the_exempt_pattern_is_spared_on_the_re_read_too():
    from shared.guards import Attempt, ReRead, Run
    from shared.policy.common import Exemptions
    from tests.unit.test_guards import stop

    spared = ReRead(Exemptions("autopilot-exempt", settings(EXEMPT_NAME_PATTERN="^ci-").exempt_name_pattern))
    result = spared.check(Attempt(stop("CI-Alice"), Run("t", NOW, MemoryWorkspace(WS, [instance("CI-Alice")]))))
    assert result is not None and result.detail == "exempt: name matches '^ci-' (re-read)"


@pytest.mark.parametrize("item", [sweep(Kind.CLUSTER_SWEEP, WS.id, NOW),
                                  WorkItem(Kind.RUN_ENDED, WS.id, "evt-1", {"run": "old", "status": "Failed"})])
def test_a_cluster_judged_on_what_run_history_read_says_the_quiet_it_saw_not_since_creation(item):
    # A job that ended 3 days ago is before what run history is asked for: the reason says what was read.
    ws = MemoryWorkspace(WS, [cluster("cpu-cluster", min_nodes=2, current=0, created_ago=200 * 1440)],
                         jobs=[job("old", "Failed", compute="cpu-cluster", created_ago=3 * 1440 + 60, modified_ago=3 * 1440)])
    eng, _ledger = engine(ws)
    report = eng.run(item, NOW)
    reason = next(v.reason for v in report.verdicts if v.target == "cpu-cluster")
    assert "no active or queued job in the last" in reason and "200d" not in reason, reason

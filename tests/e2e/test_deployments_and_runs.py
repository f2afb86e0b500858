"""Failed online deployments and not-responding jobs, through the real adapters, the emulator and the ledger.

The demo workspace has four endpoints: scoring-api (canary Failed, 0 % traffic, 2 × Standard_DS3_v2),
churn-api (green Failed, 0 % traffic but 10 % mirror traffic), fraud-api (v2 Failed with 10 % of traffic,
v1 healthy) and edge-api (a Kubernetes deployment, Failed); and a serverless job NotResponding for 50
minutes. Every sweep runs the real engine in-process with an explicit `now`.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.engine import Engine, Report
from shared.model import Status
from shared.work import Kind, WorkItem, sweep
from tests.e2e.conftest import WS, World

CANARY = "scoring-api/deployments/canary"
SECRET = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
SILENT_JOB = "score-serverless-0107"


@pytest.fixture(autouse=True)
def prompt_operations(world: World) -> None:
    world.emulator.lro(polls=1)  # each long-running operation is polled once before it ends


def deployment_sweep(engine: Engine, now: datetime) -> Report:
    return engine.run(sweep(Kind.DEPLOYMENT_SWEEP, WS.id, now), now)


def outcomes(report: Report, target: str) -> list[tuple[str, str, str, str]]:
    return [(o.action.kind.value, o.status.value, o.detail, o.action.reason) for o in report.outcomes if o.action.target == target]


def deployments(world: World) -> dict[str, dict[str, Any]]:
    return world.emulator.state()["endpoints"][WS.id.lower()]


def deletes(world: World, since: int) -> list[str]:
    return [w["path"] for w in world.writes(since) if w["method"] == "DELETE"]


def test_a_failed_deployment_with_no_traffic_is_told_why_then_deleted_after_the_grace_period_releasing_its_cores(world: World):
    settings = world.settings(FAILED_DEPLOYMENT_GRACE_MINUTES="120")
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    start = world.mark()

    first = deployment_sweep(engine, now)
    ((kind, status, detail, reason),) = outcomes(first, CANARY)
    assert (kind, status) == ("mark-failed-deployment", "done")
    assert "0 % traffic and 0 % mirror traffic" in reason and "2 × Standard_DS3_v2 (8 cores of quota)" in reason
    assert "FileNotFoundError: /var/azureml-app/model/model.pkl" in reason  # why, from the inference server's log
    assert SECRET not in reason and "AZURE_STORAGE_KEY=[redacted]" in reason
    assert f"{WS.id}/onlineEndpoints/{CANARY}".lower() in ledger.marks()
    logs = [e for e in world.emulator.journal(start) if e["path"].endswith("/getLogs")]
    assert {e["body"]["containerType"] for e in logs} == {"InferenceServer"} and {e["body"]["tail"] for e in logs} == {50}
    assert not deletes(world, start)

    waiting = deployment_sweep(engine, now + timedelta(minutes=30))
    assert not outcomes(waiting, CANARY) and not deletes(world, start)

    later = now + timedelta(minutes=121)
    before_delete = world.mark()
    done = deployment_sweep(engine, later)
    ((kind, status, detail, _),) = outcomes(done, CANARY)
    assert (kind, status) == ("delete-deployment", "done") and detail.endswith("verified") and "freeing 8 cores" in detail
    assert deletes(world, before_delete) == [WS.path("onlineEndpoints", "scoring-api", "deployments", "canary")]
    assert "canary" not in deployments(world)["scoring-api"]["deployments"]
    assert f"{WS.id}/onlineEndpoints/{CANARY}".lower() not in ledger.marks()
    # The delete's calls: re-read of the deployment and of its endpoint's traffic, DELETE, the operation's polls, the verifying read.
    calls = [(e["method"], e["path"].rsplit("/", 1)[-1], e["status"]) for e in world.emulator.journal(before_delete)
             if e["service"] == "arm" and ("/deployments/canary" in e["path"] or e["path"].endswith("/onlineEndpoints/scoring-api")
                                          or "/mfeOperationsStatus/" in e["path"])]
    operation = calls[3][1]
    assert calls == [("GET", "canary", 200), ("GET", "scoring-api", 200), ("DELETE", "canary", 202),
                     ("GET", operation, 200), ("GET", operation, 200), ("GET", "canary", 404)]


def test_never_delete_a_deployment_that_receives_traffic_or_mirror_traffic_even_if_it_failed(world: World):
    settings = world.settings(FAILED_DEPLOYMENT_GRACE_MINUTES="0")
    engine = world.engine(settings)
    now = datetime.now(UTC)
    start = world.mark()
    first = deployment_sweep(engine, now)
    (mirror,) = outcomes(first, "churn-api/deployments/green")
    assert "endpoint churn-api sends it 0 % of traffic and 10 % of mirror traffic" in mirror[3] and "never deleted" in mirror[3]
    assert "healthy deployments that could take it: blue" in mirror[3] and "No module named 'xgboost'" in mirror[3]
    (live,) = outcomes(first, "fraud-api/deployments/v2")
    assert "10 % of traffic" in live[3] and "that share is at risk" in live[3] and "could take it: v1" in live[3]
    for minutes in (5, 600):  # long past the grace period
        later = deployment_sweep(engine, now + timedelta(minutes=minutes))
        assert not outcomes(later, "churn-api/deployments/green") and not outcomes(later, "fraud-api/deployments/v2")
    assert all("green" not in p and "/v2" not in p for p in deletes(world, start))
    state = deployments(world)
    assert state["churn-api"]["deployments"]["green"] == "Failed" and state["fraud-api"]["deployments"]["v2"] == "Failed"


def test_a_kubernetes_deployment_that_failed_is_reported_and_never_changed(world: World):
    engine = world.engine(world.settings(FAILED_DEPLOYMENT_GRACE_MINUTES="0"))
    now = datetime.now(UTC)
    start = world.mark()
    ((kind, status, _, reason),) = outcomes(deployment_sweep(engine, now), "edge-api/deployments/blue")
    assert (kind, status) == ("mark-failed-deployment", "done") and "failed Kubernetes deployment: reported, never changed" in reason
    assert "ImagePullBackOff" in reason
    assert not outcomes(deployment_sweep(engine, now + timedelta(hours=3)), "edge-api/deployments/blue")
    assert not [p for p in deletes(world, start) if "edge-api" in p]


def test_a_deployment_that_recovered_during_the_grace_period_is_kept(world: World):
    settings = world.settings(FAILED_DEPLOYMENT_GRACE_MINUTES="60")
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    start = world.mark()
    deployment_sweep(engine, now)
    assert f"{WS.id}/onlineEndpoints/{CANARY}".lower() in ledger.marks()

    recovered = copy.deepcopy(world.scenario)  # an operator fixed the model: the deployment is Succeeded now
    canary = recovered["workspaces"][0]["onlineEndpoints"][2]["deployments"][1]
    assert canary["name"] == "canary"
    canary["state"] = "Succeeded"
    world.emulator.reset(recovered)

    kept = deployment_sweep(engine, now + timedelta(minutes=61))
    assert [(k, s) for k, s, _, _ in outcomes(kept, CANARY)] == [("clear-mark", "done")]
    assert "recovered" in outcomes(kept, CANARY)[0][3]
    assert f"{WS.id}/onlineEndpoints/{CANARY}".lower() not in ledger.marks()
    assert not deletes(world, start)


def test_in_observe_mode_a_due_delete_is_planned_and_nothing_is_deleted(world: World):
    settings = world.settings("observe", FAILED_DEPLOYMENT_GRACE_MINUTES="0")
    engine = world.engine(settings)
    now = datetime.now(UTC)
    start = world.mark()
    deployment_sweep(engine, now)
    planned = deployment_sweep(engine, now + timedelta(minutes=1))
    assert [(k, s) for k, s, _, _ in outcomes(planned, CANARY)] == [("delete-deployment", "planned")]
    assert not deletes(world, start)


def not_responding(engine: Engine, now: datetime, run: str | None = SILENT_JOB) -> Report:
    params = {"run": run} if run else {}
    return engine.run(WorkItem(Kind.NOT_RESPONDING, WS.id, f"evt-{now.timestamp()}", params), now)


def test_a_not_responding_run_is_reported_with_its_owner_and_a_studio_link_and_never_cancelled_without_the_opt_in(world: World):
    engine = world.engine(world.settings())
    now = datetime.now(UTC)
    start = world.mark()
    report = not_responding(engine, now)
    ((kind, status, _, reason),) = outcomes(report, SILENT_JOB)
    assert (kind, status) == ("notify", "done")
    assert "owner bob@contoso.com" in reason and "not responded for 50m" in reason
    assert f"https://ml.azure.com/runs/{SILENT_JOB}?wsid={WS.id}" in reason and "cancelling is opt-in" in reason
    assert not [w for w in world.writes(start) if w["path"].endswith("/cancel")]
    reads = [e["path"] for e in world.emulator.journal(start) if e["service"] == "arm"]
    assert reads == [WS.path("jobs", SILENT_JOB)]  # the event's run: one read


def test_cancel_a_not_responding_run_only_with_the_opt_in_and_only_past_its_limit(world: World):
    now = datetime.now(UTC)
    start = world.mark()
    patient = world.engine(world.settings(NOT_RESPONDING_CANCEL_MINUTES="60"))
    assert [o.action.kind.value for o in not_responding(patient, now).outcomes] == ["notify"]  # 50m < 60m
    assert not [w for w in world.writes(start) if w["path"].endswith("/cancel")]

    strict = world.engine(world.settings(NOT_RESPONDING_CANCEL_MINUTES="30"))
    report = not_responding(strict, now, run=None)  # the Not Responding Runs alert: every job is looked at
    kinds = {o.action.kind.value: o for o in report.outcomes}
    assert kinds["cancel-job"].status is Status.DONE and kinds["cancel-job"].detail.endswith("verified")
    assert [w["path"] for w in world.writes(start) if w["path"].endswith("/cancel")] == [WS.path("jobs", SILENT_JOB, "cancel")]
    job = next(j for j in world.emulator.ml_workspace()["jobs"] if j["name"] == SILENT_JOB)
    assert job["status"] in ("CancelRequested", "Canceled")

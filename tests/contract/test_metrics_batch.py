"""The app's Metrics adapter: concurrent workers share metrics:getBatch calls (up to 50 workspaces each)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.metrics import Metrics
from shared.errors import AzureError
from shared.model import ResourceId
from shared.settings import Settings

SUB = "00000000-0000-0000-0000-000000000001"
OTHER_SUB = "00000000-0000-0000-0000-000000000002"
NS = "Microsoft.MachineLearningServices/workspaces"


def ws(i: int, sub: str = SUB) -> ResourceId:
    return ResourceId.parse(f"/subscriptions/{sub}/resourceGroups/rg/providers/{NS}/mlw-{i:02d}")


def cpu(workspace: ResourceId, compute: str, value: float) -> dict[str, Any]:
    return {"resourceId": workspace.id, "namespace": NS, "name": "CpuUtilizationPercentage", "dimensions": {"ComputeName": compute},
            "series": {"from": "now-3h", "value": value}}


def scenario(workspaces: list[ResourceId]) -> dict[str, Any]:
    # Instance "ci" is busy in even workspaces and quiet in odd ones: a mixed-up answer would show.
    return {"subscriptionId": SUB, "metrics": [cpu(w, "ci", 50.0 if i % 2 == 0 else 1.0) for i, w in enumerate(workspaces)]}


def ask_together(metrics: Metrics, workspaces: list[ResourceId]) -> dict[str, Any]:
    now = datetime.now(UTC)
    answers: dict[str, Any] = {}
    barrier = threading.Barrier(len(workspaces))

    def one(w: ResourceId) -> None:
        barrier.wait()
        try:
            answers[w.name] = metrics.cpu_activity(w, "westeurope", ["ci"], now, timedelta(hours=2), 5)["ci"]
        except AzureError as exc:
            answers[w.name] = exc

    threads = [threading.Thread(target=one, args=(w,)) for w in workspaces]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


@pytest.fixture
def metrics(emulator, credential) -> Metrics:
    settings = Settings.from_env({"ALLOWED_WORKSPACES": ws(0).id, "ARM_ENDPOINT": emulator.url, "MONITOR_METRICS_ENDPOINT": emulator.url},
                                 require_storage=False)
    return Metrics(settings, credential, window_s=0.5)


def test_workers_asking_together_in_one_subscription_share_one_getbatch_and_each_gets_its_own_answer(emulator, metrics):
    workspaces = [ws(i) for i in range(6)]
    emulator.reset(scenario(workspaces))
    answers = ask_together(metrics, workspaces)
    assert [answers[w.name].last_busy_at is not None for w in workspaces] == [True, False, True, False, True, False]
    assert all(answers[w.name].has_data for w in workspaces)
    (call,) = [e for e in emulator.journal() if e["service"] == "monitor"]
    assert sorted(call["body"]["resourceids"]) == sorted(w.id.lower() for w in workspaces)
    assert metrics.calls == 1


def test_a_batch_holds_at_most_fifty_workspaces_and_subscriptions_never_share_one(emulator, metrics):
    workspaces = [ws(i) for i in range(55)] + [ws(0, OTHER_SUB)]
    emulator.reset(scenario(workspaces))
    answers = ask_together(metrics, workspaces)
    assert not [a for a in answers.values() if isinstance(a, Exception)]
    calls = [e for e in emulator.journal() if e["service"] == "monitor"]
    assert all(len(c["body"]["resourceids"]) <= 50 for c in calls)
    assert {c["path"].split("/")[2] for c in calls} == {SUB, OTHER_SUB}
    assert sum(len(c["body"]["resourceids"]) for c in calls) == 56 and len(calls) <= 4


def test_a_failed_shared_call_fails_every_worker_of_the_batch(emulator, metrics):
    workspaces = [ws(i) for i in range(3)]
    emulator.reset(scenario(workspaces))
    emulator.fault(method="POST", path="metrics:getBatch", status=400, times=5)
    answers = ask_together(metrics, workspaces)
    assert all(isinstance(a, AzureError) and "CPU metrics of" in str(a) for a in answers.values())


def test_an_answer_that_names_no_workspace_asked_for_fails_the_batch_rather_than_lend_one_workspace_anothers_cpu(emulator, metrics):
    workspaces = [ws(0), ws(1)]
    emulator.reset(scenario(workspaces))
    at = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")

    def answer(value: float) -> dict[str, Any]:  # a metric whose id names no resource
        series = [{"metadatavalues": [{"name": {"value": "ComputeName"}, "value": "ci"}], "data": [{"timeStamp": at, "maximum": value}]}]
        return {"starttime": at, "endtime": at, "interval": "PT1M", "namespace": NS.lower(), "resourceregion": "westeurope",
                "value": [{"id": "", "type": "Microsoft.Insights/metrics", "name": {"value": "CpuUtilizationPercentage"},
                           "unit": "Percent", "timeseries": series, "errorCode": "Success"}]}

    emulator.fault(method="POST", path="metrics:getBatch", status=200, body={"values": [answer(1.0), answer(50.0)]}, times=1)
    answers = ask_together(metrics, workspaces)
    assert all(isinstance(a, AzureError) and "names no workspace asked for" in str(a) for a in answers.values()), answers

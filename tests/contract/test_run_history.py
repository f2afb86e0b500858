"""Run history's runs-by-compute, as the emulator serves it and the app's workspace adapter reads it:
the jobs on one compute that are not finished or ended lately, at a cost that follows them, not the
workspace's history; and ARM's complete list whenever run history cannot answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient
from local.stack import app_settings

pytestmark = pytest.mark.usefixtures("demo")

RUNS = f"/history/v1.0{DEMO_WORKSPACE_ID}/computes/{{}}/runs"


def _bulk(emulator: EmulatorClient, count: int, **spec: Any) -> None:
    emulator.control("POST", "arm/jobs:bulk", {"workspace": DEMO_WORKSPACE_ID, "count": count, **spec})


def _job(emulator: EmulatorClient, **job: Any) -> None:
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": job})


def _seq(emulator: EmulatorClient) -> int:
    journal = emulator.journal()
    return journal[-1]["seq"] if journal else 0


def _workspace(emulator: EmulatorClient, **extra: str) -> Any:
    from shared.adapters.aml import Workspace
    from shared.model import ResourceId
    from shared.settings import Settings

    env = {**app_settings(emulator.url, emulator.ca, emulator.identity_header, "UseDevelopmentStorage=true"), **extra}
    return Workspace(Settings.from_env(env), ResourceId.parse(DEMO_WORKSPACE_ID))


def _runs(emulator: EmulatorClient, credential: Any, compute: str, **query: str) -> Any:
    from urllib.parse import urlencode

    path = RUNS.format(compute) + ("?" + urlencode(query) if query else "")
    return emulator.arm(credential, "GET", path, api_version="v1.0")


def test_the_workspace_names_its_discovery_document_and_that_names_run_history(emulator: EmulatorClient, credential: Any) -> None:
    body = emulator.arm(credential, "GET", DEMO_WORKSPACE_ID).json()
    import requests

    document = requests.get(body["properties"]["discoveryUrl"], verify=emulator.ca, timeout=10).json()
    assert document["history"] == emulator.url and {"api", "experimentation", "studio"} <= set(document)


def test_runs_by_compute_filter_by_status_the_way_aml_sdks_spell_it(emulator: EmulatorClient, credential: Any) -> None:
    _bulk(emulator, 300, computes=["cpu-cluster"], activeEvery=100, since="now-30d")
    active = _runs(emulator, credential, "CPU-Cluster", **{"$filter": "Status ne 'Completed' and Status ne 'Failed' and Status ne 'Canceled'"})
    assert active.status_code == 200
    names = {r["runId"] for r in active.json()["value"]}
    assert {"job-0000000", "job-0000100", "job-0000200"} <= names
    assert all(r["status"] not in ("Completed", "Failed", "Canceled") for r in active.json()["value"])
    bare = _runs(emulator, credential, "cpu-cluster", **{"$filter": "(Status eq Running)"})  # the v1 SDK's unquoted form
    assert {r["runId"] for r in bare.json()["value"]} >= {"job-0000000", "job-0000100", "job-0000200"}


def test_a_filter_run_history_does_not_understand_is_a_400_naming_it(emulator: EmulatorClient, credential: Any) -> None:
    refused = _runs(emulator, credential, "cpu-cluster", **{"$filter": "Colour eq 'red'"})
    assert refused.status_code == 400 and "Colour" in refused.json()["error"]["message"]
    assert _runs(emulator, credential, "cpu-cluster", **{"$filter": "(Status eq 'Running'"}).status_code == 400


def test_runs_by_compute_page_by_continuation_token(emulator: EmulatorClient, credential: Any) -> None:
    _bulk(emulator, 250, computes=["gpu-cluster"], since="now-3d")
    first = _runs(emulator, credential, "gpu-cluster").json()
    assert len(first["value"]) == 100 and first["continuationToken"] and first["nextLink"].startswith(emulator.url)
    created = [r["createdUtc"] for r in first["value"]]
    assert created == sorted(created, reverse=True)
    assert _runs(emulator, credential, "gpu-cluster", **{"$continuationtoken": "forged"}).status_code == 400


def test_run_history_needs_an_arm_token(emulator: EmulatorClient) -> None:
    import requests

    response = requests.get(emulator.url + RUNS.format("cpu-cluster"), verify=emulator.ca, timeout=10)
    assert response.status_code == 401


def test_a_job_running_for_three_weeks_under_100000_finished_ones_is_found_in_one_request(emulator: EmulatorClient) -> None:
    _job(emulator, name="long-train", status="Running", compute="cpu-cluster", createdAt="now-21d")
    _bulk(emulator, 100_000, computes=["cpu-cluster", "ci-alice"], since="now-400d")
    seq = _seq(emulator)
    now = datetime.now(UTC)
    listed = _workspace(emulator).jobs_on(["cpu-cluster", "ci-alice"], now - timedelta(hours=1))
    assert [j.name for j in listed.active_on("cpu-cluster")] == ["long-train"]
    runs = emulator.journal(seq, path="/runs")
    assert len(runs) == 2 and not emulator.journal(seq, path="/jobs")


def test_a_job_that_ended_within_the_lookback_marks_where_idleness_starts(emulator: EmulatorClient) -> None:
    _job(emulator, name="just-done", status="Completed", compute="ci-alice", createdAt="now-50m", endedAt="now-10m")
    _job(emulator, name="long-done", status="Completed", compute="ci-alice", createdAt="now-5d", endedAt="now-4d")
    listed = _workspace(emulator).jobs_on(["ci-alice"], datetime.now(UTC) - timedelta(hours=1))
    ended = [j for j in listed.jobs if j.runs_on("ci-alice") and not j.active]
    assert [j.name for j in ended] == ["just-done"]


def test_a_pipeline_step_is_a_run_on_its_own_compute(emulator: EmulatorClient) -> None:
    _job(emulator, name="pipe-1", status="Running", compute="cpu-cluster", jobType="Pipeline",
         steps={"prep": "ci-bob", "train": "gpu-cluster"})
    listed = _workspace(emulator).jobs_on(["gpu-cluster", "ci-bob"], datetime.now(UTC) - timedelta(hours=1))
    assert "pipe-1_train" in [j.name for j in listed.active_on("gpu-cluster")]
    assert "pipe-1_prep" in [j.name for j in listed.active_on("ci-bob")]


def test_the_re_read_before_a_write_is_one_request_for_that_compute(emulator: EmulatorClient) -> None:
    _bulk(emulator, 5000, computes=["cpu-cluster"], since="now-100d")
    _job(emulator, name="late-1", status="Queued", compute="CI-Alice", createdAt="now")
    seq = _seq(emulator)
    busy = _workspace(emulator).active_jobs("ci-alice")
    assert "late-1" in [j.name for j in busy]
    arm = [e for e in emulator.journal(seq) if e["service"] == "arm"]
    runs = emulator.journal(seq, path="/runs")
    assert len(runs) == 1 and [e["path"] for e in arm] == [DEMO_WORKSPACE_ID]  # the workspace (its discovery URL) once


@pytest.mark.parametrize("status", [403, 404, 400])
def test_when_run_history_refuses_the_whole_arm_list_decides(emulator: EmulatorClient, status: int) -> None:
    from shared.jobs import JobsUnavailable

    _job(emulator, name="long-train", status="Running", compute="cpu-cluster", createdAt="now-21d")
    emulator.fault(method="GET", path="/runs$", status=status, times=10)
    ws = _workspace(emulator)
    with pytest.raises(JobsUnavailable, match=f"HTTP {status}"):
        ws.jobs_on(["cpu-cluster"], datetime.now(UTC))
    seq = _seq(emulator)
    assert [j.name for j in ws.active_jobs("cpu-cluster")] == ["long-train"]
    assert emulator.journal(seq, path="/jobs")  # ARM's list was read


@pytest.mark.parametrize("page", [{"value": "none"}, {"nextLink": None}, [1, 2]])
def test_a_runs_page_that_is_no_list_is_unavailable_not_empty(emulator: EmulatorClient, page: Any) -> None:
    from shared.jobs import JobsUnavailable

    emulator.fault(method="GET", path="/runs$", status=200, body=page, times=1)
    with pytest.raises(JobsUnavailable, match="no page of runs"):
        _workspace(emulator).jobs_on(["cpu-cluster"], datetime.now(UTC))


def test_a_next_link_that_leaves_run_history_is_unavailable(emulator: EmulatorClient) -> None:
    from shared.jobs import JobsUnavailable

    emulator.fault(method="GET", path="/runs$", status=200, times=1,
                   body={"value": [], "nextLink": "https://attacker.example/history/v1.0/x/runs?$continuationtoken=a"})
    with pytest.raises(JobsUnavailable, match="leaves the history service"):
        _workspace(emulator).jobs_on(["cpu-cluster"], datetime.now(UTC))


def test_jobs_source_arm_never_asks_run_history(emulator: EmulatorClient) -> None:
    from shared.jobs import JobsUnavailable

    seq = _seq(emulator)
    ws = _workspace(emulator, JOBS_SOURCE="arm")
    with pytest.raises(JobsUnavailable, match="JOBS_SOURCE is arm"):
        ws.jobs_on(["cpu-cluster"], datetime.now(UTC))
    ws.active_jobs("cpu-cluster")
    assert not emulator.journal(seq, path="/runs")


def test_a_pipeline_step_not_started_yet_is_no_run_but_still_keeps_its_instance_from_a_stop(emulator: EmulatorClient) -> None:
    _job(emulator, name="pipe-2", status="Running", compute="cpu-cluster", jobType="Pipeline",
         steps={"prep": "cpu-cluster", "score": "ci-alice"}, waiting=["score"])
    ws = _workspace(emulator)
    assert ws.jobs_on(["ci-alice"], datetime.now(UTC)).active_on("ci-alice") == []  # run history: nothing there yet
    seq = _seq(emulator)
    assert [j.name for j in ws.active_jobs("ci-alice")] == []  # a shrink's re-read: run history alone
    assert [j.name for j in ws.active_jobs("ci-alice", pipelines=True)] == ["pipe-2"]  # a stop's: the pipelines too
    pipeline_pages = [e for e in emulator.journal(seq, path="/jobs") if e["query"].get("jobType") == "Pipeline"]
    assert len(pipeline_pages) == 1


def test_the_jobs_list_filters_by_job_type(emulator: EmulatorClient, credential: Any) -> None:
    _job(emulator, name="pipe-3", status="Completed", compute="cpu-cluster", jobType="Pipeline", steps={"a": "cpu-cluster"})
    _bulk(emulator, 150)
    body = emulator.arm(credential, "GET", f"{DEMO_WORKSPACE_ID}/jobs?jobType=Pipeline&listViewType=All").json()
    assert body["value"] and all(j["properties"]["jobType"] == "Pipeline" for j in body["value"]) and body["nextLink"] is None


@pytest.mark.parametrize("url", [
    "https://evil.example\\.westus.api.azureml.ms/discovery", "https://evilapi.azureml.ms/discovery",
    "https://api.azureml.ms.evil.example/discovery", "https://user:pw@westus.api.azureml.ms/discovery",
    "http://westus.api.azureml.ms/discovery", "https://westus.api.azureml.ms:8443/discovery", "https://[oops",
    "https://x%2f.api.azureml.ms/", "https://x;y.api.azureml.ms/", "https://westus.api.azureml.ms:99999/", None, 42,
    "https://westus.api.azureml.ms\n", "https://westus.api.azureml.ms:443\n",
])
def test_a_discovery_url_the_token_must_not_follow_is_unavailable_and_arm_decides(emulator: EmulatorClient, url: Any) -> None:
    from shared.adapters.runhistory import RunHistory, allowed_host
    from shared.jobs import JobsUnavailable
    from shared.model import ResourceId

    ws = _workspace(emulator)
    assert not allowed_host(url, ws.settings.arm_endpoint)
    history = RunHistory(ws.settings, ResourceId.parse(DEMO_WORKSPACE_ID + "x"), url)
    with pytest.raises(JobsUnavailable, match="discovery URL"):
        history.runs_on("cpu-cluster")


@pytest.mark.parametrize("run", [{"status": "Running"}, {"runId": "x" * 300, "status": "Running"}, {"runId": 7}, "run-1", None])
def test_a_run_that_cannot_be_named_is_unavailable_not_skipped(emulator: EmulatorClient, run: Any) -> None:
    from shared.jobs import JobsUnavailable

    emulator.fault(method="GET", path="/runs$", status=200, body={"value": [run], "continuationToken": None}, times=1)
    with pytest.raises(JobsUnavailable, match="readable runId"):
        _workspace(emulator).jobs_on(["ci-alice"], datetime.now(UTC))


def test_a_next_link_no_parser_reads_is_unavailable_not_a_crash(emulator: EmulatorClient) -> None:
    from shared.jobs import JobsUnavailable

    emulator.fault(method="GET", path="/runs$", status=200, times=1, body={"value": [], "nextLink": "https://[oops/x"})
    with pytest.raises(JobsUnavailable):
        _workspace(emulator).jobs_on(["ci-alice"], datetime.now(UTC))


@pytest.mark.parametrize("ended", [None, "", "garbage", "2026-12-02 07:51:30"])
def test_a_finished_run_that_does_not_say_when_it_ended_is_unavailable_not_an_old_quiet(emulator: EmulatorClient, ended: Any) -> None:
    # Its end is where the compute's quiet starts: read as the run's creation it would make the compute look free.
    from shared.jobs import JobsUnavailable

    run = {"runId": "train-1", "status": "Completed", "createdUtc": "2026-12-02T02:00:00Z", "endTimeUtc": ended}
    emulator.fault(method="GET", path="/runs$", status=200, body={"value": [run], "continuationToken": None}, times=1)
    with pytest.raises(JobsUnavailable, match="no readable endTimeUtc"):
        _workspace(emulator).jobs_on(["cpu-cluster"], datetime.now(UTC) - timedelta(minutes=45))


def test_one_run_named_on_two_computes_keeps_both_busy(emulator: EmulatorClient) -> None:
    run = {"runId": "train-7", "status": "Running"}  # no target: each compute's answer names it
    emulator.fault(method="GET", path="/runs$", status=200, body={"value": [run], "continuationToken": None}, times=2)
    listed = _workspace(emulator).jobs_on(["cpu-cluster", "gpu-cluster"], datetime.now(UTC))
    assert [j.name for j in listed.active_on("cpu-cluster")] == [j.name for j in listed.active_on("gpu-cluster")] == ["train-7"]


@pytest.mark.parametrize("compute", ["..", ".", ""])
def test_a_compute_name_that_is_a_dot_segment_is_never_requested(emulator: EmulatorClient, compute: str) -> None:
    from shared.jobs import JobsUnavailable

    seq = _seq(emulator)
    with pytest.raises(JobsUnavailable):
        _workspace(emulator).jobs_on([compute], datetime.now(UTC))
    assert not emulator.journal(seq, path="/runs")


def test_a_compute_with_more_pages_of_runs_than_the_bound_is_unavailable(emulator: EmulatorClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters import runhistory
    from shared.jobs import JobsUnavailable

    monkeypatch.setattr(runhistory, "MAX_PAGES", 2)
    for n in range(3):
        _job(emulator, name=f"busy-{n}", status="Running", compute="cpu-cluster")
    emulator.control("POST", "paging", {"pageSize": 1})
    try:
        with pytest.raises(JobsUnavailable, match="more than 2 pages"):
            _workspace(emulator).jobs_on(["cpu-cluster"], datetime.now(UTC))
    finally:
        emulator.control("POST", "paging", {"pageSize": 100})

"""ARM's paged lists as the emulator serves them, read by the real azure-ai-ml and by the app's own
workspace adapter reading ARM's list (JOBS_SOURCE=arm, and the fallback when run history cannot answer) (raw pages, digested as they stream; the re-read before a write reads the newest)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient
from local.stack import app_settings

pytestmark = pytest.mark.usefixtures("demo")

DEMO = json.loads((Path(__file__).parents[2] / "local/emulator/scenarios/demo.json").read_text())
DEMO_JOBS = len(DEMO["workspaces"][0]["jobs"])  # the demo workspace's own jobs, before the bulk ones


def _bulk(emulator: EmulatorClient, count: int, **spec: Any) -> None:
    emulator.control("POST", "arm/jobs:bulk", {"workspace": DEMO_WORKSPACE_ID, "count": count, **spec})


def _seq(emulator: EmulatorClient) -> int:
    journal = emulator.journal()
    return journal[-1]["seq"] if journal else 0


def _workspace(emulator: EmulatorClient) -> Any:
    from shared.adapters.aml import Workspace
    from shared.model import ResourceId
    from shared.settings import Settings

    # ARM's list alone: what a sweep reads when run history cannot answer (tests/contract/test_run_history.py).
    env = {**app_settings(emulator.url, emulator.ca, emulator.identity_header, "UseDevelopmentStorage=true"), "JOBS_SOURCE": "arm"}
    return Workspace(Settings.from_env(env), ResourceId.parse(DEMO_WORKSPACE_ID))


def test_the_jobs_list_comes_in_pages_newest_first_linked_by_a_skip_token(emulator: EmulatorClient, credential: Any) -> None:
    _bulk(emulator, 247, computes=["cpu-cluster"], since="now-30d")
    seq = _seq(emulator)
    first = emulator.arm(credential, "GET", f"{DEMO_WORKSPACE_ID}/jobs").json()
    assert len(first["value"]) == 100
    link = urlsplit(first["nextLink"])
    assert f"{link.scheme}://{link.netloc}" == emulator.url and "$skipToken" in parse_qs(link.query)
    created = [j["systemData"]["createdAt"] for j in first["value"]]
    assert created == sorted(created, reverse=True)
    pages = 1
    while first["nextLink"]:
        nxt = urlsplit(first["nextLink"])
        first = emulator.arm(credential, "GET", f"{nxt.path}?{nxt.query}", api_version=None).json()
        pages += 1
    assert pages == 3 and len(first["value"]) == 247 + DEMO_JOBS - 200
    assert len(emulator.journal(seq, path="/jobs")) == 3


def test_azure_ai_ml_follows_the_next_links_to_every_job(emulator: EmulatorClient, ml: Any) -> None:
    _bulk(emulator, 250, computes=["cpu-cluster", "ci-alice"], activeEvery=50)
    names = [j.name for j in ml.jobs.list()]
    assert len(names) == len(set(names)) == 250 + DEMO_JOBS


def test_a_forged_skip_token_is_a_bad_request(emulator: EmulatorClient, credential: Any) -> None:
    response = emulator.arm(credential, "GET", f"{DEMO_WORKSPACE_ID}/jobs?$skipToken=not-ours")
    assert response.status_code == 400


def test_paging_can_be_switched_off_for_one_page_answers(emulator: EmulatorClient, credential: Any) -> None:
    _bulk(emulator, 150)
    emulator.control("POST", "paging", {"pageSize": 0})
    try:
        body = emulator.arm(credential, "GET", f"{DEMO_WORKSPACE_ID}/jobs").json()
        assert len(body["value"]) == 150 + DEMO_JOBS and body["nextLink"] is None
    finally:
        emulator.control("POST", "paging", {"pageSize": 100})


def test_a_job_running_for_three_weeks_under_thousands_of_newer_ones_still_protects_its_compute(emulator: EmulatorClient) -> None:
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "long-train", "status": "Running", "compute": "cpu-cluster", "createdAt": "now-21d"}})
    _bulk(emulator, 2000, computes=["cpu-cluster", "ci-alice"], since="now-20d")
    listed = _workspace(emulator).list_jobs()
    assert listed.seen == 2000 + DEMO_JOBS + 1
    assert [j.name for j in listed.active_on("cpu-cluster")] == ["long-train"]
    # What a run keeps is the active jobs and each compute's last finished one, not the two thousand.
    assert len(listed.jobs) <= len(listed.active) + 4


def test_the_digest_keeps_each_computes_latest_finished_job_for_idleness(emulator: EmulatorClient) -> None:
    _bulk(emulator, 300, computes=["ci-alice"], since="now-10d")
    listed = _workspace(emulator).list_jobs()
    (last,) = [j for j in listed.jobs if j.runs_on("ci-alice")]
    assert last.name == "job-0000299" and last.status == "Completed"


def test_the_re_read_before_a_write_reads_one_page_and_finds_a_job_submitted_since_the_listing(emulator: EmulatorClient) -> None:
    _bulk(emulator, 1000, computes=["cpu-cluster"], since="now-100d")
    ws = _workspace(emulator)
    listed = ws.list_jobs()
    assert listed.active_on("ci-alice") == []
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "late-1", "status": "Queued", "compute": "CI-Alice", "createdAt": "now"}})
    seq = _seq(emulator)
    busy = ws.active_jobs("ci-alice", listed.horizon, [])
    assert [j.name for j in busy] == ["late-1"]
    assert len(emulator.journal(seq, path="/jobs")) == 1


def test_the_re_read_reads_by_name_the_jobs_the_listing_found_active(emulator: EmulatorClient) -> None:
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "old-run", "status": "Paused", "compute": "ci-alice", "createdAt": "now-40d"}})
    _bulk(emulator, 500, computes=["cpu-cluster"], since="now-30d")
    ws = _workspace(emulator)
    listed = ws.list_jobs()
    seq = _seq(emulator)
    busy = ws.active_jobs("ci-alice", listed.horizon, listed.active_on("ci-alice"))
    assert [(j.name, j.status) for j in busy] == [("old-run", "Paused")]
    assert [e["path"].rsplit("/", 1)[-1] for e in emulator.journal(seq, path="/jobs")] == ["jobs", "old-run"]


def test_without_a_listing_the_re_read_reads_the_whole_list(emulator: EmulatorClient) -> None:
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "old-run", "status": "NotResponding", "compute": "ci-alice", "createdAt": "now-40d"}})
    _bulk(emulator, 250, computes=["cpu-cluster"], since="now-30d")
    seq = _seq(emulator)
    assert [j.name for j in _workspace(emulator).active_jobs("ci-alice")] == ["old-run"]
    assert len(emulator.journal(seq, path="/jobs")) == 3


def test_a_pipeline_protects_every_compute_its_steps_name(emulator: EmulatorClient) -> None:
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "pipe-1", "status": "Running", "compute": "cpu-cluster", "jobType": "Pipeline",
        "steps": {"prep": "ci-alice", "train": "gpu-cluster"}}})
    listed = _workspace(emulator).list_jobs()
    assert {c: [j.name for j in listed.active_on(c)] for c in ("cpu-cluster", "ci-alice", "gpu-cluster", "ci-bob")} == {
        "cpu-cluster": ["pipe-1"], "ci-alice": ["pipe-1"], "gpu-cluster": ["pipe-1"], "ci-bob": ["train-bob-0001"]}


def test_the_margin_covers_a_job_indexed_late(emulator: EmulatorClient) -> None:
    from shared.jobs import HORIZON_MARGIN

    _bulk(emulator, 300, computes=["cpu-cluster"], since="now-300m")
    ws = _workspace(emulator)
    listed = ws.list_jobs()
    late = listed.horizon - HORIZON_MARGIN + timedelta(minutes=1)
    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "late-indexed", "status": "Queued", "compute": "ci-alice", "createdAt": late.isoformat()}})
    assert [j.name for j in ws.active_jobs("ci-alice", listed.horizon, [])] == ["late-indexed"]


def test_the_computes_list_is_paged_too_and_every_compute_is_read(emulator: EmulatorClient, demo_scenario: dict[str, Any]) -> None:
    import copy

    scenario = copy.deepcopy(demo_scenario)
    ws = next(w for w in scenario["workspaces"] if w["name"] == "mlw-demo")
    ws["computes"] += [{"name": f"cluster-{i:03d}", "type": "AmlCompute", "size": "Standard_DS3_v2", "minNodes": 0, "maxNodes": 2,
                        "idleTimeBeforeScaleDown": "PT600S", "nodes": [], "createdAt": "now-1d"} for i in range(120)]
    emulator.reset(scenario)
    seq = _seq(emulator)
    names = {c.name for c in _workspace(emulator).list_computes()}
    assert len(names) == len(ws["computes"]) and "cluster-119" in names
    assert len(emulator.journal(seq, path="/computes")) == 2


@pytest.mark.parametrize(("page", "error"), [
    ({"nextLink": None}, "ARM answered a page that is no list"),
    ({"value": "all done"}, "ARM answered a page that is no list"),
    ({"value": [], "nextLink": "https://attacker.example/jobs?$skipToken=x"}, "leaves"),
])
def test_a_jobs_page_that_is_no_list_or_links_away_from_arm_is_an_error_not_an_empty_list(emulator: EmulatorClient, page: Any,
                                                                                            error: str) -> None:
    from shared.errors import AzureError

    emulator.fault(method="GET", path="/jobs$", status=200, body=page, times=1)
    with pytest.raises(AzureError, match=error):
        _workspace(emulator).list_jobs()


def test_a_next_link_back_to_a_page_already_read_is_an_error_not_an_endless_list(emulator: EmulatorClient) -> None:
    from shared.errors import AzureError

    loop = f"{emulator.url}{DEMO_WORKSPACE_ID}/jobs?api-version=2024-10-01&$skipToken=loop"
    emulator.fault(method="GET", path="/jobs$", status=200, body={"value": [], "nextLink": loop}, times=3)
    with pytest.raises(AzureError, match="leads back to a page already read"):
        _workspace(emulator).list_jobs()

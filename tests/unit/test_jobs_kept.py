"""The job digest kept between sweeps: a warm sweep lists only the jobs created since the last one and
reads the active ones it kept by name — and stays complete, or reads the whole list.

The workspace adapter is the real one, fed ARM's jobs list by a stand-in for its ARM client (newest
first, as the emulator and the studio list it); the ledger is the in-memory one with Table storage's
ETag semantics (the real one is exercised against Azurite in tests/e2e/test_jobs_kept.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from local.memory import MemoryLedger
from shared import job_cache
from shared.jobs import HORIZON_MARGIN, JobDigest
from shared.settings import Settings
from tests.unit.builders import NOW, WS
from tests.unit.test_jobs_source import body, workspace

LATER = NOW + timedelta(minutes=15)


def settings(mode: str = "observe", **env: str) -> Settings:
    return Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "AUTOPILOT_MODE": mode, **env})


def history(count: int, compute: str = "cpu", start_ago: float = 60) -> list[dict[str, Any]]:
    """`count` finished jobs, newest first, one a minute back from `start_ago` minutes ago."""
    return [body(f"done-{i:05d}", "Completed", compute, start_ago + i) for i in range(count)]


def sweep(bodies: list[dict[str, Any]], ledger: MemoryLedger, now: datetime = NOW, s: Settings | None = None) -> tuple[JobDigest, Any]:
    ws, pages = workspace(bodies)
    return job_cache.list_jobs(ws, ledger, s or settings(), now, []), pages


def test_the_first_sweep_reads_the_whole_list_and_keeps_a_bounded_digest():
    ledger = MemoryLedger()
    listed, pages = sweep(history(3000), ledger)
    assert listed.full and pages.read == 3000
    text, _ = ledger.digests[WS.key]
    assert len(json.loads(text)["finished"]) == 1 and len(text) < 1000


def test_a_warm_sweep_reads_only_the_jobs_created_since_the_last_one():
    ledger = MemoryLedger()
    bodies = history(3000, start_ago=1)
    sweep(bodies, ledger)
    listed, pages = sweep(bodies, ledger, LATER)
    assert not listed.full and pages.read == HORIZON_MARGIN.total_seconds() // 60 + 2
    assert [j.name for j in listed.jobs] == ["done-00000"]


def test_a_job_started_between_two_sweeps_protects_its_compute():
    ledger = MemoryLedger()
    bodies = history(2000)
    sweep(bodies, ledger)
    bodies.insert(0, body("fresh", "Queued", "ci", -5))
    listed, pages = sweep(bodies, ledger, LATER)
    assert [j.name for j in listed.active_on("CI")] == ["fresh"] and pages.read < 30


def test_a_cached_active_job_that_finished_no_longer_protects_its_compute():
    ledger = MemoryLedger()
    bodies = history(2000)
    bodies.insert(1000, body("train", "Running", "gpu", 3 * 24 * 60))
    first, _ = sweep(bodies, ledger)
    assert [j.name for j in first.active_on("gpu")] == ["train"]
    bodies[1000] = {**bodies[1000], "properties": {**bodies[1000]["properties"], "status": "Completed"},
                    "systemData": {**bodies[1000]["systemData"], "lastModifiedAt": (NOW + timedelta(minutes=5)).isoformat()}}
    listed, pages = sweep(bodies, ledger, LATER)
    assert listed.active_on("gpu") == [] and pages.gets == ["train"]
    assert [j.name for j in listed.jobs if j.runs_on("gpu")] == ["train"]  # its end now starts the compute's idleness


def test_a_three_week_job_protects_its_compute_on_a_warm_sweep():
    ledger = MemoryLedger()
    bodies = [body("new", "Completed", "ci", 0), *history(5000), body("long", "Running", "gpu", 21 * 24 * 60)]
    sweep(bodies, ledger)
    for minutes in (15, 30, 45):  # three warm sweeps, the job still running under ever more newer ones
        listed, pages = sweep(bodies, ledger, NOW + timedelta(minutes=minutes))
        assert [j.name for j in listed.active_on("GPU")] == ["long"] and pages.gets == ["long"] and pages.read < 30


def test_a_job_gone_since_the_last_sweep_is_dropped():
    ledger = MemoryLedger()
    bodies = [*history(500), body("doomed", "Running", "gpu", 2000)]
    sweep(bodies, ledger)
    listed, pages = sweep(bodies[:-1], ledger, LATER)
    assert listed.active == {} and pages.gets == ["doomed"]


def test_one_job_still_running_is_read_per_compute_not_every_one_kept():
    ledger = MemoryLedger()
    bodies = [*history(500), *[body(f"run-{i:03d}", "Running", "gpu" if i % 2 else "ci", 600 + i) for i in range(100)]]
    sweep(bodies, ledger)
    listed, pages = sweep(bodies, ledger, LATER)
    assert len(pages.gets) == 2 and len(listed.active_on("gpu")) == len(listed.active_on("ci")) == 50


def test_out_of_order_pages_fall_back_to_the_whole_list():
    ledger = MemoryLedger()
    bodies = history(300)
    sweep(bodies, ledger)
    hidden = body("hidden", "Running", "gpu", 250)  # older than the horizon, yet never seen by the first listing
    bodies = [body("a", "Completed", "ci", -1), body("b", "Completed", "ci", -5), *bodies[:100], hidden, *bodies[100:]]
    listed, pages = sweep(bodies, ledger, LATER)
    assert listed.full and pages.read == len(bodies) and [j.name for j in listed.active_on("gpu")] == ["hidden"]


def test_a_list_oldest_first_is_read_to_its_end_so_a_job_started_between_sweeps_protects_its_compute():
    ledger = MemoryLedger()
    bodies = history(300)[::-1]  # oldest first: its first job is older than the horizon, which newest first cannot be
    sweep(bodies, ledger)
    bodies.append(body("fresh", "Running", "ci", -5))
    listed, pages = sweep(bodies, ledger, LATER)
    assert listed.full and pages.read == len(bodies) and [j.name for j in listed.active_on("ci")] == ["fresh"]


def test_a_complete_listing_is_forced_once_the_refresh_interval_has_passed():
    ledger = MemoryLedger()
    bodies = history(300)
    sweep(bodies, ledger, s=settings(JOBS_FULL_LISTING_HOURS="2"))
    warm, _ = sweep(bodies, ledger, NOW + timedelta(minutes=110), settings(JOBS_FULL_LISTING_HOURS="2"))
    cold, pages = sweep(bodies, ledger, NOW + timedelta(minutes=130), settings(JOBS_FULL_LISTING_HOURS="2"))
    assert not warm.full and cold.full and pages.read == 300
    assert not sweep(bodies, ledger, NOW + timedelta(minutes=140), settings(JOBS_FULL_LISTING_HOURS="2"))[0].full


def test_a_digest_kept_in_another_mode_is_not_used():
    ledger = MemoryLedger()
    sweep(history(300), ledger, s=settings("observe"))
    listed, pages = sweep(history(300), ledger, LATER, settings("enforce"))
    assert listed.full and pages.read == 300


def _kept(ledger: MemoryLedger) -> dict[str, Any]:
    return json.loads(ledger.digests[WS.key][0])


def _with(row: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**row, **changes})


CORRUPTIONS = {
    "empty": lambda row: "",
    "not JSON": lambda row: "{\"v\": 1,",
    "a list": lambda row: "[]",
    "a key too many": lambda row: _with(row, extra=1),
    "another format": lambda row: _with(row, v=2),
    "another workspace's": lambda row: _with(row, fp="0" * 64),
    "a horizon in the future": lambda row: _with(row, horizon=(NOW + timedelta(days=1)).isoformat()),
    "no horizon": lambda row: _with(row, horizon=None),
    "a listing in the future": lambda row: _with(row, full_at=(NOW + timedelta(days=1)).isoformat()),
    "a time without zone": lambda row: _with(row, full_at="2026-11-26T11:00:00"),
    "a job name that is a path": lambda row: _with(row, active=[["../computes/x", "Running", "gpu", [], None, None]]),
    "an active job that is finished": lambda row: _with(row, active=[["x", "Completed", "gpu", [], None, None]]),
    "a finished job kept for another compute": lambda row: _with(row, finished=[["ci", "x", "Completed", "gpu", [], None, None]]),
    "a status with a newline": lambda row: _with(row, active=[["x", "Running\nok", "gpu", [], None, None]]),
    "a number for a compute": lambda row: _with(row, active=[["x", "Running", 7, [], None, None]]),
    "a nested bomb": lambda row: '{"v": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "oversized": lambda row: _with(row, active=[["x", "Running", "gpu", [], None, None]] * 20_000),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_digest_row_leads_to_a_full_read_and_is_replaced(corrupt):
    ledger = MemoryLedger()
    bodies = [*history(300), body("long", "Running", "gpu", 21 * 24 * 60)]
    sweep(bodies, ledger)
    text, etag = ledger.digests[WS.key]
    ledger.digests[WS.key] = (corrupt(json.loads(text)), etag)
    listed, pages = sweep(bodies, ledger, LATER)
    assert listed.full and pages.read == 301 and [j.name for j in listed.active_on("gpu")] == ["long"]
    assert not sweep(bodies, ledger, LATER + timedelta(minutes=15))[0].full


def test_a_ledger_that_cannot_be_read_means_a_full_read_and_a_note():
    from shared.errors import AzureError

    ledger = MemoryLedger(fail={"job_digest": AzureError("ledger: throttled", transient=True)})
    ws, pages = workspace(history(300))
    notes: list[str] = []
    listed = job_cache.list_jobs(ws, ledger, settings(), NOW, notes)
    assert listed.full and pages.read == 300 and "unreadable" in notes[0]


def test_of_two_runs_keeping_one_workspaces_digest_the_later_write_is_dropped_not_merged():
    ledger = MemoryLedger()
    sweep(history(300), ledger)
    text, etag = ledger.job_digest(WS.key)
    assert ledger.put_job_digest(WS.key, text, etag)
    assert not ledger.put_job_digest(WS.key, "other", etag)  # read before the first write: dropped
    assert not ledger.put_job_digest(WS.key, "other", None)
    assert ledger.digests[WS.key][0] == text


def test_a_digest_over_the_size_bound_is_not_kept():
    ledger = MemoryLedger()
    bodies = [body(f"run-{i:05d}-" + "x" * 200, "Running", "gpu", 100 + i) for i in range(2000)]
    listed, _ = sweep(bodies, ledger)
    assert len(listed.active) == 2000 and WS.key not in ledger.digests


def test_a_job_whose_end_lies_ahead_of_this_clock_does_not_spoil_the_kept_digest():
    ledger = MemoryLedger()
    ahead = {**body("skewed", "Completed", "ci", 1), "systemData": {"createdAt": NOW.isoformat(),
                                                                    "lastModifiedAt": (NOW + timedelta(minutes=30)).isoformat()}}
    bodies = [ahead, *history(300)]
    sweep(bodies, ledger)
    listed, pages = sweep(bodies, ledger, LATER)
    assert not listed.full and pages.read < 30 and [j.name for j in listed.jobs if j.runs_on("ci")] == ["skewed"]

"""What a run keeps of a workspace's jobs: every active job, each compute's latest finished one, the horizon."""

from __future__ import annotations

import pytest

from shared.jobs import digest
from shared.model import Job
from tests.unit.builders import ago, job


@pytest.mark.parametrize("status", ["NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "Finalizing",
                                    "CancelRequested", "NotResponding", "Paused", "Unknown", "SomethingNew", ""])
def test_every_status_not_known_terminal_is_kept_as_active(status):
    kept = digest([job("a", status or "Unknown", "ci")])
    assert [j.name for j in kept.active_on("CI")] == ["a"]


def test_of_many_finished_jobs_only_each_computes_latest_is_kept():
    jobs = [job(f"done-{i}", "Completed", "ci" if i % 2 else "cpu", created_ago=10000 - i, modified_ago=9000 - i) for i in range(1000)]
    kept = digest(jobs)
    assert kept.seen == 1000
    assert sorted(j.name for j in kept.jobs) == ["done-998", "done-999"]


def test_the_latest_finished_job_is_judged_by_its_end_not_its_start():
    kept = digest([job("long", "Failed", "ci", created_ago=5000, modified_ago=10), job("short", "Completed", "ci", created_ago=100, modified_ago=90)])
    assert [j.name for j in kept.jobs] == ["long"]


def test_the_horizon_is_the_newest_creation_time_seen():
    kept = digest([job("a", "Completed", "ci", created_ago=50), job("b", "Running", "ci", created_ago=5)])
    assert kept.horizon == ago(5)


def test_a_finished_pipeline_counts_for_each_compute_its_steps_named_once():
    pipe = Job("pipe", "Completed", "cpu", ago(100), ago(10), also_on=("ci", "gpu"))
    kept = digest([pipe, job("older", "Completed", "gpu", created_ago=200, modified_ago=150)])
    assert [j.name for j in kept.jobs] == ["pipe"]
    assert all(j.runs_on(c) for j in kept.jobs for c in ("CPU", "ci", "Gpu"))

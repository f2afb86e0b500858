"""Sweeps of the real engine reading the jobs on each judged compute from run history: the cost
follows the computes and what is active on them, not the workspace's history; ARM's complete list
decides whenever run history cannot answer, with the same verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.engine import Engine, Report
from shared.model import Decision, Mark, compute_key
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World

ALICE = compute_key(WS, "ci-alice")


@pytest.fixture(autouse=True)
def prompt_operations(world: World) -> None:
    world.emulator.lro(polls=0)


def run(engine: Engine, kind: Kind, now: datetime) -> Report:
    return engine.run(sweep(kind, WS.id, now), now)


def verdicts(report: Report) -> dict[tuple[str, str], tuple[Decision, str]]:
    return {(v.target, v.rule): (v.decision, v.reason) for v in report.verdicts}


def seed(world: World) -> None:
    world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": {
        "name": "long-train", "status": "Running", "compute": "cpu-cluster", "createdAt": "now-21d"}})
    world.emulator.control("POST", "arm/jobs:bulk", {"workspace": WS.id, "count": 20_000, "since": "now-300d",
                                                     "computes": ["cpu-cluster", "gpu-cluster", "ci-alice", "ci-bob"]})


def sweep_marked_alice(world: World) -> tuple[int, Report]:
    """An enforce idle sweep that finds ci-alice marked idle past its grace: it means to stop it now."""
    settings = world.settings(IDLE_SHUTDOWN_MINUTES="0", IDLE_GRACE_MINUTES="0")
    now = datetime.now(UTC)
    world.ledger(settings).put_mark(Mark(ALICE, now - timedelta(minutes=5), "idle"))
    start = world.mark()
    return start, run(world.engine(settings), Kind.IDLE_SWEEP, now)


def test_a_sweep_asks_run_history_once_per_compute_it_would_act_on_and_never_lists_every_job(world: World):
    seed(world)
    engine = world.engine(world.settings("observe"))
    now = datetime.now(UTC)
    start = world.mark()
    report = run(engine, Kind.CLUSTER_SWEEP, now)
    arm_jobs = world.emulator.journal(start, service="arm", path="/jobs")
    runs = world.emulator.journal(start, service="runhistory", path="/runs")
    # cpu-cluster holds nodes at min > 0; gpu-cluster is at min 0 within the cap: kept whatever its jobs, so not asked.
    assert arm_jobs == [] and [e["path"].split("/computes/")[1].split("/")[0].lower() for e in runs] == ["cpu-cluster"]
    _, reason = verdicts(report)[("cpu-cluster", "cluster-size")]
    assert "long-train" in reason, reason


def test_when_run_history_refuses_the_sweep_reads_arms_list_and_decides_the_same(world: World):
    seed(world)
    now = datetime.now(UTC)
    settings = world.settings("observe")
    first = run(world.engine(settings), Kind.CLUSTER_SWEEP, now)
    world.emulator.fault(method="GET", path="/runs$", status=403, times=100)
    start = world.mark()
    second = run(world.engine(world.settings("observe", LEDGER_TABLE=world.table + "b")), Kind.CLUSTER_SWEEP, now)
    assert any("run history could not answer" in n and "HTTP 403" in n for n in second.notes)
    assert len(world.emulator.journal(start, service="arm", path="/jobs")) >= 200  # the whole list, page by page
    assert {k: v[0] for k, v in verdicts(second).items()} == {k: v[0] for k, v in verdicts(first).items()}


def test_the_re_read_before_a_stop_is_that_instance_its_runs_and_the_pipelines_that_could_use_it(world: World):
    start, report = sweep_marked_alice(world)
    assert [(o.action.kind.value, o.status.value) for o in report.outcomes if o.action.target == "ci-alice"] == [("stop-instance", "done")]
    journal = world.emulator.journal(start)
    stop = next(i for i, e in enumerate(journal) if e["method"] == "POST" and e["path"].endswith("/computes/ci-alice/stop"))
    reread = [(e["service"], e["path"].rsplit("/", 2)[-2:]) for e in journal[:stop]
              if e["service"] in ("arm", "runhistory") and "ci-alice" in e["path"]]
    # The sweep's own read of ci-alice's runs, then the guard's: the compute, its runs again, and the pipeline jobs.
    assert reread[-2:] == [("arm", ["computes", "ci-alice"]), ("runhistory", ["ci-alice", "runs"])]
    lists = [e["query"] for e in journal[:stop] if e["service"] == "arm" and e["path"].rstrip("/").endswith("/jobs")]
    assert lists == [{"api-version": lists[0]["api-version"], "listViewType": "All", "jobType": "Pipeline"}]


def test_an_instance_a_running_pipelines_next_step_will_use_is_not_stopped(world: World):
    world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": {
        "name": "pipe-nightly", "status": "Running", "compute": "cpu-cluster", "jobType": "Pipeline", "createdAt": "now-3h",
        "steps": {"train": "cpu-cluster", "evaluate": "ci-alice"}, "waiting": ["evaluate"]}})
    start, report = sweep_marked_alice(world)
    assert [(o.action.kind.value, o.status.value, o.detail) for o in report.outcomes if o.action.target == "ci-alice"] == [
        ("stop-instance", "skipped", "job pipe-nightly is Running on it now (re-read)")]
    assert not [w for w in world.writes(start) if w["path"].endswith("/computes/ci-alice/stop")]

"""The job digest kept in the ledger (Azurite) between sweeps of the real engine against the emulator
(ARM's list: JOBS_SOURCE=arm, and the fallback when run history cannot answer):
the first sweep of a workspace reads the whole job list once, the next ones the newest page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.adapters.ledger import _rk
from shared.engine import Engine, Report
from shared.job_cache import fingerprint
from shared.model import Decision
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World


def idle_sweep(engine: Engine, now: datetime) -> Report:
    return engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)


def list_pages(world: World, since: int) -> int:
    return sum(1 for e in world.emulator.journal(since, service="arm") if e["path"].rstrip("/").lower().endswith("/jobs"))


def seed(world: World, count: int) -> None:
    world.emulator.control("POST", "arm/jobs:bulk", {"workspace": WS.id, "count": count, "computes": ["cpu-cluster"],
                                                     "since": "now-100d"})


def test_the_first_sweep_reads_every_page_of_jobs_and_the_next_one_page(world: World):
    seed(world, 1000)
    engine = world.engine(world.settings("observe", JOBS_SOURCE="arm"))
    now = datetime.now(UTC)
    start = world.mark()
    idle_sweep(engine, now)
    assert list_pages(world, start) == 11
    start = world.mark()
    idle_sweep(engine, now + timedelta(minutes=15))
    assert list_pages(world, start) == 1


def test_a_job_started_between_two_sweeps_protects_its_instance(world: World):
    seed(world, 500)
    engine = world.engine(world.settings("observe", IDLE_SHUTDOWN_MINUTES="0", JOBS_SOURCE="arm"))
    now = datetime.now(UTC)
    first = idle_sweep(engine, now)
    assert [v.decision for v in first.verdicts if v.target == "ci-alice"] != [Decision.KEEP]
    world.emulator.control("POST", "arm/jobs", {"workspace": WS.id, "job": {
        "name": "nb-between", "status": "Running", "compute": "CI-Alice", "createdAt": (now + timedelta(minutes=5)).isoformat()}})
    start = world.mark()
    second = idle_sweep(engine, now + timedelta(minutes=15))
    (alice,) = [v for v in second.verdicts if v.target == "ci-alice" and v.rule == "idle-instance"]
    assert alice.decision is Decision.KEEP and "job nb-between is Running on it" in alice.reason
    assert list_pages(world, start) == 1


def test_a_corrupt_digest_row_in_the_ledger_leads_to_a_full_read_and_is_replaced(world: World):
    seed(world, 500)
    settings = world.settings("observe", JOBS_SOURCE="arm")
    engine, ledger = world.engine(settings), world.ledger(settings)
    now = datetime.now(UTC)
    idle_sweep(engine, now)
    text, _ = ledger.job_digest(WS.key)
    assert text and fingerprint(settings, WS.key) in text
    row = ledger.table.get_entity("jobs", _rk(WS.key))
    row["Part00"] = "{\"v\": 1, \"fp\": " + "[" * 5000
    ledger.table.update_entity(row)
    start = world.mark()
    idle_sweep(engine, now + timedelta(minutes=15))
    assert list_pages(world, start) == 6
    start = world.mark()
    idle_sweep(engine, now + timedelta(minutes=30))
    assert list_pages(world, start) == 1


def test_two_runs_writing_one_workspaces_digest_cannot_both_win(world: World):
    ledger = world.ledger()
    assert ledger.job_digest(WS.key) == ("", None)
    assert ledger.put_job_digest(WS.key, "first", None)
    assert not ledger.put_job_digest(WS.key, "second", None)  # both read "none kept": the second loses
    text, etag = ledger.job_digest(WS.key)
    assert text == "first" and ledger.put_job_digest(WS.key, "x" * 70_000, etag)
    assert not ledger.put_job_digest(WS.key, "stale", etag)
    assert ledger.job_digest(WS.key)[0] == "x" * 70_000  # kept in parts a Table property can hold


def test_a_row_whose_parts_are_not_what_the_ledger_writes_reads_as_no_digest(world: World):
    ledger = world.ledger()
    ledger.table.upsert_entity({"PartitionKey": "jobs", "RowKey": _rk(WS.key), "Parts": 999, "Part00": "{}"})
    assert ledger.job_digest(WS.key)[0] == ""
    ledger.table.upsert_entity({"PartitionKey": "jobs", "RowKey": _rk(WS.key), "Parts": 2, "Part00": "{}"})
    assert ledger.job_digest(WS.key)[0] == ""


def test_a_discovery_row_that_is_not_what_the_ledger_writes_reads_as_none_stored(world: World):
    ledger = world.ledger()
    at = datetime(2026, 12, 2, tzinfo=UTC)
    for row in ({"Parts": "many", "At": at}, {"Parts": 10**9, "At": at}, {"Parts": 1, "At": "soon", "Ids0": WS.id},
                {"Parts": 2, "At": at, "Ids0": WS.id}, {"Parts": 1, "At": at, "Ids0": 7}):
        ledger.table.upsert_entity({"PartitionKey": "discovery", "RowKey": _rk("discovery-x"), **row})
        assert ledger.discovered("discovery-x") is None

"""The bench's pure pieces run on tiny inputs and produce well-formed tables (no timings are checked)."""

from __future__ import annotations

import logging

import pytest

from bench import arm, events, host, imports
from bench.report import Stats, Table, percentile
from shared.intake import accept_event
from shared.settings import Settings


def well_formed(table: Table) -> None:
    assert table.rows and table.verdict
    assert all(len(row) == len(table.headers) for row in table.rows)
    lines = table.render().splitlines()
    assert lines[0].startswith("== ") and lines[-1].startswith("verdict: ")


def test_percentiles_interpolate_between_samples_and_stats_summarize_them():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([7.0], 95) == 7.0
    assert Stats.of([3.0, 1.0, 2.0]) == Stats(3, 1.0, 2.0, pytest.approx(2.9), 3.0)


def test_a_table_refuses_a_row_of_the_wrong_width():
    with pytest.raises(ValueError):
        Table("t", ["a", "b"]).add(1)


def test_the_event_mix_adds_up_to_the_batch_size_and_keeps_every_kind():
    mix = events.counts(97)
    assert sum(mix.values()) == 97 and all(n > 0 for n in mix.values())
    assert len(events.batch(42)) == 42


@pytest.mark.parametrize(("kind", "share", "expected"), events.MIX, ids=[k for k, _, _ in events.MIX])
def test_each_kind_of_event_is_triaged_as_the_mix_says(kind, share, expected, caplog):
    caplog.set_level(logging.CRITICAL, logger="autopilot")
    s = events.settings()
    decide = events.Worker(s, events.fleet(jobs=12))
    for i in range(4):  # the malformed kind has four variants
        intake = events.triage(kind, events.payload(kind, i), s)
        assert events.outcome_of(intake) == expected, intake.line()
        if intake.item is not None:
            decide(intake.item)


def test_the_throughput_section_produces_a_mix_and_a_speed_table_on_a_tiny_batch():
    s = events.settings()
    decide = events.Worker(s, events.fleet(jobs=12))
    batch = events.batch(len(events.MIX) * 2)
    with events.quiet():
        mix = events.tally(batch, s, decide)
        seconds = {"repeats": 1.0, "dict": events.time_batch(batch, s, decide),
                   "text": events.time_batch(batch, s, decide, from_text=True)}
    mix_table, speed = events.tables(batch, seconds, mix)
    for table in (mix_table, speed):
        well_formed(table)
    assert mix_table.verdict.startswith("PASS") and mix_table.rows[-1][1] == len(batch)


def test_quiet_restores_the_logger_level():
    logger = logging.getLogger("autopilot")
    before = logger.level
    with events.quiet():
        assert logger.level == logging.CRITICAL
    assert logger.level == before


def test_the_cold_import_table_judges_the_app_against_its_budget_without_spawning_anything():
    fake = {"pass": 20.0, "import function_app": 150.0, "import azure.ai.ml": 1400.0}
    samples = imports.measure(3, timer=lambda code: fake[code])
    assert {label: len(v) for label, v in samples.items()} == {label: 3 for label, _ in imports.COMMANDS}
    table = imports.table(samples, imports.Probe(aml_loaded=False, modules=300))
    well_formed(table)
    assert table.verdict.startswith("PASS")
    assert imports.table(samples, imports.Probe(aml_loaded=True, modules=900)).verdict.startswith("FAIL")
    assert imports.table(samples, imports.Probe(False, 300), budget_ms=100).verdict.startswith("FAIL")


ARM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


def entry(seq: int, method: str, path: str, service: str = "arm", status: int = 200) -> dict:
    return {"seq": seq, "method": method, "path": path, "service": service, "status": status}


JOURNAL = [
    entry(1, "GET", "/msi/token", "identity"),
    entry(2, "GET", f"{ARM}/computes"),
    entry(3, "POST", "/subscriptions/s/metrics:getBatch", "monitor"),
    entry(4, "GET", f"{ARM}/computes/ci"),
    entry(5, "POST", f"{ARM}/computes/ci/stop", status=202),
    entry(6, "GET", "/subscriptions/s/providers/Microsoft.MachineLearningServices/locations/we/computeOperationsStatus/op1"),
    entry(7, "POST", f"{ARM}/datastores/blob/listSecrets"),
    entry(8, "POST", "/_sinks/webhook/ops", "sinks"),
]


def test_journal_entries_are_classified_as_reads_writes_polls_tokens_and_notifications():
    assert [arm.category(e) for e in JOURNAL] == ["token", "read", "read", "read", "write", "poll", "read", "notify"]
    assert arm.tally(JOURNAL) == {"read": 4, "write": 1, "poll": 1, "token": 1, "notify": 1}
    assert arm.label(JOURNAL[4]) == "POST ci/stop"


def test_a_run_splits_at_its_first_claim_and_its_table_counts_calls_above_the_minimum():
    gather, write = arm.split(JOURNAL, [3])
    assert [e["seq"] for e in gather] == [1, 2, 3] and [e["seq"] for e in write] == [4, 5, 6, 7, 8]
    run = arm.Measured("stop", arm.Minimum(2, 1, 1, True, "why"), gather, write, "done", 12.5)
    assert run.extra("guarded write") == 1 and run.extra("gather+decide") == 0
    table = arm.table([run])
    well_formed(table)
    assert len(table.rows) == len(arm.PARTS) and table.verdict.startswith("ABOVE MINIMUM")
    failed = arm.table([arm.Measured("stop", arm.Minimum(2, 1, 1, True, "why"), gather, write, "skipped", 1.0)])
    assert failed.verdict.startswith("FAIL")


def test_dev_host_deliveries_are_distinct_accepted_events_and_their_table_is_well_formed(caplog):
    caplog.set_level(logging.CRITICAL, logger="autopilot")
    batches = host.deliveries(3, events.WORKSPACES[0])
    assert len({b[0]["id"] for b in batches}) == 3
    only_demo = Settings.from_env({"ALLOWED_WORKSPACES": events.WORKSPACES[0], "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert all(accept_event(b[0], only_demo).accepted for b in batches)
    table = host.table(40.0, [5.0, 6.0, 9.0], [202, 202, 202, 202], worker_calls=0)
    well_formed(table)
    assert table.verdict.startswith("PASS")
    assert host.table(40.0, [5.0], [202, 500]).verdict.startswith("FAIL")


def test_the_intake_is_timed_beside_json_loads_with_logging_on_and_judged_against_its_target():
    batch = events.batch(60)
    seconds = events.intake_speed(batch, events.settings(), repeats=1)
    assert seconds["lines_per_event"] == 1.0  # every event logs its one line, as in production
    table = events.intake_table(len(batch), seconds)
    well_formed(table)
    assert table.verdict.startswith(("PASS", "ABOVE TARGET"))
    assert not any(isinstance(h, events._Formatting) for h in logging.getLogger().handlers)  # the bench's handler is gone


def test_the_scale_cells_hold_instances_and_clusters_and_their_table_judges_the_target_cell_by_every_run_history_sweep():
    from bench import scale

    made = scale.computes(10)
    assert [c["type"] for c in made].count("ComputeInstance") == 5 and sum(c.get("minNodes", 0) > 0 for c in made) == 1
    cold = {"computes": 10, "jobs": 100_000, "sweep": "idle-sweep", "run": "cold", "source": "run-history", "wall_s": 3.0,
            "arm_requests": 2, "run_history_requests": 6, "jobs_list_pages": 0, "jobs_read_by_name": 0, "peak_rss_mb": 60.0,
            "outcomes": {}}
    warm = {**cold, "run": "warm"}
    arm_cold = {**cold, "source": "arm", "wall_s": 93.0, "arm_requests": 1002, "run_history_requests": 0, "jobs_list_pages": 1000}
    well_formed(passing := scale.table([cold, warm, {**warm, "sweep": "cluster-sweep", "outcomes": {"planned": 1}}, arm_cold], 100))
    assert passing.verdict.startswith("PASS"), "ARM's list, the fallback, is shown, not judged"
    assert scale.table([{**cold, "wall_s": 31.0}, warm], 100).verdict == \
        "ABOVE TARGET: 10 × 100,000: idle-sweep 31.0 s (target < 30 s, < 300 MB)"


def test_the_fleet_bound_is_the_busiest_subscriptions_reads_past_the_burst_at_the_refill_rate():
    from collections import Counter

    from bench import fleet

    assert fleet.lower_bound_s(Counter({"a": 3000, "b": 10})) == (3000 - 250) / 25
    assert fleet.lower_bound_s(Counter({"a": 60, "b": 60})) == 0.0


def test_the_fleet_counts_only_the_reads_arm_served_and_its_429s_apart():
    from bench import fleet

    sub = fleet.subscription(0)
    ws = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
    entries = [
        {"service": "arm", "method": "GET", "path": ws + "/computes", "status": 200},
        {"service": "arm", "method": "GET", "path": ws + "/jobs", "status": 429},
        {"service": "arm", "method": "GET", "path": ws + "/jobs", "status": 200},
        {"service": "arm", "method": "POST", "path": "/providers/Microsoft.ResourceGraph/resources", "status": 200},
        {"service": "monitor", "method": "POST", "path": f"/subscriptions/{sub}/metrics:getBatch", "status": 200},
    ]
    found = fleet.figures(entries)
    assert (found["arm_requests"], found["arm_reads_served"], found["arm_429"]) == (4, 2, 1)
    assert (found["resource_graph_requests"], found["monitor_requests"], found["busiest_subscription_reads"]) == (1, 1, 2)


def test_a_fleet_scenario_spreads_uniquely_named_workspaces_over_its_subscriptions():
    from bench import fleet

    s = fleet.scenario(10, 4, 3)
    assert len({w["name"] for w in s["workspaces"]}) == 10
    assert len({w["subscriptionId"] for w in s["workspaces"]}) == 3
    assert [c["type"] for c in s["workspaces"][0]["computes"]] == ["ComputeInstance"] * 3 + ["AmlCompute"]


def test_the_fleet_table_passes_only_when_nothing_is_lost_and_the_wall_time_is_within_the_bound_ratio():
    from pathlib import Path

    from bench import fleet

    base = {"workspaces": 2, "computes_per_workspace": 1, "subscriptions": 1, "arm_budget_percent": 90, "timer_status": 202,
            "wall_s": 12.0, "arm_requests": 6, "arm_reads_served": 6, "arm_429": 0, "resource_graph_requests": 1,
            "monitor_requests": 2, "busiest_subscription_reads": 6, "lower_bound_s": 10.0, "ratio_to_lower_bound": 1.2,
            "workspaces_swept": 2, "work_items_missing": 0, "work_items_poisoned": 0}
    good = fleet.table(base, Path("x.json"))
    well_formed(good)
    assert good.verdict.startswith("PASS")
    assert fleet.table({**base, "work_items_poisoned": 1}, Path("x.json")).verdict.startswith("FAIL")
    assert fleet.table({**base, "ratio_to_lower_bound": 1.6}, Path("x.json")).verdict.startswith("FAIL")

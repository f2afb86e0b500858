"""`autopilot report`: cores freed and priced from the Retail Prices API (the emulator's stand-in), the price
cache, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.stack import RUN_DIR
from shared.actions import ScaleCluster, StopInstance
from shared.adapters.prices import RetailPrices
from shared.model import Action, Freed, Outcome, Status
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World
from tests.e2e.test_cli import autopilot

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = RUN_DIR / "artifacts"
DS3_WESTEUROPE = 0.293  # local/emulator/prices.py: Standard_DS3_v2, westeurope, Linux pay-as-you-go


def _price_requests(world: World, since: int = 0) -> list[dict]:
    return world.emulator.journal(since, service="prices")


def _report(world: World, *args: str) -> dict:
    done = autopilot(world, "report", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_cluster_scaled_to_zero_two_hours_ago_saved_its_nodes_cores_for_two_hours_at_the_retail_price(world: World):
    then = datetime.now(UTC) - timedelta(hours=2)
    outcomes = world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, then), then).outcomes
    (scaled,) = [o for o in outcomes if o.action.target == "cpu-cluster"]
    assert (scaled.status, scaled.freed.vms, scaled.cores) == (Status.DONE, 2, 8)  # 2 idle DS3_v2 nodes held by min 2
    report = _report(world)
    (line,) = [line for line in report["lines"] if line["rule"] == "cluster-size"]
    assert line["cores_freed"] == 8
    assert line["core_hours"] == pytest.approx(16, abs=0.1)
    assert line["money"] == pytest.approx(2 * 2 * DS3_WESTEUROPE, abs=0.01)
    assert report["totals"]["money_per_hour_now"] == pytest.approx(2 * DS3_WESTEUROPE)
    (saving,) = report["savings"]
    assert saving["note"] == "still freed"
    (asked,) = _price_requests(world)
    assert "armSkuName eq 'Standard_DS3_v2'" in asked["query"]["$filter"] and "priceType eq 'Consumption'" in asked["query"]["$filter"]


def test_a_price_read_once_is_served_from_the_ledger_for_a_day(world: World):
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    first = _report(world)
    mark = world.mark()
    again = _report(world)
    assert _price_requests(world, mark) == []
    assert again["prices"] == first["prices"] == {"westeurope/standard_ds3_v2": DS3_WESTEUROPE}


def test_an_instance_running_again_since_a_time_azure_does_not_report_is_not_counted_beyond_its_stop(world: World):
    then = datetime.now(UTC) - timedelta(hours=3)
    ledger = world.ledger()
    stop = Action(StopInstance(), WS, "ci-alice", "idle", rule="idle-instance")
    ledger.record(Outcome(stop, Status.DONE, "stop ci-alice: verified", then, "t", freed=Freed("Standard_DS3_v2", 1), cores=4))
    # ci-alice is Running in the live state, started 5 hours ago: before the recorded stop, so when it was
    # started again is not known — the saving is not counted beyond the action.
    (saving,) = _report(world)["savings"]
    assert saving["core_hours"] == 0 and "not counted" in saving["note"]


def test_the_price_list_is_read_across_its_pages_and_spot_low_priority_and_windows_items_are_not_the_price(world: World):
    world.emulator.reset({**world.scenario, "prices": {"pageSize": 1}})
    prices = RetailPrices(world.settings(), None)
    price = prices.hourly("westeurope", "Standard_NC6s_v3", datetime.now(UTC))
    assert price.hourly == 3.366 and price.meter == "Virtual Machines NCSv3 Series / NC6s v3"
    pages = _price_requests(world)
    # priceType eq 'Consumption' leaves out the DevTest and reservation items: four consumption items, one per page.
    assert len(pages) == 4 and pages[-1]["query"]["$skip"] == "3"


def test_a_size_the_price_list_lacks_gives_the_reason_instead_of_a_price(world: World):
    world.emulator.reset({**world.scenario, "prices": {"items": []}})
    reason = RetailPrices(world.settings(), world.ledger()).hourly("westeurope", "Standard_DS3_v2", datetime.now(UTC))
    assert reason == "the price list has no pay-as-you-go Linux hourly price for Standard_DS3_v2 in westeurope"


def test_without_a_price_the_report_shows_core_hours_and_says_why(world: World):
    world.emulator.reset({**world.scenario, "prices": {"items": []}})
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    done = autopilot(world, "report")
    assert done.returncode == 0, done.stderr
    assert "(no price available: core-hours only)" in done.stdout
    assert "note: no price for standard_ds3_v2 in westeurope: the price list has no pay-as-you-go Linux hourly price" in done.stdout


def test_the_csv_report_has_one_row_per_workspace_and_rule_and_a_ledger_row_with_foreign_parameters_breaks_nothing(world: World):
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    odd = Action(ScaleCluster(0, 4, 1800), WS, "gpu-cluster", "odd", rule="cluster-size")
    ledger = world.ledger()
    ledger.record(Outcome(odd, Status.DONE, "ok", now, "t", freed=Freed("Standard_NC6s_v3", 1), cores=6))
    row = next(r for r in ledger.history(now - timedelta(minutes=1), 50) if r.get("Target") == "gpu-cluster")
    ledger.table.update_entity({"PartitionKey": f"out-{now:%Y%m%d}", "RowKey": _row_key(ledger, row), "Params": '{"min_nodes": "x"}'})
    done = autopilot(world, "report", "--output", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["workspace", "rule", "actions", "done", "failed", "skipped", "planned", "vms_freed", "cores_freed",
                       "cores_planned", "core_hours", "money"]
    (line,) = [r for r in rows[1:] if r[:2] == ["mlw-demo", "cluster-size"]]
    assert line[3] == "2" and line[8] == "14"  # cpu-cluster's 8 cores and the odd row's 6


def _row_key(ledger, row) -> str:
    return next(e["RowKey"] for e in ledger.table.query_entities("Target eq 'gpu-cluster'") if e["At"] == row["At"])


def test_in_observe_mode_the_report_says_what_the_planned_writes_would_free_and_counts_no_saving(world: World):
    now = datetime.now(UTC)
    world.engine(world.settings("observe")).run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    report = _report(world)
    (line,) = [line for line in report["lines"] if line["rule"] == "cluster-size"]
    assert (line["planned"], line["cores_planned"], line["cores_freed"], report["savings"]) == (1, 8, 0, [])
    done = autopilot(world, "report")
    assert "observe mode: the planned writes would free 8 cores (nothing was changed)" in done.stdout


def test_a_bad_since_is_one_line_and_exit_2(world: World):
    done = autopilot(world, "report", "--since", "-5d")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--since" in done.stderr


# --- the page, in a real browser ------------------------------------------------------------------


HOSTILE = '<img src=x onerror="document.title=\'owned\'">ci-<b>x</b>&amp;'


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_the_html_report_renders_in_chromium_with_one_chart_mark_per_datum_no_console_error_and_hostile_names_as_text(
        world: World, chromium, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # ci-carol (Standard_DS3_v2) has been stopped since before 30 hours ago: a stop recorded then still saves.
    then = datetime.now(UTC) - timedelta(hours=30)
    carol = Action(StopInstance(), WS, "ci-carol", "idle", rule="idle-instance")
    world.ledger().record(Outcome(carol, Status.DONE, "stop ci-carol: verified", then, "t", freed=Freed("Standard_DS3_v2", 1), cores=4))
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)
    world.engine().run(sweep(Kind.IDLE_SWEEP, WS.id, now), now)
    world.ledger().record(Outcome(Action(StopInstance(), WS, HOSTILE, f"reason {HOSTILE}", rule=HOSTILE), Status.FAILED,
                                  f"detail {HOSTILE}", now, "t"))
    data = _report(world, "--since", "3d")
    page_file = tmp_path / "report.html"
    done = autopilot(world, "report", "--since", "3d", "--output", "html", "--file", str(page_file))
    assert done.returncode == 0 and done.stdout.strip() == f"report written to {page_file.resolve()}"

    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.resolve().as_uri())
    page.wait_for_load_state("load")

    bars = page.locator("#savings-chart rect.mark")
    day_values = [float(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert len(day_values) >= 2, "savings on at least two days (30 h ago and today)"
    assert sum(day_values) == pytest.approx(data["totals"]["money"], abs=0.02)
    outcome_marks = page.locator("#outcomes-chart rect.mark")
    counted = {(r, s): int(v) for r, s, v in outcome_marks.evaluate_all(
        "els => els.map(e => [e.dataset.rule, e.dataset.status, e.dataset.value])")}
    by_rule = {}
    for line in data["lines"]:
        for status in ("done", "failed", "skipped", "planned"):
            if line[status]:
                by_rule[(line["rule"], status)] = by_rule.get((line["rule"], status), 0) + line[status]
    assert counted == by_rule and outcome_marks.count() == len(by_rule)
    assert page.locator("#lines tbody tr").count() == len(data["lines"])
    # The hostile name is shown as text, nowhere as markup: no image, no bold, the title untouched.
    assert page.locator("img").count() == 0 and page.locator("td b").count() == 0
    assert page.title().startswith("aml-autopilot report")
    assert HOSTILE in page.locator("#recent").inner_text()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")
    assert shot.stat().st_size > 10_000

"""Savings accrue from the action until the compute holds its VMs again, never beyond now, and not past the
action when the end is unknown (the estimate errs low)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.savings import Freeing, accrue, daily, money

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def freeing(at: datetime, resource: str = "ws/computes/ci", running_since: datetime | None = None) -> Freeing:
    return Freeing(resource, "ws", "ci", "idle-instance", "stop-instance", at, "Standard_DS3_v2", 1, 4, {}, running_since)


@pytest.mark.parametrize(("live", "hours", "note"), [
    ((False, None), 5, "still freed"),
    ((True, NOW - 2 * H), 3, "until started again 2026-11-26 10:00Z"),
    ((True, None), 0, "held again (or gone) since, at a time Azure does not report: not counted"),
    ((True, NOW + 5 * H), 5, "until started again 2026-11-26 17:00Z"),  # a start in the future is never beyond now
    (None, 5, "live state unreadable: counted up to now"),
])
def test_one_freeing_accrues_until_the_live_state_says_it_ended(live, hours, note):
    (a,) = accrue([(freeing(NOW - 5 * H), live)], NOW)
    assert (a.hours, a.core_hours, a.note) == (pytest.approx(hours), pytest.approx(4 * hours), note)


def test_an_earlier_stop_ends_when_the_later_one_saw_the_instance_started():
    first, second = freeing(NOW - 10 * H), freeing(NOW - 2 * H, running_since=NOW - 6 * H)
    a, b = accrue([(second, (False, None)), (first, (False, None))], NOW)
    assert (a.hours, b.hours) == (pytest.approx(4), pytest.approx(2))
    assert a.note == "until started again 2026-11-26 06:00Z" and b.ongoing and not a.ongoing


def test_an_earlier_scale_down_whose_scale_up_time_is_unknown_is_not_counted():
    first, second = freeing(NOW - 10 * H), freeing(NOW - 2 * H)
    a, _ = accrue([(first, (False, None)), (second, (False, None))], NOW)
    assert a.hours == 0 and "not counted" in a.note


def test_money_is_vm_hours_times_the_hourly_price_and_nothing_without_a_price():
    (a,) = accrue([(freeing(NOW - 2 * H), (False, None))], NOW)
    assert money(a, 0.293) == pytest.approx(0.586) and money(a, None) is None


def test_a_saving_is_spread_over_the_days_it_spans():
    (a,) = accrue([(freeing(NOW - 24 * H), (False, None))], NOW)
    days = daily([a], NOW - 48 * H, NOW, lambda x: x.core_hours)
    assert [d.day for d, _ in days] == [24, 25, 26]
    assert [v for _, v in days] == [pytest.approx(0), pytest.approx(48), pytest.approx(48)]


WS_ID = "/subscriptions/s/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/mlw"


@pytest.mark.parametrize("child", ["computes/ci-alice", "onlineendpoints/scoring-api/deployments/canary"])
def test_a_freeing_of_a_compute_or_a_deleted_deployment_is_counted_in_its_workspace(child):
    from shared.report import freeing_of

    row = {"Status": "done", "Size": "Standard_DS3_v2", "At": NOW, "Vms": 2, "Cores": 8, "Params": "{}",
           "Resource": f"{WS_ID}/{child}", "Workspace": "mlw", "Target": child.split("/", 1)[1], "Action": "x"}
    found = freeing_of(row)
    assert found is not None and found.workspace_key == WS_ID and found.cores == 8


@pytest.mark.parametrize("status", ["money", "workspace", "actions", "__class__", "vms", "cores", "rule", ""])
def test_a_ledger_row_whose_status_is_no_outcome_status_counts_as_an_action_and_breaks_neither_report_nor_page(status):
    from shared.report import build
    from shared.report_html import render

    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = {"Status": status, "Workspace": "mlw", "Rule": "idle", "At": now, "Size": "Standard_DS3_v2", "Vms": 2, "Cores": 8,
           "Resource": "/w/computes/ci", "Params": "{}"}
    report = build([row], {}, {}, {}, now - timedelta(days=1), now)
    (line,) = report.lines
    assert (line.workspace, line.rule, line.actions, line.done, line.failed, line.skipped, line.planned) == ("mlw", "idle", 1, 0, 0, 0, 0)
    assert (line.vms, line.cores, line.money) == (0, 0, None)
    assert "<html" in render(report)


def test_a_ledger_row_with_negative_cores_frees_none():
    from shared.report import freeing_of

    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = {"Status": "done", "At": now, "Size": "Standard_DS3_v2", "Vms": 2, "Cores": -800, "Resource": "/w/computes/ci", "Params": "{}"}
    freeing = freeing_of(row)
    assert freeing is not None and freeing.cores == 0

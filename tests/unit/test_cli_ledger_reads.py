"""`autopilot history` and `report` on the ledger (and `plan --help`): a ledger the app has not written yet reads as an empty one with
one line saying so (as `plan` reads it), and the report's table shows how every action ended, planned included."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared import cli
from shared.errors import Gone
from shared.report import build
from tests.unit.test_events import WS

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


class NoTable:
    """A ledger whose table does not exist: the storage answers 404 to the first read, as the real one does."""

    table = SimpleNamespace(account_name="stautopilot", table_name="autopilotledger")

    def history(self, since: datetime, limit: int = 50) -> list[dict]:
        raise Gone("ledger: read the history: not found")


@pytest.fixture
def no_table(monkeypatch):
    monkeypatch.setenv("ALLOWED_WORKSPACES", WS.id)
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=stautopilot;AccountKey=a2V5;"
                       "EndpointSuffix=core.windows.net")
    monkeypatch.setattr(cli, "_ledger", lambda settings: NoTable())


def _says_nothing_recorded_yet(line: str) -> bool:
    return ("the ledger has no table autopilotledger (LEDGER_TABLE) in storage account stautopilot yet" in line
            and "the app has not run here, so it has recorded nothing" in line)


@pytest.mark.parametrize(("command", "consequence"), [(["history"], "no outcomes to show"), (["report"], "nothing to report")])
def test_a_ledger_without_its_table_is_one_line_naming_the_table_and_the_account_and_exit_0(no_table, capsys, command, consequence):
    assert cli.main(command) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith("note: ") and _says_nothing_recorded_yet(out) and consequence in out
    assert err == ""


def test_history_as_json_or_csv_on_a_ledger_without_its_table_is_an_empty_document_and_the_note_on_stderr(no_table, capsys):
    assert cli.main(["history", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and err.count("\n") == 1 and _says_nothing_recorded_yet(err)
    assert cli.main(["history", "--output", "csv"]) == 0
    out, err = capsys.readouterr()
    assert list(csv.reader(io.StringIO(out))) == [cli.HISTORY_COLUMNS] and _says_nothing_recorded_yet(err)


def test_the_report_as_json_on_a_ledger_without_its_table_is_empty_and_says_why(no_table, capsys):
    assert cli.main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lines"] == [] and _says_nothing_recorded_yet(report["notes"][0])


def test_plan_says_a_missing_ledger_table_in_the_same_words():
    note = cli._not_recorded_yet(SimpleNamespace(ledger_table="autopilotledger"), NoTable(), "no idle marks to show")
    assert _says_nothing_recorded_yet(note) and note.endswith("; no idle marks to show")


def _outcome(status: str, minutes_ago: int, **extra) -> dict:
    return {"At": NOW - timedelta(minutes=minutes_ago), "Status": status, "Action": "scale_cluster", "Rule": "cluster-size",
            "Workspace": "mlw-demo", "Target": "cpu-cluster", **extra}


def test_the_report_table_shows_planned_actions_in_their_own_column_as_the_csv_and_the_page_do():
    # Observe mode: every write ends planned, so without the column the row would read 1 action, none ended.
    report = build([_outcome("planned", 5, Cores=8)], {}, {}, {}, NOW - timedelta(days=30), NOW)
    header, rule, row = cli.report_table(report, width=200).splitlines()
    assert header.split() == ["WORKSPACE", "RULE", "ACTIONS", "DONE", "FAILED", "SKIPPED", "PLANNED", "CORES", "FREED",
                              "CORE-HOURS", "SAVED", "(USD)"]
    assert row.split() == ["mlw-demo", "cluster-size", "1", "0", "0", "0", "1", "0", "0.00", "-"]
    assert set(rule.replace(" ", "")) == {"-"}


def test_every_action_of_the_report_table_is_counted_in_exactly_one_of_its_ending_columns():
    report = build([_outcome(status, n) for n, status in enumerate(["done", "failed", "skipped", "planned", "planned"])],
                   {}, {}, {}, NOW - timedelta(days=30), NOW)
    row = cli.report_table(report, width=200).splitlines()[2].split()
    actions, done, failed, skipped, planned = (int(c) for c in row[2:7])
    assert (actions, done, failed, skipped, planned) == (5, 1, 1, 1, 2)
    assert done + failed + skipped + planned == actions
    assert dict(zip(cli.REPORT_COLUMNS[2:7], (actions, done, failed, skipped, planned), strict=True)) == {
        k: v for k, v in report.lines[0].as_dict().items() if k in cli.REPORT_COLUMNS[2:7]}


def test_plan_help_says_all_covers_the_workspaces_found_through_allowed_scopes_too(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["plan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "every workspace in ALLOWED_WORKSPACES and every one found in ALLOWED_SCOPES" in text

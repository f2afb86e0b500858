"""CSV output (plan, history, report) opened in a spreadsheet: what came from Azure or the ledger is text, never a formula."""

from __future__ import annotations

import csv
import io

import pytest

from shared import cli


@pytest.mark.parametrize("hostile", ['=HYPERLINK("https://evil.example","open")', "+cmd|' /C calc'!A0", "-2+3+cmd|'/C calc'!A0",
                                     "@SUM(1+1)*cmd|'/C calc'!A0", "\t=1+1", "\r=1+1"])
def test_a_csv_cell_that_starts_like_a_formula_is_written_as_text(hostile, capsys):
    cli._csv([["ws", hostile, 3, -2.5, "-", "-7"]], ["workspace", "reason", "n", "x", "dash", "negative"])
    (row,) = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))[1:]
    assert row == ["ws", "'" + hostile.replace("\r", "\n"), "3", "-2.5", "-", "-7"]


def test_a_carriage_return_in_a_csv_cell_does_not_split_its_row(capsys):
    cli._csv([["ws", "line one\rinjected,row", "x"]], ["workspace", "reason", "y"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    assert rows == [["workspace", "reason", "y"], ["ws", "line one\ninjected,row", "x"]]

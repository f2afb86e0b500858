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


def test_a_table_cell_carries_no_terminal_escape_or_invisible_reordering_character():
    out = cli._table([["ci-\x1b[2J\x1b]0;pwned\x07x", "owner\u202egnp.exe", "reason\x00\x9b31m"]], ["name", "owner", "reason"])
    assert "\x1b" not in out and "\u202e" not in out and "\x00" not in out and "\x9b" not in out and "\x07" not in out
    assert "ci-?[2J?]0;pwned?x" in out and "owner?gnp.exe" in out

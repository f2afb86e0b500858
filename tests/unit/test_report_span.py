"""`autopilot report --since`: a span in plain ASCII digits and a unit, positive and at most MAX_HOURS; anything else
is one line on stderr and exit 2, before the ledger is read."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.cli import main, parser
from tests.unit.test_events import WS


def since(text: str) -> timedelta:
    return parser().parse_args(["report", "--since", text]).since


@pytest.mark.parametrize(("text", "span"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)), ("2w", timedelta(weeks=2)),
    ("30", timedelta(days=30)), (" 1.5H ", timedelta(hours=1.5)), ("30 d", timedelta(days=30)), (".5d", timedelta(hours=12)),
])
def test_a_span_in_digits_and_a_unit_is_read_as_written(text, span):
    assert since(text) == span


@pytest.mark.parametrize("text", [
    "３０d",           # fullwidth digits, which float() reads as 30
    "٣٠d",            # Arabic-Indic digits
    "1_000d",         # float() reads underscores as digit separators
    "1e-300d",        # an exponent: a span too small for a timedelta, read as no time at all
    "0.00000000000001d",
    "1e9h", "0d", "-5d", "99999999d", "nan", "inf", "", "d", "30x", "30dd",
])
def test_a_span_that_is_not_plain_digits_and_a_unit_or_not_a_positive_time_is_one_line_and_exit_2(text, capsys):
    with pytest.raises(SystemExit) as refused:
        since(text)
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err.count("\n") == 1 and "--since" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["not-yet/", "", "."])
def test_an_html_report_file_that_names_a_directory_is_refused_in_one_line_before_anything_is_read_or_written(
        name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALLOWED_WORKSPACES", WS.id)
    # Nothing listens here: the refusal must come before the ledger is read.
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                       "TableEndpoint=http://127.0.0.1:9/devstoreaccount1")
    assert main(["report", "--output", "html", "--file", name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "directory" in err and "--file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["report", "--since", "-3d"], ["report", "--since=-3d"], ["report", "--json", "--since", "-3d"]])
def test_a_negative_span_is_one_line_saying_what_since_expects(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--since" in err and "expected how far back without a sign, e.g. 3d" in err
    assert "expected one argument" not in err


@pytest.mark.parametrize(("argv", "says"), [
    (["history", "--hours", "-1e3"], "--hours: must be positive"),
    (["history", "--limit", "-5"], "--limit: must be positive"),
])
def test_a_negative_window_or_limit_reaches_the_options_own_check(argv, says, capsys):
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_only_a_signed_value_of_a_valued_option_is_glued_to_it():
    from shared.cli import _glued

    assert _glued(["report", "--since", "-3d", "--json"]) == ["report", "--since=-3d", "--json"]
    assert _glued(["report", "--since", "--json"]) == ["report", "--since", "--json"]  # argparse says the value is missing
    assert _glued(["explain", "--", "--since", "-3d"]) == ["explain", "--", "--since", "-3d"]

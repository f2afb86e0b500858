"""The emulator's run history $filter (local/emulator/runhistory.py): the OData subset AML's SDKs send,
with `and` binding tighter than `or`, `not`, parentheses and null; anything else refused, never guessed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local.emulator.runhistory import FilterError, parse_filter

RUN = {"runId": "r1", "status": "Running", "target": "CPU-Cluster", "endTimeUtc": None, "parentRunId": None,
       "createdUtc": datetime(2026, 12, 1, 10, tzinfo=UTC), "runType": "azureml.scriptrun", "startTimeUtc": None}


@pytest.mark.parametrize(("text", "expected"), [
    ("Status eq 'Running'", True),
    ("status EQ running", True),  # the v1 SDK's unquoted value; fields and operators in any case
    ("(Status ne 'Canceled' and Status ne 'Completed' and Status ne 'Failed') or EndTimeUtc ge 2026-12-01T00:00:00Z", True),
    ("Status eq 'Completed' or Status eq 'Failed' and Target eq 'cpu-cluster'", False),
    ("Status eq 'Running' or Status eq 'Failed' and Target eq 'other'", True),  # and binds tighter
    ("(Status eq 'Running' or Status eq 'Failed') and Target eq 'other'", False),
    ("not Status eq 'Completed'", True),
    ("EndTimeUtc ge 2026-01-01T00:00:00Z", False),  # no end: a comparison with nothing is false
    ("EndTimeUtc eq null and ParentRunId eq null", True),
    ("CreatedUtc ge 2026-12-01T09:00:00+00:00 and CreatedUtc lt 2026-12-01T11:00:00.000Z", True),
    ('Target eq "cpu-cluster"', True),
])
def test_a_filter_selects_as_odata_would(text: str, expected: bool) -> None:
    assert parse_filter(text)(RUN) is expected


@pytest.mark.parametrize("text", ["Colour eq 'red'", "Status like 'Run%'", "(Status eq 'Running'", "Status eq", "Status eq 'a' 'b'",
                                  "Status eq 'Running' and", ")"])
def test_a_filter_it_does_not_understand_is_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)

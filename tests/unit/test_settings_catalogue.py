"""Every setting the code reads appears in the catalogue, the sample settings and the README, with the same default."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
NAMES = {s.name for s in CATALOGUE}


def test_the_sample_settings_hold_every_setting_and_nothing_unknown():
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    host_only = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
    assert set(values) - host_only == NAMES
    for s in CATALOGUE:
        if s.default is not None and s.name not in ("ALLOWED_WORKSPACES", "ALLOWED_VAULTS", "AzureWebJobsStorage"):  # local values (the demo's, Azurite)
            assert values[s.name] == s.default, s.name


def test_the_readme_table_matches_the_catalogue():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]*) \| (.*) \|$", table, re.M)
    assert [r[0] for r in rows] == [s.name for s in CATALOGUE]
    for (name, default, help_), s in zip(rows, CATALOGUE, strict=True):
        assert default.strip() == ("(required)" if s.default is None else f"`{s.default}`"), name
        assert help_.strip() == s.help, name


def test_only_the_settings_module_reads_the_environment():
    readers = []
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), ROOT / "function_app.py"]:
        if path.name != "settings.py" and re.search(r"os\.environ|os\.getenv", path.read_text()):
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_every_setting_name_used_in_bindings_is_in_the_catalogue():
    used = set()
    for path in (ROOT / "functions").rglob("*.py"):
        used |= set(re.findall(r'"%([A-Za-z0-9_]+)%"', path.read_text()))
        used |= set(re.findall(r'connection="([A-Za-z0-9_]+)"', path.read_text()))
    assert used and used <= NAMES


def test_every_timer_schedule_setting_is_validated_as_a_schedule():
    """The host reads a timer's `%NAME%` setting as its schedule: each such setting is checked at start as one."""
    from shared.settings import SCHEDULES

    timers = set()
    for path in (ROOT / "functions").rglob("*.py"):
        timers |= set(re.findall(r'timer_trigger\([^)]*schedule="%([A-Za-z0-9_]+)%"', path.read_text()))
    assert timers and timers == set(SCHEDULES)

"""Hypothesis profiles for the intake's properties: a modest run in `make test`, thousands in `make fuzz`.

`HYPOTHESIS_PROFILE=fuzz` (what `make fuzz` sets) runs each property `FUZZ_EXAMPLES` times (2,000 by
default: over 10,000 payloads across the properties) and prints how many were tried and how many crashed.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

# `make test` draws the same examples on every run (a run is reproducible, and red only for a change);
# `make fuzz` draws new ones each time, many more, to find what the fixed ones do not.
settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")), deadline=None, database=None,
                          phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.unit.test_intake_properties import TRIED

    if not TRIED:
        return
    crashed = [r for r in terminalreporter.stats.get("failed", []) if "test_intake_properties" in r.nodeid]
    kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(TRIED.items()))
    terminalreporter.write_line(f"fuzz: {sum(TRIED.values()):,} payloads tried ({kinds}); {len(crashed)} crash(es)")

"""`make demo` as an operator runs it: it ends with the savings summary and writes the report page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_ends_with_the_savings_summary_and_writes_the_html_report():
    env = {k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"}
    done = subprocess.run([sys.executable, "-m", "local.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    savings = next(line for line in lines if line.startswith("savings since "))
    assert re.search(r"freed by \d+ action\(s\), [1-9]\d* cores", savings), savings
    page = Path(next(line for line in lines if line.startswith("report written to ")).removeprefix("report written to "))
    html = page.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html

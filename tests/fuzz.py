"""`make fuzz`: the intake's properties (tests/unit/test_intake_properties.py) under the `fuzz` profile,
split across the machine's cores, with one line per share as it ends and the total at the end.

Each share is a pytest run of some of the properties; its own summary line ("fuzz: N payloads tried
…; C crash(es)", from tests/unit/conftest.py) is read back and added up. Exit 0 only if every share
ran and none crashed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PROPERTIES = Path(__file__).parent / "unit" / "test_intake_properties.py"
SUMMARY = re.compile(r"^fuzz: ([\d,]+) payloads tried .*; (\d+) crash\(es\)$", re.MULTILINE)


def _properties() -> list[str]:
    return re.findall(r"^def (test_\w+)\(", PROPERTIES.read_text(), re.MULTILINE)


def main() -> int:
    names = _properties()
    shares = max(1, min(os.cpu_count() or 1, len(names)))
    env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz"}
    runs = []
    for i in range(shares):
        selected = names[i::shares]
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROPERTIES), "-k", " or ".join(selected)]
        runs.append((selected, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    tried = crashed = 0
    ok = True
    for selected, run in runs:
        output, _ = run.communicate()
        found = SUMMARY.search(output)
        if found is None or run.returncode != 0:
            ok = False
            print(output, end="", flush=True)
        if found is not None:
            tried += int(found.group(1).replace(",", ""))
            crashed += int(found.group(2))
            print(f"{found.group(0)}  [{len(selected)} properties]", flush=True)
    print(f"fuzz: {tried:,} payloads tried in all; {crashed} crash(es)", flush=True)
    return 0 if ok and crashed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Cold import: what a fresh Functions worker pays before it can index the app.

Each sample is a new interpreter (``python -c "import function_app"``), timed wall-clock from
spawn to exit, so interpreter start-up is included; ``python -c pass`` measures that start-up
alone, so the difference is the app's own cost. The three commands are interleaved so that any
drift of the machine's load affects them alike, after one unmeasured warm-up of each (the first
run after an install also writes bytecode caches).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import Stats, Table

REPO = Path(__file__).resolve().parents[1]
BUDGET_MS = 300.0
COMMANDS: tuple[tuple[str, str], ...] = (
    ("python -c pass", "pass"),
    ("import function_app", "import function_app"),
    ("import azure.ai.ml", "import azure.ai.ml"),
)
APP = "import function_app"
PROBE = "import json, sys, function_app; print(json.dumps({'aml': 'azure.ai.ml' in sys.modules, 'modules': len(sys.modules)}))"


@dataclass(frozen=True)
class Probe:
    aml_loaded: bool
    modules: int


def run_once(code: str, python: str = sys.executable, cwd: Path = REPO) -> float:
    """Milliseconds from spawn to exit of ``python -c code``; raises when it fails."""
    start = time.perf_counter()
    done = subprocess.run([python, "-c", code], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def probe(python: str = sys.executable, cwd: Path = REPO) -> Probe:
    """Whether importing the app dragged azure.ai.ml in, and how many modules it loaded."""
    out = subprocess.run([python, "-c", PROBE], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    raw = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return Probe(bool(raw["aml"]), int(raw["modules"]))


def measure(n: int, timer: Callable[[str], float] = run_once, commands: Sequence[tuple[str, str]] = COMMANDS) -> dict[str, list[float]]:
    """n interleaved samples of each command (after one warm-up each)."""
    for _, code in commands:
        timer(code)
    samples: dict[str, list[float]] = {label: [] for label, _ in commands}
    for _ in range(n):
        for label, code in commands:
            samples[label].append(timer(code))
    return samples


def table(samples: dict[str, list[float]], found: Probe, budget_ms: float = BUDGET_MS) -> Table:
    stats = {label: Stats.of(values) for label, values in samples.items()}
    base = stats.get("python -c pass")
    n = max(s.n for s in stats.values())
    t = Table(f"1. Cold import (fresh interpreter per sample, N={n}, wall ms incl. interpreter start)",
              ["command", "min", "median", "max", "median - empty"])
    for label, s in stats.items():
        t.add(label, s.min, s.median, s.max, None if base is None or label == "python -c pass" else s.median - base.median)
    t.notes.append(f"after `import function_app`: azure.ai.ml in sys.modules = {'yes' if found.aml_loaded else 'no'}; "
                   f"{found.modules} modules loaded")
    app = stats[APP]
    aml = stats.get("import azure.ai.ml")
    if aml is not None:
        t.notes.append(f"azure.ai.ml alone costs {aml.median / app.median:.1f}x the whole app import; the adapters import it lazily")
    ok = app.median <= budget_ms and not found.aml_loaded
    why = f"median {app.median:.0f} ms (worst {app.max:.0f} ms) vs budget {budget_ms:.0f} ms"
    if found.aml_loaded:
        why += "; azure.ai.ml is imported at cold start"
    t.verdict = f"{'PASS' if ok else 'FAIL'}: import function_app {why}"
    return t


def run(n: int = 10) -> Table:
    return table(measure(n), probe())

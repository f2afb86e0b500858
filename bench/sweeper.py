"""One sweep in a process of its own, as a Functions worker runs it: ``python -m bench.sweeper``.

Reads ``{"env": {app settings}, "kind": "idle-sweep" | "cluster-sweep", "workspace": id}`` on
stdin, runs the real engine (real adapters and SDKs, against whatever ``env`` points at) once, and
prints one JSON line: the sweep's wall time (imports excluded: a warm worker has them), the
process's peak resident memory (imports included), and what it concluded.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime


def peak_rss_mb() -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    spec = json.load(sys.stdin)
    from shared.runtime import Wiring
    from shared.settings import Settings
    from shared.work import Kind, sweep

    engine = Wiring(Settings.from_env(spec["env"])).engine()
    now = datetime.now(UTC)
    started = time.perf_counter()
    report = engine.run(sweep(Kind(spec["kind"]), spec["workspace"], now), now)
    wall = time.perf_counter() - started
    decisions = Counter(v.decision.value for v in report.verdicts)
    outcomes = Counter(o.status.value for o in report.outcomes)
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "decisions": dict(decisions), "outcomes": dict(outcomes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench``: run every benchmark and print its table (see ``bench/__init__.py``).

Whatever ends the run (an error, Ctrl-C, SIGTERM), every process the bench started (Azurite, the
dev host) is stopped and the emulator shut down before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.report import Table

SECTIONS = ("imports", "events", "arm", "host", "scale", "fleet")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="aml-autopilot benchmarks, printed as tables.")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--imports", type=int, default=10, metavar="N", help="cold-import samples per command (default 10)")
    parser.add_argument("--events", type=int, default=5000, metavar="N", help="events in the throughput batch (default 5000)")
    parser.add_argument("--deliveries", type=int, default=50, metavar="N", help="Event Grid deliveries through the dev host (default 50)")
    parser.add_argument("--scale-cells", default="", metavar="NxM,...",
                        help="computes x jobs cells of the scale section (default: " + ",".join(f"{n}x{m}" for n, m in _default_cells()) + ")")
    parser.add_argument("--fleet", default="1000x20x50,1000x20x1", metavar="WxCxS[,...]",
                        help="fleets: workspaces x computes each x subscriptions, comma-separated (default 1000x20x50, where "
                             "ARM's per-subscription budget does not bind, and 1000x20x1, where it does)")
    parser.add_argument("--fleet-budget", type=int, default=90, metavar="PCT", help="ARM_BUDGET_PERCENT of the fleet's app (default 90)")
    parser.add_argument("--fleet-json", default=".local-run/bench-fleet.json", metavar="PATH", help="where the fleet's figures go")
    args = parser.parse_args(argv)
    try:
        args.scale_cells = [tuple(int(v) for v in c.lower().split("x")) for c in args.scale_cells.split(",") if c.strip()] or _default_cells()
    except ValueError:
        parser.error("--scale-cells takes cells such as 10x100,1000x10000")
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    try:
        args.fleet = [tuple(int(n) for n in spec.lower().split("x")) for spec in args.fleet.split(",")]
        assert all(len(f) == 3 and all(n > 0 for n in f) for f in args.fleet)
    except (ValueError, AssertionError):
        parser.error(f"--fleet: expected WORKSPACESxCOMPUTESxSUBSCRIPTIONS such as 1000x20x50, got {args.fleet!r}")
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def _default_cells() -> list[tuple[int, int]]:
    from bench.scale import CELLS

    return list(CELLS)


def show(tables: Table | list[Table]) -> list[Table]:
    out = tables if isinstance(tables, list) else [tables]
    for t in out:
        print(t.render(), end="\n\n", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    print(f"aml-autopilot bench — Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPU(s)\n", flush=True)
    started = time.perf_counter()
    printed: list[Table] = []
    errors: list[str] = []

    def section(name: str, body: Callable[[], Table | list[Table]]) -> None:
        if name not in args.only:
            return
        try:
            printed.extend(show(body()))
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            errors.append(name)
            print(f"== {name}: could not run ==\n{type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            print(flush=True)

    from bench import events, imports

    try:
        section("imports", lambda: imports.run(args.imports))
        section("events", lambda: events.run(args.events))
        if {"arm", "host", "scale", "fleet"} & set(args.only):
            with contextlib.ExitStack() as stack:
                from bench import arm, fleet, host, localstack

                try:
                    azure = localstack.start(stack)
                except Exception as exc:
                    errors.append("local Azure")
                    print(f"== the local Azure (emulator + Azurite) did not start ==\n{type(exc).__name__}: {exc}\n", flush=True)
                else:
                    section("arm", lambda: arm.run(azure))
                    env = arm.Runner(azure).env(AUTOPILOT_MODE="observe")
                    section("host", lambda: host.run(azure, stack, env, args.deliveries))
                    from bench import scale

                    section("scale", lambda: scale.run(azure, env, args.scale_cells))
                    section("fleet", lambda: fleet.run_all(azure, stack, env, args.fleet, args.fleet_budget, Path(args.fleet_json)))
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({str(exc) or 'Ctrl-C'}): everything the bench started has been stopped", file=sys.stderr)
        return 130
    failed = [t.title.split(" (")[0] for t in printed if t.verdict.startswith("FAIL")]
    print(f"bench finished in {time.perf_counter() - started:.0f} s"
          + (f"; FAIL: {', '.join(failed)}" if failed else "")
          + (f"; could not run: {', '.join(errors)}" if errors else ""), flush=True)
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())

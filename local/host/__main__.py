"""`python -m local.host --project DIR [--port 7071] [--timers] [--settings FILE]`.

Prints one JSON line on stdout when ready:
`{"url": ..., "functions": [...], "errors": {...}, "master_key": ..., "function_key": ...,
"eventgrid_extension_key": ...}`;
logs go to stderr. Runs until SIGTERM or SIGINT, then stops cleanly (exit 0). A project that
cannot be loaded exits 1 with a one-line reason on stderr. The working directory becomes the
project directory, as under `func start`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from local.host.index import AppLoadError
from local.host.runtime import Host


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.host", description="Local Azure Functions development host.")
    parser.add_argument("--project", required=True, type=Path, help="the Functions project directory")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: settings Host.LocalHttpPort, else 7071; 0 = any free port)")
    parser.add_argument("--timers", action="store_true", help="fire timer triggers on their schedules")
    parser.add_argument("--settings", type=Path, default=None, help="settings file instead of local.settings.json")
    parser.add_argument("--log-level", default=os.environ.get("LOCAL_HOST_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDKs log every HTTP exchange at INFO; the host's own lines are the useful ones.
    logging.getLogger("azure").setLevel(logging.WARNING)
    project = args.project.resolve()
    settings_file = args.settings.resolve() if args.settings else None
    if not project.is_dir():
        print(f"error: project directory {project} does not exist", file=sys.stderr)
        return 1
    os.chdir(project)
    host = Host(project, port=args.port, timers=args.timers, settings_file=settings_file)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        ready = host.start()
    except (AppLoadError, ValueError, OSError) as exc:  # settings, schedules, connection strings, ports
        if exc.__cause__ is not None:
            # The one-line reason below is what scripts read; the traceback is for the developer.
            logging.getLogger("local.host").error("start-up failed", exc_info=exc.__cause__)
        print(f"error: {exc}", file=sys.stderr)
        host.stop(grace=0)
        return 1
    print(json.dumps(ready), flush=True)
    stop.wait()
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m local.emulator``: serve the emulator until SIGTERM or SIGINT.

Prints one JSON line when ready: ``{"url", "ca", "identity_endpoint", "identity_header"}``.
Clients trust ``ca`` through ``REQUESTS_CA_BUNDLE`` and reach the token endpoint through
``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local.emulator.server import start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="runtime folder for TLS material (never commit it)")
    parser.add_argument("--scenario", type=Path, help="scenario JSON to seed at start")
    args = parser.parse_args(argv)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    handle = start(args.host, args.port, args.state_dir.resolve(), args.scenario)
    print(json.dumps(handle.announcement()), flush=True)
    try:
        # wait() with a timeout keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

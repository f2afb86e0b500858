"""Start and stop Azurite (blob, queue, table) for tests, the demo and CI.

Rules:
- `start(workdir, host="127.0.0.1", ports=None)` runs `local/node_modules/.bin/azurite` with
  `--disableTelemetry --silent --skipApiVersionCheck --loose --location WORKDIR`, on loopback.
  Without `ports` Azurite picks free ports itself (port 0) and reports them, so two runs never
  race for a port; `ports` is (blob, queue, table).
- `start` returns once all three services accept connections, and raises RuntimeError with
  Azurite's output when it exits or is not ready within `timeout`.
- The handle's `connection_string` is the well-known development account (devstoreaccount1) with
  explicit Blob/Queue/Table endpoints.
- `tls=(cert, key)` serves HTTPS with that certificate and turns on `--oauth basic`: Azurite then
  also takes Entra bearer tokens, checking issuer, audience and expiry (not the signature), which
  is how the identity path to storage is tested against the emulator's managed-identity tokens.
  `table_endpoint` is the table service's URL either way. `stop()` terminates the whole process group, so no node
  process is left behind.
- `python -m local.azurite --workdir DIR` prints one JSON line `{"connection_string": ...}` when
  ready and runs until SIGTERM/SIGINT.
- When Azurite is not installed, a one-line error names `make install` / `npm --prefix local ci`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

AZURITE = Path(__file__).resolve().parent / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# The documented, public development-storage key; it grants nothing outside an emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://[^\s:]+:(\d+)")


class AzuriteNotInstalled(RuntimeError):
    """Azurite's npm package is missing."""


@dataclass
class AzuriteHandle:
    """A running Azurite process and where it listens."""

    process: subprocess.Popen[bytes]
    host: str
    blob_port: int
    queue_port: int
    table_port: int
    output: list[str] = field(default_factory=list, repr=False)
    scheme: str = "http"

    @property
    def table_endpoint(self) -> str:
        return f"{self.scheme}://{self.host}:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        base = f"{self.scheme}://{self.host}"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate Azurite and every process it started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        # node may leave children in the group even after the parent exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start(
    workdir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] | None = None,
    *,
    timeout: float = 30.0,
    tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> AzuriteHandle:
    """Start Azurite with its data in `workdir` and wait until blob, queue and table accept connections."""
    if not AZURITE.exists():
        raise AzuriteNotInstalled(f"Azurite is not installed ({AZURITE} missing): run `make install` or `npm --prefix local ci`")
    location = Path(workdir)
    location.mkdir(parents=True, exist_ok=True)
    blob, queue, table = ports or (0, 0, 0)
    command = [
        str(AZURITE),
        "--disableTelemetry",
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        "--location",
        str(location),
        "--blobHost",
        host,
        "--queueHost",
        host,
        "--tableHost",
        host,
        "--blobPort",
        str(blob),
        "--queuePort",
        str(queue),
        "--tablePort",
        str(table),
    ]
    if tls:
        command += ["--cert", str(tls[0]), "--key", str(tls[1]), "--oauth", "basic"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    handle = AzuriteHandle(process, host, blob, queue, table, scheme="https" if tls else "http")
    found: dict[str, int] = {}
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            handle.output.append(line)
            match = _LISTENING.search(line)
            if match:
                found[match.group(1)] = int(match.group(2))
                if len(found) == 3:
                    ready.set()
        ready.set()

    threading.Thread(target=read_output, name="azurite-output", daemon=True).start()
    deadline = time.monotonic() + timeout
    ready.wait(timeout)
    if len(found) == 3:
        handle.blob_port, handle.queue_port, handle.table_port = found["Blob"], found["Queue"], found["Table"]
    while time.monotonic() < deadline and process.poll() is None:
        if len(found) == 3 and all(_accepts(host, p) for p in (handle.blob_port, handle.queue_port, handle.table_port)):
            return handle
        time.sleep(0.05)
    handle.stop()
    raise RuntimeError("Azurite did not start:\n" + "\n".join(handle.output[-20:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.azurite", description="Run Azurite until SIGTERM.")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        handle = start(args.workdir, args.host)
    except (AzuriteNotInstalled, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"connection_string": handle.connection_string}), flush=True)
    while not stop.wait(0.5):
        if handle.process.poll() is not None:
            print(f"error: Azurite exited with code {handle.process.returncode}", file=sys.stderr)
            return 1
    handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

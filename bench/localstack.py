"""The local Azure the bench measures against: the emulator in this process, Azurite as a child.

Everything started here is stopped by the ``ExitStack`` it is registered on, whatever ends the
bench (an error, Ctrl-C, SIGTERM), and the process environment it changes is restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables that would make DefaultAzureCredential pick another credential than App Service MI.
FOREIGN_IDENTITY_VARS = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
)


@dataclass
class LocalAzure:
    emulator: Any  # local.emulator.server.EmulatorHandle
    client: Any  # local.emulator.client.EmulatorClient
    storage: Any  # local.azurite.AzuriteHandle
    scenario: dict[str, Any]
    workdir: Path

    def journal_seq(self) -> int:
        """The emulator's journal position now (read in-process: the control API would add latency)."""
        app = self.emulator.app
        with app.lock:
            return app.journal[-1]["seq"] if app.journal else 0

    def journal(self, since: int = 0, until: int | None = None) -> list[dict[str, Any]]:
        app = self.emulator.app
        with app.lock:
            return [dict(e) for e in app.journal if e["seq"] > since and (until is None or e["seq"] <= until)]

    def reset(self) -> None:
        self.client.reset(self.scenario)


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) process environment variables; restore them all afterwards."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while a child process starts and its stop is registered.

    Children run in their own sessions (a terminal's Ctrl-C does not reach them), so an interrupt
    between their spawn and the registration of their stop would leave them running.
    """
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    before = {signum: signal.signal(signum, lambda signum, _frame: caught.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


def start(stack: contextlib.ExitStack) -> LocalAzure:
    """Start the emulator (demo scenario) and Azurite; their stop is registered on `stack`."""
    import json

    from local import azurite
    from local.emulator import server
    from local.emulator.client import DEMO_SCENARIO, EmulatorClient

    workdir = Path(tempfile.mkdtemp(prefix="aml-autopilot-bench-"))
    stack.callback(shutil.rmtree, workdir, True)
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    handle = server.start("127.0.0.1", 0, workdir / "emulator", scenario)
    stack.callback(handle.stop)
    with deferred_signals():
        storage = azurite.start(workdir / "azurite")
        stack.callback(storage.stop)
    stack.enter_context(environment(
        REQUESTS_CA_BUNDLE=handle.ca, IDENTITY_ENDPOINT=handle.identity_endpoint, IDENTITY_HEADER=handle.identity_header,
        # azure-ai-ml records its custom cloud here; restoring it keeps a later child process clean.
        AZUREML_CURRENT_CLOUD=os.environ.get("AZUREML_CURRENT_CLOUD"),
        **dict.fromkeys(FOREIGN_IDENTITY_VARS),
    ))
    return LocalAzure(handle, EmulatorClient(handle.url, handle.ca, handle.identity_header), storage, scenario, workdir)

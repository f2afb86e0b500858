"""End-to-end fixtures: the autopilot's own code with the real SDKs against the emulator and Azurite.

- ``storage`` (session): one Azurite for the session.
- ``world`` (function): the emulator reset to the demo scenario, a fresh ledger table and work
  queue, and builders for the real shell: ``settings()``, ``engine()``, ``rotator()``, ``ledger()``.
  Engines built here run in the test process, so a test can pass ``now`` and step through time.
- ``app`` (function): a factory starting the dev host on the project itself with the world's
  settings (plus overrides); the hosts it started are stopped after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local import azurite
from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient
from local.host import server as host_server
from local.stack import REPO, Stack, app_settings
from shared.adapters.ledger import Ledger
from shared.engine import Engine
from shared.model import ResourceId
from shared.rotation import Rotator
from shared.runtime import Wiring
from shared.settings import Settings

WS = ResourceId.parse(DEMO_WORKSPACE_ID)
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that only read (ARM models some reads as actions; a Resource Graph query is a POST).
READ_ACTIONS = ("/listKeys", "/listSecrets", "/listNodes", "/getLogs", "/Microsoft.ResourceGraph/resources")


def azure_writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal entries that change something in Azure (ARM and Key Vault writes; not token requests)."""
    return [e for e in entries if e["method"] in WRITE_METHODS and e["service"] in ("arm", "keyvault")
            and not e["path"].endswith(READ_ACTIONS)]


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite.AzuriteHandle]:
    handle = azurite.start(tmp_path_factory.mktemp("azurite"))
    try:
        yield handle
    finally:
        handle.stop()


@dataclass
class World:
    emulator: EmulatorClient
    storage: azurite.AzuriteHandle
    scenario: dict[str, Any]
    table: str = field(default_factory=lambda: f"ledger{uuid.uuid4().hex[:12]}")
    queue: str = field(default_factory=lambda: f"work-{uuid.uuid4().hex[:12]}")

    def env(self, mode: str = "enforce", **overrides: str) -> dict[str, str]:
        topics = (self.scenario.get("sinks") or {}).get("eventgridTopics") or {}
        return app_settings(self.emulator.url, self.emulator.ca, self.emulator.identity_header, self.storage.connection_string,
                            mode=mode, eventgrid_key=str(topics.get("autopilot-events", "")),
                            extra={"LEDGER_TABLE": self.table, "WORK_QUEUE": self.queue, **overrides})

    def settings(self, mode: str = "enforce", **overrides: str) -> Settings:
        return Settings.from_env(self.env(mode, **overrides))

    def ledger(self, settings: Settings | None = None) -> Ledger:
        s = settings or self.settings()
        return Ledger(s.storage_connection, s.ledger_table)

    def engine(self, settings: Settings | None = None) -> Engine:
        s = settings or self.settings()
        return Wiring(s, self.ledger(s)).engine()

    def rotator(self, settings: Settings | None = None, checkpoint: Callable[[Any], None] | None = None) -> Rotator:
        s = settings or self.settings()
        return Wiring(s, self.ledger(s)).rotator(checkpoint)

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        return azure_writes(self.emulator.journal(since))

    def mark(self) -> int:
        """The journal position now, to look at what happens after."""
        entries = self.emulator.journal()
        return entries[-1]["seq"] if entries else 0


@pytest.fixture
def world(emulator: EmulatorClient, demo: dict[str, Any], storage: azurite.AzuriteHandle) -> World:
    return World(emulator, storage, demo)


@pytest.fixture
def app(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Stack]]:
    """`app(mode="enforce", **settings)` → a Stack whose dev host runs this project against the world."""
    started: list[Stack] = []
    # azure-ai-ml records its cloud in the process environment; an in-process engine test may have left
    # one behind, and a host inheriting it would look that cloud up before registering its own.
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)

    def start(mode: str = "enforce", **overrides: str) -> Stack:
        env = world.env(mode, **overrides)
        handle = host_server.start(REPO, env=env, log_path=tmp_path / f"host-{len(started)}.log")
        if handle.errors:
            handle.stop()
            raise RuntimeError(f"functions failed to index: {handle.errors}")
        stack = Stack(world.emulator, world.storage, env, handle)
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            if stack.host:
                stack.host.stop()

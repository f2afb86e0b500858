"""Composition of the real adapters: the one place the engine and the rotator are wired to Azure.

The Function App uses one `Wiring` per process (token caches and connection pools live across
invocations); the operator's command, the tests and the benchmarks build their own from explicit
settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.engine import Engine, Report
from shared.model import ResourceId
from shared.ports import LedgerPort
from shared.rotation import Rotator
from shared.settings import Settings, current
from shared.work import Kind, WorkItem


class Wiring:
    """The real adapters for one set of settings, each built on first use and kept (one per resource)."""

    def __init__(self, settings: Settings, ledger: LedgerPort | None = None) -> None:
        from shared.adapters.arm import ArmClient
        from shared.adapters.metrics import Metrics
        from shared.adapters.notify import Notifier

        self.settings = settings
        self.arm = ArmClient(settings)
        self.metrics = Metrics(settings)
        self.notifier = Notifier(settings)
        self._ledger = ledger
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def ledger(self) -> LedgerPort:
        if self._ledger is None:
            from shared.adapters.ledger import open_ledger

            self._ledger = open_ledger(self.settings)
        return self._ledger

    def _one(self, kind: str, rid: ResourceId, build: Callable[[], Any]) -> Any:
        key = (kind, rid.key)
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def workspace(self, rid: ResourceId) -> Any:
        from shared.adapters.aml import Workspace

        return self._one("workspace", rid, lambda: Workspace(self.settings, rid, self.arm))

    def vault(self, rid: ResourceId) -> Any:
        from shared.adapters.keyvault import Vault

        return self._one("vault", rid, lambda: Vault(self.settings, rid))

    def storage(self, rid: ResourceId) -> Any:
        from shared.adapters.storage import StorageAccount

        return self._one("storage", rid, lambda: StorageAccount(self.settings, rid))

    def engine(self, settings: Settings | None = None) -> Engine:
        """The engine; `settings` (the same ones, allowed workspaces resolved by shared.fleet) when given."""
        return Engine(settings or self.settings, self.workspace, self.metrics, self.ledger, self.notifier)

    def rotator(self, checkpoint: Callable[[Any], None] | None = None, settings: Settings | None = None) -> Rotator:
        return Rotator(settings or self.settings, self.vault, self.storage, self.workspace, self.ledger, self.notifier, checkpoint)


@functools.cache
def _process_wiring() -> Wiring:
    return Wiring(current())


def process_ledger() -> LedgerPort:
    return _process_wiring().ledger


def engine() -> Engine:
    from shared import fleet

    return _process_wiring().engine(fleet.current())


def rotator() -> Rotator:
    from shared import fleet

    return _process_wiring().rotator(settings=fleet.current())


def handle(item: WorkItem, now: datetime, dry_run: bool = False) -> Report:
    """Run one work item with the real adapters."""
    if item.kind is Kind.ROTATE:
        return rotator().run(item, now, dry_run=dry_run)
    return engine().run(item, now)

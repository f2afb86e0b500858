"""Composition of the real adapters for the running Function App (one set per process)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from shared.engine import Engine, Report
from shared.model import ResourceId
from shared.rotation import Rotator
from shared.settings import Settings, current
from shared.work import Kind, WorkItem


@functools.cache
def _adapters() -> dict[str, Any]:
    """Adapters built on first use and reused across invocations (token caches, connection pools)."""
    from shared.adapters.aml import Workspace
    from shared.adapters.arm import ArmClient
    from shared.adapters.keyvault import Vault
    from shared.adapters.metrics import Metrics
    from shared.adapters.notify import Notifier
    from shared.adapters.storage import StorageAccount
    from shared.ledger import Ledger

    settings: Settings = current()
    arm = ArmClient(settings)
    return {
        "settings": settings,
        "workspace": _memo(lambda rid: Workspace(settings, rid, arm)),
        "vault": _memo(lambda rid: Vault(settings, rid)),
        "storage": _memo(lambda rid: StorageAccount(settings, rid)),
        "metrics": Metrics(settings),
        "ledger": Ledger(settings.storage_connection, settings.ledger_table),
        "notifier": Notifier(settings),
    }


def _memo(factory: Any) -> Any:
    cache: dict[str, Any] = {}

    def get(rid: ResourceId) -> Any:
        if rid.id.lower() not in cache:
            cache[rid.id.lower()] = factory(rid)
        return cache[rid.id.lower()]

    return get


def engine() -> Engine:
    a = _adapters()
    return Engine(a["settings"], a["workspace"], a["metrics"], a["ledger"], a["notifier"])


def rotator() -> Rotator:
    a = _adapters()
    return Rotator(a["settings"], a["vault"], a["storage"], a["workspace"], a["ledger"], a["notifier"])


def handle(item: WorkItem, now: datetime, dry_run: bool = False) -> Report:
    """Run one work item with the real adapters."""
    if item.kind is Kind.ROTATE:
        return rotator().run(item, now, dry_run=dry_run)
    return engine().run(item, now)

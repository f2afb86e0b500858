"""Composition of the real adapters for the running Function App (one set per process)."""

from __future__ import annotations

import functools

from shared.engine import Engine
from shared.settings import Settings, current


@functools.cache
def engine() -> Engine:
    """The engine wired to Azure: built on first use, reused across invocations (tokens stay cached)."""
    from shared.adapters.aml import Workspace
    from shared.adapters.arm import ArmClient
    from shared.adapters.metrics import Metrics
    from shared.adapters.notify import Notifier
    from shared.ledger import Ledger

    settings: Settings = current()
    arm = ArmClient(settings)
    workspaces: dict[str, Workspace] = {}

    def workspace(rid):  # type: ignore[no-untyped-def]
        # A fresh adapter per work item would re-import nothing but re-read the location; keep one per workspace.
        if rid.id not in workspaces:
            workspaces[rid.id] = Workspace(settings, rid, arm)
        return workspaces[rid.id]

    return Engine(settings, workspace, Metrics(settings), Ledger(settings.storage_connection, settings.ledger_table),
                  Notifier(settings))

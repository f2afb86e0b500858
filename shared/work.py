"""Work items: what a trigger hands to the queue-triggered worker.

Triggers must answer fast (Event Grid waits 30 s), so they only parse, authenticate and enqueue;
the worker does the ARM calls. A work item is small JSON with a stable idempotency key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.events import QUOTA_UTILIZATION as QUOTA_METRIC
from shared.events import AlertFired, RunEnded, SecretExpiring, dimension


class Kind(StrEnum):
    IDLE_SWEEP = "idle-sweep"
    CLUSTER_SWEEP = "cluster-sweep"
    RUN_ENDED = "run-ended"
    UNUSABLE_NODES = "unusable-nodes"
    QUOTA = "quota"
    ROTATE = "rotate"


class BadWorkItem(ValueError):
    """A queue message that is not a work item; it is logged and dropped, never retried."""


@dataclass(frozen=True)
class WorkItem:
    kind: Kind
    target: str  # workspace resource id (vault resource id for rotations)
    trigger: str  # idempotency key of what caused it
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind.value, "target": self.target, "trigger": self.trigger, "params": self.params},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkItem:
        try:
            raw = json.loads(text)
        except ValueError:
            raise BadWorkItem("work item is not JSON") from None
        if not isinstance(raw, dict):
            raise BadWorkItem("work item is not a JSON object")
        try:
            kind = Kind(raw.get("kind"))
        except ValueError:
            raise BadWorkItem(f"unknown work item kind {raw.get('kind')!r}") from None
        target, trigger, params = raw.get("target"), raw.get("trigger"), raw.get("params", {})
        if not isinstance(target, str) or not target or not isinstance(trigger, str) or not trigger:
            raise BadWorkItem("work item lacks target or trigger")
        if not isinstance(params, dict):
            raise BadWorkItem("work item params is not an object")
        return cls(kind, target, trigger, params)


def sweep(kind: Kind, workspace: str, now: datetime) -> WorkItem:
    """A timer's work item: duplicate firings within the same minute share the idempotency key."""
    window = now.astimezone(UTC).strftime("%Y%m%dT%H%M")
    return WorkItem(kind, workspace, f"{kind.value}|{workspace.lower()}|{window}")


def from_event(event: RunEnded | AlertFired | SecretExpiring) -> WorkItem:
    """The work item for an accepted event, keyed by the event's own identity."""
    key = event.envelope.key
    if isinstance(event, RunEnded):
        return WorkItem(Kind.RUN_ENDED, event.workspace.id, key, {"run": event.run_id, "status": event.status})
    if isinstance(event, SecretExpiring):
        return WorkItem(Kind.ROTATE, event.vault.id, key, {"secret": event.secret, "version": event.version})
    if event.metric == QUOTA_METRIC:
        params = {"family": dimension(event, "VmFamilyName"), "cluster": dimension(event, "ClusterName"), "value": event.value}
        return WorkItem(Kind.QUOTA, event.workspace.id, key, params)
    return WorkItem(Kind.UNUSABLE_NODES, event.workspace.id, key, {"cluster": dimension(event, "ClusterName"), "value": event.value})

"""Small builders for domain values, so each test table row states only what it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.model import Cluster, ComputeInstance, CpuActivity, Job, Mark, ResourceId, compute_key

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WS = ResourceId.parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws")


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def instance(name: str = "ci", state: str = "Running", op: str | None = "Start", op_ago: float | None = 300,
             idle_shutdown: int | None = None, tags: dict[str, str] | None = None, created_ago: float | None = 10000,
             owner: str | None = "alice", size: str = "Standard_DS3_v2") -> ComputeInstance:
    return ComputeInstance(WS, name, state, size, owner, op, None if op_ago is None else ago(op_ago), idle_shutdown,
                           None if created_ago is None else ago(created_ago), tags or {})


def cluster(name: str = "cpu", min_nodes: int = 2, max_nodes: int = 4, idle_s: int | None = 1800, current: int = 2,
            unusable: int = 0, created_ago: float | None = 10000, tags: dict[str, str] | None = None,
            size: str = "Standard_DS3_v2", busy: int = 0) -> Cluster:
    return Cluster(WS, name, size, min_nodes, max_nodes, idle_s, current, unusable,
                   None if created_ago is None else ago(created_ago), tags or {}, busy_nodes=busy)


def job(name: str = "j1", status: str = "Running", compute: str | None = "ci", created_ago: float = 60,
        modified_ago: float | None = None) -> Job:
    return Job(name, status, compute, ago(created_ago), None if modified_ago is None else ago(modified_ago))


def cpu(busy_ago: float | None = None, has_data: bool = True) -> CpuActivity:
    return CpuActivity(has_data, None if busy_ago is None else ago(busy_ago))


def mark(name: str = "ci", marked_ago: float = 30) -> Mark:
    return Mark(compute_key(WS, name), ago(marked_ago), "idle")

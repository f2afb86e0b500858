"""The ports of the imperative shell: what the engine needs from Azure, its ledger and its channels.

Adapters in ``shared/adapters/`` implement them against Azure; ``local/memory.py`` implements them
in memory for unit tests and benchmarks of the real engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.jobs import JobDigest
from shared.model import (
    Cluster,
    ComputeInstance,
    CpuActivity,
    Job,
    Mark,
    OnlineDeployment,
    OnlineEndpoint,
    OtherCompute,
    Outcome,
    ResourceId,
    Status,
    Usage,
)

Compute = ComputeInstance | Cluster | OtherCompute


class WorkspacePort(Protocol):
    id: ResourceId

    def list_computes(self) -> list[Compute]: ...
    def get_compute(self, name: str) -> Compute | None: ...
    def list_jobs(self, known: JobDigest | None = None, now: datetime | None = None) -> JobDigest:
        """Every job, digested as the listing streams: the active ones and each compute's last finished one.
        With ``known`` (an earlier complete digest) only the jobs created since are listed, the rest carried over."""
        ...
    def jobs_on(self, computes: Sequence[str], ended_since: datetime) -> JobDigest:
        """The jobs on these computes not finished or ended since ``ended_since`` (complete for them
        only); JobsUnavailable when that source cannot answer."""
        ...
    def get_job(self, name: str) -> Job | None: ...
    def active_jobs(self, compute: str, horizon: datetime | None = None, known: Sequence[Job] = (), *,
                    pipelines: bool = False) -> list[Job]:
        """The non-terminal jobs on one compute now; ``horizon`` (the newest creation time a complete
        listing saw) and ``known`` (the jobs it found active there) let it read only what is new;
        ``pipelines``: also every running pipeline whose steps name it, started or not."""
        ...
    def location(self) -> str: ...
    def list_usages(self, location: str) -> list[Usage]: ...
    def vm_sizes(self, location: str) -> dict[str, tuple[str, int]]: ...
    def stop_instance(self, name: str) -> None: ...
    def set_scale(self, name: str, min_nodes: int, max_nodes: int, idle_s: int | None) -> None: ...
    def set_idle_shutdown(self, name: str, minutes: int) -> None: ...
    def cancel_job(self, name: str) -> None: ...
    def list_endpoints(self) -> list[OnlineEndpoint]: ...
    def get_endpoint(self, name: str) -> OnlineEndpoint | None: ...
    def list_deployments(self, endpoint: str) -> list[OnlineDeployment]: ...
    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment | None: ...
    def deployment_logs(self, endpoint: str, name: str, tail: int) -> str: ...
    def delete_deployment(self, endpoint: str, name: str) -> None: ...


class MetricsPort(Protocol):
    def cpu_activity(self, workspace: ResourceId, region: str, names: Iterable[str], now: datetime,
                     lookback: timedelta, busy_percent: float) -> dict[str, CpuActivity]: ...


LEASE = timedelta(minutes=10)  # a claim untouched this long belongs to a run that died


@dataclass(frozen=True)
class Claim:
    """A claim taken in the ledger; ``etag`` makes its settlement conditional on still holding it.

    ``taken_over`` is True when the claim was left by a run that died (its lease ran out): that
    run may have written already, so the re-read checks whether the change is in place.
    """

    key: str
    row: str
    etag: str
    taken_over: bool = False


@dataclass(frozen=True)
class Orphan:
    """A claim whose run died before settling it: what it was about to do."""

    key: str
    action: dict[str, Any]  # the action as claimed (kind, workspace, target, reason, params, owner)
    trigger: str
    claimed_at: datetime


class LedgerPort(Protocol):
    def claim(self, key: str, now: datetime, **fields: Any) -> Claim | str: ...
    def settle(self, claim: Claim, status: Status | str, detail: str, *, retry: bool = False) -> bool: ...
    def orphans(self, workspace_key: str, now: datetime) -> list[Orphan]: ...
    def marks(self) -> dict[str, Mark]: ...
    def put_mark(self, mark: Mark) -> None: ...
    def clear_mark(self, compute_key: str) -> None: ...
    def last_write(self, resource_key: str) -> tuple[datetime, str] | None:
        """When the resource was last written, and by which trigger."""
        ...
    def take_write(self, resource_key: str, now: datetime, cooldown: timedelta, trigger: str, *,
                   force: bool = False) -> datetime | None:
        """Take the resource's write slot (atomically); None when taken, else the last write that holds it."""
        ...
    def release_write(self, resource_key: str, now: datetime) -> None: ...
    def count_write(self, resource_key: str, at: datetime) -> str: ...
    def uncount_write(self, place: str, at: datetime) -> None: ...
    def writes_since(self, since: datetime) -> int: ...
    def restores(self) -> dict[str, tuple[int, datetime]]: ...
    def put_restore(self, cluster_key: str, max_nodes: int, at: datetime) -> None: ...
    def clear_restore(self, cluster_key: str) -> None: ...
    def record(self, outcome: Outcome) -> None: ...
    def job_digest(self, workspace_key: str) -> tuple[str, str | None]:
        """The workspace's kept job digest (text) and its ETag; ("", None) when none is kept."""
        ...
    def put_job_digest(self, workspace_key: str, text: str, etag: str | None) -> bool:
        """Keep the digest if the row is still as read (``etag``; None: only if there is none); False otherwise."""
        ...


class NotifierPort(Protocol):
    @property
    def channels(self) -> Sequence[str]: ...

    def send(self, outcome: Outcome) -> list[str]:
        """Send to every configured channel; the names of those that accepted it."""
        ...

    def reaches(self, owner: str | None) -> bool:
        """Whether an owner's warnings have a route of their own (a webhook for that owner)."""
        ...

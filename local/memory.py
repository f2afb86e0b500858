"""In-memory implementations of the engine's ports (``shared/ports.py``): a workspace, a ledger, a
notifier and metrics that live in a dict.

They follow the real adapters' contracts — the ledger's claims are insert-if-absent with ETags,
leases and conditional settlement, like Table storage; a workspace write changes what the next
read returns, like ARM — so the real engine and guards run on them unchanged, in microseconds:
the unit tests of every guard and action kind, and the benchmarks of the engine's own cost.
``fail`` maps a method name (or ``name:first-argument``) to the error it raises (a transient Azure
error, a vanished resource…).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.errors import AzureError, Gone
from shared.jobs import JobDigest, digest, of_computes
from shared.model import (
    CpuActivity,
    Job,
    Mark,
    OnlineDeployment,
    OnlineEndpoint,
    Outcome,
    ResourceId,
    Status,
    Usage,
    fold,
    name_key,
    same_name,
)
from shared.ports import LEASE, Claim, Compute, Orphan

_etags = itertools.count(1)


class _Faults:
    fail: dict[str, Exception]
    calls: list[tuple[str, tuple[Any, ...]]]

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        # "method" fails every call; "method:first-argument" only the calls about that resource.
        error = self.fail.get(f"{method}:{args[0]}") if args else None
        error = error or self.fail.get(method)
        if error is not None:
            raise error


@dataclass
class MemoryWorkspace(_Faults):
    id: ResourceId
    computes: list[Compute] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    region: str = "westeurope"
    usages: list[Usage] = field(default_factory=list)
    sizes: dict[str, tuple[str, int]] = field(default_factory=dict)
    endpoints: list[OnlineEndpoint] = field(default_factory=list)
    deployments: list[OnlineDeployment] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # "endpoint/deployment" → log text
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def _find(self, name: str) -> int | None:
        return next((i for i, c in enumerate(self.computes) if name_key(c.name) == name_key(name)), None)

    def _replace(self, name: str, **changes: Any) -> None:
        index = self._find(name)
        if index is None:
            raise Gone(f"{name}: not found")
        self.computes[index] = replace(self.computes[index], **changes)

    @property
    def writes(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [c for c in self.calls if c[0] in ("stop_instance", "set_scale", "set_idle_shutdown", "delete_deployment", "cancel_job")]

    def list_computes(self) -> list[Compute]:
        self._call("list_computes")
        return list(self.computes)

    def get_compute(self, name: str) -> Compute | None:
        self._call("get_compute", name)
        index = self._find(name)
        return None if index is None else self.computes[index]

    def list_jobs(self, known: JobDigest | None = None, now: datetime | None = None) -> JobDigest:
        """Always the complete listing (what ``known`` saves is reading, which costs nothing here)."""
        self._call("list_jobs")
        out = digest(self.jobs)
        out.full_at = now
        return out

    def jobs_on(self, computes: Sequence[str], ended_since: datetime) -> JobDigest:
        """The jobs on these computes not finished or ended since then, as run history answers."""
        self._call("jobs_on", tuple(computes))
        return of_computes((j for j in self.jobs if any(j.runs_on(c) for c in computes)), ended_since=ended_since)

    def get_job(self, name: str) -> Job | None:
        self._call("get_job", name)
        return next((j for j in self.jobs if same_name(j.name, name)), None)

    def active_jobs(self, compute: str, horizon: datetime | None = None, known: Sequence[Job] = (), *,
                    pipelines: bool = False) -> list[Job]:
        self._call("active_jobs", compute)
        return [j for j in self.jobs if j.active and j.runs_on(compute)]

    def location(self) -> str:
        self._call("location")
        return self.region

    def list_usages(self, location: str) -> list[Usage]:
        self._call("list_usages", location)
        return list(self.usages)

    def vm_sizes(self, location: str) -> dict[str, tuple[str, int]]:
        self._call("vm_sizes", location)
        return dict(self.sizes)

    def stop_instance(self, name: str) -> None:
        self._call("stop_instance", name)
        self._replace(name, state="Stopped")

    def set_scale(self, name: str, min_nodes: int, max_nodes: int, idle_s: int | None) -> None:
        self._call("set_scale", name, min_nodes, max_nodes, idle_s)
        self._replace(name, min_nodes=min_nodes, max_nodes=max_nodes, idle_before_scale_down_s=idle_s)

    def set_idle_shutdown(self, name: str, minutes: int) -> None:
        self._call("set_idle_shutdown", name, minutes)
        self._replace(name, idle_shutdown_minutes=minutes)

    def cancel_job(self, name: str) -> None:
        self._call("cancel_job", name)
        index = next((i for i, j in enumerate(self.jobs) if name_key(j.name) == name_key(name)), None)
        if index is None:
            raise Gone(f"job {name}: not found")
        self.jobs[index] = replace(self.jobs[index], status="CancelRequested")

    def list_endpoints(self) -> list[OnlineEndpoint]:
        self._call("list_endpoints")
        return list(self.endpoints)

    def get_endpoint(self, name: str) -> OnlineEndpoint | None:
        self._call("get_endpoint", name)
        return next((e for e in self.endpoints if name_key(e.name) == name_key(name)), None)

    def _deployment(self, endpoint: str, name: str) -> int | None:
        return next((i for i, d in enumerate(self.deployments)
                     if name_key(d.endpoint) == name_key(endpoint) and name_key(d.name) == name_key(name)), None)

    def list_deployments(self, endpoint: str) -> list[OnlineDeployment]:
        self._call("list_deployments", endpoint)
        return [d for d in self.deployments if name_key(d.endpoint) == name_key(endpoint)]

    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment | None:
        self._call("get_deployment", f"{endpoint}/{name}")
        index = self._deployment(endpoint, name)
        return None if index is None else self.deployments[index]

    def deployment_logs(self, endpoint: str, name: str, tail: int) -> str:
        self._call("deployment_logs", f"{endpoint}/{name}")
        return "\n".join(self.logs.get(f"{endpoint}/{name}", "").splitlines()[-tail:])

    def delete_deployment(self, endpoint: str, name: str) -> None:
        self._call("delete_deployment", f"{endpoint}/{name}")
        index = self._deployment(endpoint, name)
        if index is None:
            raise Gone(f"deployment {endpoint}/{name}: not found")
        del self.deployments[index]


@dataclass
class MemoryLedger(_Faults):
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    mark_rows: dict[str, Mark] = field(default_factory=dict)
    last_writes: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    previous_writes: dict[str, tuple[datetime, str] | None] = field(default_factory=dict)
    write_log: list[tuple[str, datetime]] = field(default_factory=list)
    restore_rows: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    digests: dict[str, tuple[str, str]] = field(default_factory=dict)  # workspace key → (text, etag)
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def claim(self, key: str, now: datetime, **fields: Any) -> Claim | str:
        self._call("claim", key)
        row = {"Key": key, "Status": "claimed", "ClaimedAt": now, **fields, "etag": str(next(_etags))}
        existing = self.claims.get(key)
        if existing is None:
            self.claims[key] = row
            return Claim(key, key, row["etag"])
        stale = existing["Status"] == "claimed" and now - existing["ClaimedAt"] > LEASE
        if existing["Status"] != "retry" and not stale:
            return f"already {existing['Status']} by an earlier delivery ({existing.get('Detail') or 'in progress'})"
        self.claims[key] = row
        return Claim(key, key, row["etag"], taken_over=True)

    def settle(self, claim: Claim, status: Status | str, detail: str, *, retry: bool = False) -> bool:
        self._call("settle", claim.key, status)
        row = self.claims.get(claim.key)
        if row is None or row["etag"] != claim.etag:
            return False
        row.update(Status="retry" if retry else str(status), Detail=detail, etag=str(next(_etags)))
        return True

    def orphans(self, workspace_key: str, now: datetime) -> list[Orphan]:
        self._call("orphans", workspace_key)
        return [Orphan(r["Key"], json.loads(r["Record"]), r.get("Trigger", ""), r["ClaimedAt"]) for r in self.claims.values()
                if r["Status"] == "claimed" and r.get("Mode") == "enforce" and r.get("Workspace") == workspace_key
                and now - r["ClaimedAt"] > LEASE and "Record" in r]

    def marks(self) -> dict[str, Mark]:
        self._call("marks")
        return dict(self.mark_rows)

    def put_mark(self, mark: Mark) -> None:
        self._call("put_mark", mark.compute_key)
        self.mark_rows[fold(mark.compute_key)] = Mark(fold(mark.compute_key), mark.marked_at, mark.reason, mark.mode)

    def clear_mark(self, compute_key: str) -> None:
        self._call("clear_mark", compute_key)
        self.mark_rows.pop(fold(compute_key), None)

    def last_write(self, resource_key: str) -> tuple[datetime, str] | None:
        self._call("last_write", resource_key)
        return self.last_writes.get(resource_key)

    def take_write(self, resource_key: str, now: datetime, cooldown: timedelta, trigger: str, *,
                   force: bool = False) -> datetime | None:
        self._call("take_write", resource_key)
        last = self.last_writes.get(resource_key)
        if last is not None and not force and now - last[0] < cooldown:
            return last[0]
        self.previous_writes[resource_key] = last
        self.last_writes[resource_key] = (now, trigger)
        return None

    def release_write(self, resource_key: str, now: datetime) -> None:
        self._call("release_write", resource_key)
        if (self.last_writes.get(resource_key) or (None,))[0] == now:
            previous = self.previous_writes.pop(resource_key, None)
            if previous is None:
                self.last_writes.pop(resource_key, None)
            else:
                self.last_writes[resource_key] = previous

    def count_write(self, resource_key: str, at: datetime) -> str:
        self._call("count_write", resource_key)
        self.write_log.append((resource_key, at))
        return str(len(self.write_log) - 1)

    def uncount_write(self, place: str, at: datetime) -> None:
        self._call("uncount_write", place)
        self.write_log[int(place)] = ("", datetime.min.replace(tzinfo=at.tzinfo))  # given back: outside every hour

    def writes_since(self, since: datetime) -> int:
        self._call("writes_since")
        return sum(1 for _, at in self.write_log if at >= since)

    def restores(self) -> dict[str, tuple[int, datetime]]:
        self._call("restores")
        return dict(self.restore_rows)

    def put_restore(self, cluster_key: str, max_nodes: int, at: datetime) -> None:
        self._call("put_restore", cluster_key)
        self.restore_rows[fold(cluster_key)] = (max_nodes, at)

    def clear_restore(self, cluster_key: str) -> None:
        self._call("clear_restore", cluster_key)
        self.restore_rows.pop(fold(cluster_key), None)

    def record(self, outcome: Outcome) -> None:
        self._call("record", outcome.action.target)
        self.outcomes.append(outcome)

    def job_digest(self, workspace_key: str) -> tuple[str, str | None]:
        self._call("job_digest", workspace_key)
        text, etag = self.digests.get(fold(workspace_key), ("", None))
        return text, etag

    def put_job_digest(self, workspace_key: str, text: str, etag: str | None) -> bool:
        self._call("put_job_digest", workspace_key)
        current = self.digests.get(fold(workspace_key))
        if (current[1] if current else None) != etag:
            return False
        self.digests[fold(workspace_key)] = (text, str(next(_etags)))
        return True


@dataclass
class MemoryNotifier:
    """Channels by name; `down` lists those that refuse every message."""

    channels: Sequence[str] = ("webhook",)
    down: Sequence[str] = ()
    sent: list[Outcome] = field(default_factory=list)
    owners: Sequence[str] = ()  # owners with a route of their own (UPNs, lower case)

    def reaches(self, owner: str | None) -> bool:
        return bool(owner) and str(owner).lower() in self.owners

    def send(self, outcome: Outcome) -> list[str]:
        if outcome.status is Status.SKIPPED:
            return []
        delivered = [c for c in self.channels if c not in self.down]
        if getattr(outcome.action.change, "warning", False) and self.reaches(outcome.action.owner) and "owner webhook" not in self.down:
            delivered.append("owner webhook")
        if delivered:
            self.sent.append(outcome)
        return delivered


@dataclass
class MemoryMetrics:
    """CPU activity by instance name; `error` makes every read fail (a metrics outage)."""

    activity: dict[str, CpuActivity] = field(default_factory=dict)
    error: AzureError | None = None
    regions: list[str] = field(default_factory=list)

    def cpu_activity(self, workspace: ResourceId, region: str, names: Iterable[str], now: datetime,
                     lookback: timedelta, busy_percent: float) -> dict[str, CpuActivity]:
        self.regions.append(region)
        if self.error is not None:
            raise self.error
        return {n: self.activity.get(n, CpuActivity(False, None)) for n in names}


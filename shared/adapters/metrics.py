"""CPU activity of compute instances, from Azure Monitor platform metrics (metrics:getBatch, shared by concurrent workspaces)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.azure import AzureError, client_options, credential, translate
from shared.model import CpuActivity, ResourceId
from shared.settings import Settings

NAMESPACE = "Microsoft.MachineLearningServices/workspaces"
CPU_METRIC = "CpuUtilizationPercentage"
DIMENSION = "ComputeName"


BATCH_LIMIT = 50  # resources per metrics:getBatch call, Azure Monitor's maximum
BATCH_WINDOW_S = 0.05  # how long the first caller waits for others before sending


@dataclass
class _Batch:
    """One getBatch call being gathered: the workspaces of concurrent callers in one subscription and region."""

    members: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # workspace id (lower) -> its own window
    full: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    series: dict[str, list[Any]] = field(default_factory=dict)  # workspace id (lower) -> its timeseries
    error: Exception | None = None


class Metrics:
    """Reads `CpuUtilizationPercentage` split by `ComputeName` for workspaces, batched.

    Rule: metrics:getBatch takes up to 50 resources of one subscription and region in one call.
    Workers of one process that ask at about the same time (within ``BATCH_WINDOW_S``) for
    workspaces in the same subscription and region share one call: the first waits for the others
    (or for the batch to fill), sends it for the union of their windows, and each keeps only its own
    workspace's points inside its own window. A failed call fails every caller of the batch.
    """

    def __init__(self, settings: Settings, cred: Any | None = None, window_s: float = BATCH_WINDOW_S) -> None:
        self.settings = settings
        self._cred = cred
        self._clients: dict[str, Any] = {}
        self._window_s = window_s
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Batch] = {}
        self.calls = 0  # getBatch calls sent (what the bench counts)

    def _client(self, region: str) -> Any:
        endpoint = self.settings.metrics_endpoint.format(region=region.lower().replace(" ", ""))
        with self._lock:
            if endpoint not in self._clients:
                from azure.monitor.querymetrics import MetricsClient

                self._clients[endpoint] = MetricsClient(endpoint, self._cred or credential(),
                                                        audience=self.settings.metrics_audience, **client_options(self.settings))
            return self._clients[endpoint]

    def cpu_activity(self, workspace: ResourceId, region: str, names: Iterable[str], now: datetime,
                     lookback: timedelta, busy_percent: float) -> dict[str, CpuActivity]:
        """For each instance name: whether any data exists in the look-back, and the last minute above `busy_percent`."""
        names = list(names)
        if not names:
            return {}
        start = now - lookback
        series = self._series(workspace, region, start, now)
        seen: dict[str, CpuActivity] = {name: CpuActivity(False, None) for name in names}
        wanted = {name.lower(): name for name in names}
        for one in series:
            meta = {str(k).lower(): v for k, v in (one.metadata_values or {}).items()}
            name = wanted.get(str(meta.get(DIMENSION.lower(), "")).lower())
            if name is None:
                continue
            points = [p for p in one.data if p.maximum is not None and (p.timestamp is None or start <= p.timestamp <= now)]
            busy = [p.timestamp for p in points if p.maximum > busy_percent]
            last = max(busy) if busy else None
            prev = seen[name]
            seen[name] = CpuActivity(prev.has_data or bool(points), max(filter(None, (prev.last_busy_at, last)), default=None))
        return seen

    def _series(self, workspace: ResourceId, region: str, start: datetime, end: datetime) -> list[Any]:
        """This workspace's CPU timeseries, from a batch shared with concurrent callers (see the class rule)."""
        key = (workspace.subscription.lower(), region.lower().replace(" ", ""))
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            window = batch.members.get(workspace.key)
            batch.members[workspace.key] = (min(start, window[0]), max(end, window[1])) if window else (start, end)
            if len(batch.members) >= BATCH_LIMIT:
                del self._open[key]  # full: later callers start the next batch
                batch.full.set()
        if leader:
            batch.full.wait(self._window_s)
            with self._lock:
                if self._open.get(key) is batch:
                    del self._open[key]
            self._send(batch, region, workspace)
        elif not batch.done.wait(self.settings.arm_timeout_seconds * (self.settings.arm_max_retries + 2)):
            raise AzureError(f"CPU metrics of {workspace.name}: the shared metrics call did not answer", transient=True)
        if batch.error is not None:
            raise translate(batch.error, f"CPU metrics of {workspace.name}") from batch.error
        return batch.series.get(workspace.key, [])

    def _send(self, batch: _Batch, region: str, leader: ResourceId) -> None:
        try:
            ids = list(batch.members)
            windows = list(batch.members.values())
            self.calls += 1
            results = self._client(region).query_resources(
                resource_ids=ids,
                metric_namespace=NAMESPACE,
                metric_names=[CPU_METRIC],
                timespan=(min(w[0] for w in windows), max(w[1] for w in windows)),
                granularity=timedelta(minutes=1),
                aggregations=["Maximum"],
                filter=f"{DIMENSION} eq '*'",
                max_results=1000,
            )
            for result in results:
                for metric in result.metrics:
                    # A metric's id is its resource's id + /providers/Microsoft.Insights/metrics/<name>. The
                    # answers' order is not documented: one that names no workspace asked for is an error, never
                    # guessed by its position (another workspace's quiet CPU would make a busy instance idle).
                    owner = str(metric.id or "").lower().split("/providers/microsoft.insights/metrics/")[0]
                    if owner not in batch.members:
                        raise AzureError(f"metrics:getBatch: an answer names no workspace asked for ({str(metric.id)[:200]!r})",
                                         transient=False)
                    batch.series.setdefault(owner, []).extend(metric.timeseries)
        except Exception as exc:
            batch.error = exc
        finally:
            batch.done.set()

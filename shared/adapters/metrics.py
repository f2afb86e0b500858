"""CPU activity of compute instances, from Azure Monitor platform metrics (one batch call per workspace)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.azure import client_options, credential, translate
from shared.model import CpuActivity, ResourceId
from shared.settings import Settings

NAMESPACE = "Microsoft.MachineLearningServices/workspaces"
CPU_METRIC = "CpuUtilizationPercentage"
DIMENSION = "ComputeName"


class Metrics:
    """Reads `CpuUtilizationPercentage` split by `ComputeName` for a workspace."""

    def __init__(self, settings: Settings, cred: Any | None = None) -> None:
        self.settings = settings
        self._cred = cred
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        endpoint = self.settings.metrics_endpoint.format(region=region.lower().replace(" ", ""))
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
        try:
            results = self._client(region).query_resources(
                resource_ids=[workspace.id],
                metric_namespace=NAMESPACE,
                metric_names=[CPU_METRIC],
                timespan=(now - lookback, now),
                granularity=timedelta(minutes=1),
                aggregations=["Maximum"],
                filter=f"{DIMENSION} eq '*'",
                max_results=1000,
            )
        except Exception as exc:
            raise translate(exc, f"CPU metrics of {workspace.name}") from exc
        seen: dict[str, CpuActivity] = {name: CpuActivity(False, None) for name in names}
        wanted = {name.lower(): name for name in names}
        for result in results:
            for metric in result.metrics:
                for series in metric.timeseries:
                    meta = {str(k).lower(): v for k, v in (series.metadata_values or {}).items()}
                    name = wanted.get(str(meta.get(DIMENSION.lower(), "")).lower())
                    if name is None:
                        continue
                    points = [p for p in series.data if p.maximum is not None]
                    busy = [p.timestamp for p in points if p.maximum > busy_percent]
                    last = max(busy) if busy else None
                    prev = seen[name]
                    seen[name] = CpuActivity(prev.has_data or bool(points), max(filter(None, (prev.last_busy_at, last)), default=None))
        return seen

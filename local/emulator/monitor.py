"""Azure Monitor data planes: metrics (batch API) and Log Analytics queries.

Metrics rules (REST 2024-02-01, as azure-monitor-querymetrics 1.0 ``MetricsClient`` speaks it):

- ``POST /subscriptions/{sub}/metrics:getBatch?metricnamespace=&metricnames=&starttime=&endtime=
  &interval=&aggregation=&filter=&top=&orderby=&rollupby=&api-version=2024-02-01`` with body
  ``{"resourceids": [...]}`` (1..50 ids, all in ``{sub}``); token audience
  ``https://metrics.monitor.azure.com``. The client's endpoint is the emulator's URL (in Azure, the
  regional ``https://{region}.metrics.monitor.azure.com``).
- Answer ``{"values": [one item per resource, in request order]}``; each item has starttime,
  endtime, interval, namespace (lower-cased, as Azure answers), resourceregion, resourceid and
  ``value``: one metric per requested name with id, type, name {value, localizedValue},
  displayDescription, unit, timeseries and errorCode "Success".
- Time: starttime/endtime (ISO), default the last hour. ``interval`` is one of PT1M (default),
  PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D or FULL; buckets start on interval boundaries
  (epoch-aligned) from the floor of starttime up to endtime; FULL is one bucket at starttime.
- Aggregations: average, minimum, maximum, total, count over the raw one-minute samples in each
  bucket; default is the metric's primary aggregation. A bucket without samples carries only
  ``timeStamp``.
- Filter: ``Dim eq 'v'`` clauses joined by ``and``; ``or`` only between values of the same
  dimension; ``'*'`` means every value. Every dimension named in the filter splits the result and
  appears in ``metadatavalues`` (names lower-cased, as Azure answers); names and values match
  case-insensitively. ``top`` (default 10 with a filter) and ``orderby`` ("average desc") cut the
  series; ``rollupby`` merges the named dimension back.
- No matching samples: with a filter, ``timeseries`` is ``[]``; without, one series with empty
  buckets. Unknown metric names or dimensions of a known namespace are 400 like Azure.
- Catalog: Microsoft.MachineLearningServices/workspaces metrics as documented in Azure Monitor's
  supported-metrics reference (units are "Count" there, even for percentages).

Logs rules (Log Analytics query API v1, as azure-monitor-query 2.0 ``LogsQueryClient`` speaks it):

- ``POST /v1/workspaces/{workspaceId}/query`` with ``{"query", "timespan", "workspaces"}``;
  token audience ``https://api.loganalytics.io``. The client strips any path off an endpoint that
  ends in ``/v1``, so build it with ``endpoint=<emulator url>`` and
  ``audience="https://api.loganalytics.io"`` (the audience defaults to the endpoint).
- Answer ``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [...]}]}``
  from seeded tables; ``timespan`` (ISO duration, start/end or start/duration) bounds
  ``TimeGenerated``.
- Supported KQL (an emulator limitation): ``Table`` then any of ``| where Col OP literal [and ...]``
  (OP: == != =~ !~ > >= < <=; literals: 'x', "x", numbers, true/false, ago(2h), now(),
  datetime(...)), ``| take N`` / ``| limit N``, ``| project a, b``, ``| order by C [asc|desc]``
  (``sort by``; desc by default), ``| top N by C [asc|desc]``, ``| count``. Anything else is 400
  with Log Analytics' error shape (``BadArgumentError`` with an inner ``SyntaxError``); an unknown
  table or column is 400 with an inner ``SemanticError``; an unknown workspace is 404
  ``WorkspaceNotFoundError``.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from local.emulator import wire
from local.httpwire import Request, Response

METRICS_AUDIENCE = "https://metrics.monitor.azure.com"
LOGS_AUDIENCE = "https://api.loganalytics.io"
METRICS_API_VERSIONS = frozenset({"2023-10-01", "2024-02-01"})
MAX_RESOURCES = 50
DEFAULT_TOP = 10
DEFAULT_REGION = "eastus"
AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")
INTERVALS = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D", "FULL")
ML_NAMESPACE = "Microsoft.MachineLearningServices/workspaces"

_GETBATCH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/metrics:getBatch$", re.IGNORECASE)
_LOGS = re.compile(r"^/v1/workspaces/(?P<ws>[^/]+)/query$")


# --- catalog --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDef:
    """A metric definition: canonical name, unit, primary aggregation, dimensions, description."""

    name: str
    unit: str
    primary: str
    dimensions: tuple[str, ...]
    description: str


def _ml_catalog() -> dict[str, MetricDef]:
    quota = ("Scenario", "ClusterName")
    node = ("RunId", "InstanceId", "ComputeName")
    runs = ("Scenario", "RunType", "PublishedPipelineId", "ComputeType", "PipelineStepType", "ExperimentName")
    defs = [
        MetricDef("Active Cores", "Count", "average", quota, "Number of active cores"),
        MetricDef("Active Nodes", "Count", "average", quota, "Number of Acitve nodes. These are the nodes which are actively running a job."),
        MetricDef("Idle Cores", "Count", "average", quota, "Number of idle cores"),
        MetricDef("Idle Nodes", "Count", "average", quota, "Number of idle nodes. Idle nodes are the nodes which are not running any jobs but can accept new job if available."),
        MetricDef("Leaving Cores", "Count", "average", quota, "Number of leaving cores"),
        MetricDef("Leaving Nodes", "Count", "average", quota, "Number of leaving nodes. Leaving nodes are the nodes which just finished processing a job and will go to Idle state."),
        MetricDef("Preempted Cores", "Count", "average", quota, "Number of preempted cores"),
        MetricDef("Preempted Nodes", "Count", "average", quota, "Number of preempted nodes. These nodes are the low priority nodes which are taken away from the available node pool."),
        MetricDef("Quota Utilization Percentage", "Count", "average", (*quota, "VmFamilyName", "VmPriority"), "Percent of quota utilized"),
        MetricDef("Total Cores", "Count", "average", quota, "Number of total cores"),
        MetricDef("Total Nodes", "Count", "average", quota, "Number of total nodes. This total includes some of Active Nodes, Idle Nodes, Unusable Nodes, Premepted Nodes, Leaving Nodes"),
        MetricDef("Unusable Cores", "Count", "average", quota, "Number of unusable cores"),
        MetricDef("Unusable Nodes", "Count", "average", quota, "Number of unusable nodes. Unusable nodes are not functional due to some unresolvable issue. Azure will recycle these nodes."),
        MetricDef("CpuUtilizationPercentage", "Count", "average", node, "Utilization percentage of a CPU node. Utilization is aggregated in one minute intervals."),
        MetricDef("CpuMemoryUtilizationPercentage", "Count", "average", node, "Memory utilization percentage of a CPU node. Utilization is aggregated in one minute intervals."),
        MetricDef("CpuUtilizationMillicores", "Count", "average", node, "Utilization of a CPU node in millicores. Utilization is aggregated in one minute intervals."),
        MetricDef("CpuCapacityMillicores", "Count", "average", node, "Maximum capacity of a CPU node in millicores. Capacity is aggregated in one minute intervals."),
        MetricDef("DiskUsedMegabytes", "Count", "average", node, "Used disk space in megabytes. Metrics are aggregated in one minute intervals."),
        MetricDef("GpuUtilizationPercentage", "Count", "average", (*node, "DeviceId"), "Utilization percentage of a GPU device. Utilization is aggregated in one minute intervals."),
        MetricDef("CpuUtilization", "Count", "average", ("Scenario", "runId", "NodeId", "ClusterName"), "Percentage of utilization on a CPU node. Utilization is reported at one minute intervals."),
        MetricDef("GpuUtilization", "Count", "average", ("Scenario", "runId", "NodeId", "DeviceId", "ClusterName"), "Percentage of utilization on a GPU node. Utilization is reported at one minute intervals."),
        MetricDef("Completed Runs", "Count", "total", runs, "Number of runs completed successfully for this workspace."),
        MetricDef("Failed Runs", "Count", "total", runs, "Number of runs failed for this workspace. Count is updated when a run fails."),
        MetricDef("Started Runs", "Count", "total", runs, "Number of runs running for this workspace"),
    ]
    return {d.name.lower(): d for d in defs}


CATALOG: dict[str, dict[str, MetricDef]] = {ML_NAMESPACE.lower(): _ml_catalog()}


# --- helpers --------------------------------------------------------------------------------


class QueryError(Exception):
    """A request the service refuses; carries the HTTP status and the error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _when(text: str, now: datetime) -> datetime:
    resolved = wire.resolve_time(text, now)
    if resolved is None:
        raise ValueError("a scenario time is missing")
    return resolved


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass
class Stats:
    """Running aggregate of raw samples."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float, n: int = 1) -> None:
        if n <= 0:
            return
        self.count += n
        self.total += value * n
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def merge(self, other: Stats) -> None:
        if other.count:
            self.count += other.count
            self.total += other.total
            self.minimum = min(self.minimum, other.minimum)
            self.maximum = max(self.maximum, other.maximum)

    def value(self, aggregation: str) -> float | None:
        if not self.count:
            return None
        return {
            "average": self.total / self.count,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "total": self.total,
            "count": float(self.count),
        }[aggregation]


@dataclass
class Series:
    """Raw one-minute samples of one metric, one resource, one dimension combination.

    Flat periods are kept as segments (start inclusive, end exclusive, step, value) so a week of
    a busy compute costs one tuple, not ten thousand points.
    """

    resource_id: str
    namespace: str
    name: str
    dimensions: dict[str, str]
    region: str
    segments: list[tuple[int, int, int, float]] = field(default_factory=list)
    points: list[tuple[int, float]] = field(default_factory=list)  # sorted by time

    def stats(self, start: int, end: int) -> Stats:
        """Aggregate of the samples in [start, end)."""
        acc = Stats()
        for seg_start, seg_end, step, value in self.segments:
            lo, hi = max(start, seg_start), min(end, seg_end)
            if lo >= hi:
                continue
            first = seg_start + math.ceil((lo - seg_start) / step) * step
            if first >= hi:
                continue
            acc.add(value, (hi - 1 - first) // step + 1)
        left = bisect.bisect_left(self.points, (start, -math.inf))
        right = bisect.bisect_left(self.points, (end, -math.inf))
        for _, value in self.points[left:right]:
            acc.add(value)
        return acc

    def snapshot(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "namespace": self.namespace,
            "name": self.name,
            "dimensions": dict(self.dimensions),
            "segments": [
                {"from": wire.iso(_from_epoch(a)), "to": wire.iso(_from_epoch(b)), "everySeconds": s, "value": v}
                for a, b, s, v in self.segments
            ],
            "points": [{"time": wire.iso(_from_epoch(t)), "value": v} for t, v in self.points],
        }


def _filter_clauses(text: str | None) -> list[tuple[str, list[str]]]:
    """``A eq 'a1' and B eq 'b1' or B eq 'b2' and C eq '*'`` -> [(A, [a1]), (B, [b1, b2]), (C, [*])]."""
    if not text or not text.strip():
        return []
    tokens = re.findall(r"'(?:[^']|'')*'|[^\s']+", text)
    groups: list[list[tuple[str, str]]] = [[]]
    name_words: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        lowered = token.lower()
        if lowered == "eq":
            if not name_words or index + 1 >= len(tokens) or not tokens[index + 1].startswith("'"):
                raise QueryError(400, "BadRequest", f"Invalid filter: {text}")
            value = tokens[index + 1][1:-1].replace("''", "'")
            groups[-1].append((unquote(" ".join(name_words)), value))
            name_words = []
            index += 2
            if index < len(tokens):
                joiner = tokens[index].lower()
                if joiner == "and":
                    groups.append([])
                elif joiner != "or":
                    raise QueryError(400, "BadRequest", f"Invalid filter near '{tokens[index]}': {text}")
                index += 1
            continue
        if lowered in ("ne", "sw", "lt", "gt", "le", "ge", "not", "(", ")"):
            raise QueryError(400, "BadRequest", f"Operator '{token}' is not supported by this emulator's filter: {text}")
        name_words.append(token)
        index += 1
    if name_words or not groups[-1]:
        raise QueryError(400, "BadRequest", f"Invalid filter: {text}")
    clauses: list[tuple[str, list[str]]] = []
    for group in groups:
        names = {name.lower() for name, _ in group}
        if len(names) != 1:
            raise QueryError(400, "BadRequest", "The logical 'or' operator cannot separate two different metadata names.")
        name = group[0][0]
        if any(existing.lower() == name.lower() for existing, _ in clauses):
            raise QueryError(400, "BadRequest", f"Dimension '{name}' appears twice in the filter.")
        clauses.append((name, [value for _, value in group]))
    return clauses


# --- metrics --------------------------------------------------------------------------------


class MonitorService:
    """Metrics and Log Analytics for the scenario's resources and workspaces."""

    name = "monitor"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: list[Series] = []
        self._workspaces: dict[str, dict[str, Table]] = {}

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        """Load ``scenario["metrics"]`` and ``scenario["logs"]``.

        A metric entry is ``{"resourceId", "namespace", "name", "dimensions"?, "region"? (default:
        the location of the workspace of that id in ``scenario["workspaces"]``),
        "points"?: [{"time", "value"}], "series"?: {"from", "to"?, "every"?, "value"} or a list of
        them}``; ``to`` defaults to now (exclusive), ``every`` to PT1M. Entries with the same
        resource, metric and dimensions add up to one series.

        Logs are ``{"workspaceId", "tables": {name: [row objects] or {"columns": [{"name",
        "type"}], "rows": [...]}}}`` or a list of those; string values of datetime columns may
        be relative ("now-2h").
        """
        regions = _workspace_regions(scenario)
        merged: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], Series] = {}
        for spec in scenario.get("metrics") or []:
            dims = {str(k): str(v) for k, v in (spec.get("dimensions") or {}).items()}
            key = (
                spec["resourceId"].lower(),
                spec.get("namespace", ML_NAMESPACE).lower(),
                spec["name"].lower(),
                tuple(sorted((k.lower(), v.lower()) for k, v in dims.items())),
            )
            series = merged.get(key)
            if series is None:
                series = Series(
                    resource_id=spec["resourceId"],
                    namespace=spec.get("namespace", ML_NAMESPACE),
                    name=spec["name"],
                    dimensions=dims,
                    region=str(spec.get("region") or regions.get(spec["resourceId"].lower()) or DEFAULT_REGION),
                )
                merged[key] = series
            for point in spec.get("points") or []:
                series.points.append((_epoch(_when(point["time"], now)), float(point["value"])))
            flat = spec.get("series") or []
            for segment in [flat] if isinstance(flat, dict) else flat:
                start = _when(segment["from"], now)
                end = _when(segment.get("to", "now"), now)
                step = int(wire.parse_duration(segment.get("every", "PT1M")).total_seconds())
                if step <= 0:
                    raise ValueError(f"series step must be positive: {segment}")
                # Samples land on step boundaries, as Azure's one-minute pre-aggregates do.
                first = -(-_epoch(start) // step) * step
                series.segments.append((first, _epoch(end), step, float(segment["value"])))
            series.points.sort()
        workspaces: dict[str, dict[str, Table]] = {}
        logs = scenario.get("logs") or []
        for ws in [logs] if isinstance(logs, dict) else logs:
            tables = workspaces.setdefault(str(ws["workspaceId"]).lower(), {})
            for table_name, spec in (ws.get("tables") or {}).items():
                tables[table_name] = Table.seed(table_name, spec, now)
        with self._lock:
            self._series = list(merged.values())
            self._workspaces = workspaces

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "metrics": [s.snapshot() for s in self._series],
                "logs": {
                    ws: {name: table.snapshot() for name, table in tables.items()}
                    for ws, tables in self._workspaces.items()
                },
            }

    def handle(self, req: Request) -> Response | None:
        """Serve metrics:getBatch and Log Analytics queries; None for any other path."""
        match = _GETBATCH.match(req.path)
        if match:
            refused = wire.require_bearer(req, METRICS_AUDIENCE)
            if refused is not None:
                return Response(refused.status, {"error": {**refused.body["error"], "code": "InvalidAuthenticationToken"}})
            if req.method != "POST":
                return wire.arm_error(405, "MethodNotAllowed", "metrics:getBatch accepts POST only.")
            try:
                return Response(200, self._get_batch(req, match.group("sub")))
            except QueryError as exc:
                return wire.arm_error(exc.status, exc.code, str(exc))
        match = _LOGS.match(req.path)
        if match:
            return self._logs(req, unquote(match.group("ws")))
        return None

    def _get_batch(self, req: Request, subscription: str) -> dict[str, Any]:
        query = {k.lower(): v for k, v in req.query.items()}
        if query.get("api-version") not in METRICS_API_VERSIONS:
            raise QueryError(400, "BadRequest", f"The api-version '{query.get('api-version')}' is not supported; use 2024-02-01.")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise QueryError(400, "BadRequest", "The request body is not valid JSON.") from None
        resource_ids = body.get("resourceids") if isinstance(body, dict) else None
        if not isinstance(resource_ids, list) or not resource_ids or not all(isinstance(r, str) for r in resource_ids):
            raise QueryError(400, "BadRequest", "The body must be {\"resourceids\": [...]} with at least one resource id.")
        if len(resource_ids) > MAX_RESOURCES:
            raise QueryError(400, "BadRequest", f"At most {MAX_RESOURCES} resource ids can be queried in one batch.")
        for rid in resource_ids:
            if f"/subscriptions/{subscription.lower()}/" not in rid.lower() + "/":
                raise QueryError(400, "BadRequest", f"Resource '{rid}' is not in subscription '{subscription}'.")
        namespace = query.get("metricnamespace") or ""
        names = [n.replace("%2", ",") for n in (query.get("metricnames") or "").split(",") if n]
        if not namespace or not names:
            raise QueryError(400, "BadRequest", "metricnamespace and metricnames are required.")
        now = datetime.now(UTC)
        try:
            end = wire.instant(query["endtime"]) if query.get("endtime") else now
            start = wire.instant(query["starttime"]) if query.get("starttime") else end - timedelta(hours=1)
        except ValueError:
            raise QueryError(400, "BadRequest", "starttime and endtime must be ISO 8601 instants.") from None
        if start >= end:
            raise QueryError(400, "BadRequest", "starttime must be before endtime.")
        interval_text = (query.get("interval") or "PT1M").upper()
        if interval_text == "FULL":
            interval_label, buckets = "FULL", [(_epoch(start), _epoch(end) + 1)]
        else:
            try:
                step = int(wire.parse_duration(interval_text).total_seconds())
            except ValueError:
                step = 0
            label = _canonical_interval(step)
            if label is None:
                raise QueryError(400, "BadRequest", f"Invalid time grain '{interval_text}'. Supported: {', '.join(INTERVALS)}.")
            interval_label = label
            first = _epoch(start) // step * step
            buckets = [(t, t + step) for t in range(first, _epoch(end), step)]
        aggregations = [a.strip().lower() for a in (query.get("aggregation") or "").split(",") if a.strip()]
        for aggregation in aggregations:
            if aggregation not in AGGREGATIONS:
                raise QueryError(400, "BadRequest", f"Invalid aggregation '{aggregation}'. Supported: {', '.join(AGGREGATIONS)}.")
        clauses = _filter_clauses(query.get("filter") or query.get("$filter"))
        rollup = {d.strip().lower() for d in (query.get("rollupby") or "").split(",") if d.strip()}
        split = [(name, values) for name, values in clauses if name.lower() not in rollup]
        try:
            top = int(query["top"]) if query.get("top") else DEFAULT_TOP
        except ValueError:
            raise QueryError(400, "BadRequest", "top must be an integer.") from None
        order = _order_by(query.get("orderby"))
        catalog = CATALOG.get(namespace.lower())
        with self._lock:
            series = [s for s in self._series if s.namespace.lower() == namespace.lower()]
        values = []
        for rid in resource_ids:
            mine = [s for s in series if s.resource_id.lower() == rid.lower()]
            metrics = []
            for name in names:
                definition = self._definition(catalog, namespace, name, series)
                for dim, _ in clauses:
                    if catalog is not None and dim.lower() not in {d.lower() for d in definition.dimensions}:
                        raise QueryError(
                            400,
                            "BadRequest",
                            f"Metric: {definition.name} does not support requested dimension combination: {dim}, "
                            f"supported ones are: {','.join(definition.dimensions)}",
                        )
                chosen = aggregations or [definition.primary]
                matching = [s for s in mine if s.name.lower() == definition.name.lower() and _matches(s, clauses)]
                timeseries = _timeseries(matching, split, bool(clauses), buckets, chosen, top, order)
                metrics.append({
                    "id": f"{rid}/providers/Microsoft.Insights/metrics/{definition.name}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": definition.name, "localizedValue": definition.name},
                    "displayDescription": definition.description,
                    "unit": definition.unit,
                    "timeseries": timeseries,
                    "errorCode": "Success",
                })
            values.append({
                "starttime": wire.iso(start),
                "endtime": wire.iso(end),
                "interval": interval_label,
                "value": metrics,
                "namespace": namespace.lower(),
                "resourceregion": mine[0].region if mine else DEFAULT_REGION,
                "resourceid": rid,
            })
        return {"values": values}

    @staticmethod
    def _definition(catalog: dict[str, MetricDef] | None, namespace: str, name: str, series: list[Series]) -> MetricDef:
        if catalog is not None:
            found = catalog.get(name.lower())
            if found is None:
                provider, _, rtype = namespace.partition("/")
                raise QueryError(
                    400,
                    "BadRequest",
                    f"Failed to find metric configuration for provider: {provider}, resource Type: {rtype}, metric: {name}, "
                    f"Valid metrics: {','.join(d.name for d in catalog.values())}",
                )
            return found
        seeded = next((s for s in series if s.name.lower() == name.lower()), None)
        if seeded is None:
            raise QueryError(400, "BadRequest", f"Failed to find metric configuration for namespace: {namespace}, metric: {name}")
        return MetricDef(seeded.name, "Count", "average", tuple(seeded.dimensions), seeded.name)

    # --- logs -------------------------------------------------------------------------------

    def _logs(self, req: Request, workspace_id: str) -> Response:
        refused = wire.require_bearer(req, LOGS_AUDIENCE)
        if refused is not None:
            return _la_error(401, "InvalidTokenError", "The provided authentication is not valid for this resource.")
        if req.method != "POST":
            return _la_error(405, "MethodNotAllowed", "This emulator serves POST queries only.")
        with self._lock:
            tables = self._workspaces.get(workspace_id.lower())
        if tables is None:
            return _la_error(404, "WorkspaceNotFoundError", "The workspace could not be found")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _la_error(400, "BadArgumentError", "The request had some invalid properties", "Body must be {\"query\": ...}.")
        now = datetime.now(UTC)
        try:
            window = _timespan(body.get("timespan"), now)
        except ValueError:
            return _la_error(400, "BadArgumentError", "The request had some invalid properties", "timespan is not an ISO 8601 interval.")
        try:
            columns, rows = run_query(body["query"], tables, window, now)
        except KqlError as exc:
            return _la_error(400, "BadArgumentError", "The request had some invalid properties", exc.detail, exc.kind, exc.inner_code)
        result: dict[str, Any] = {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [{"name": c.name, "type": c.type} for c in columns],
                    "rows": [[_render(c, row[i]) for i, c in enumerate(columns)] for row in rows],
                }
            ]
        }
        prefer = req.header("prefer") or ""
        if "include-statistics=true" in prefer:
            result["statistics"] = {"query": {"executionTime": 0.001, "resourceUsage": {}}}
        if "include-render=true" in prefer:
            result["render"] = {}
        return Response(200, result)


def _workspace_regions(scenario: dict[str, Any]) -> dict[str, str]:
    """Lower-cased workspace id -> location, from the ARM section: ``resourceregion`` follows it."""
    sub = str(scenario.get("subscriptionId") or "")
    regions = {}
    for ws in scenario.get("workspaces") or []:
        if isinstance(ws, dict) and ws.get("location") and ws.get("name"):
            rid = f"/subscriptions/{sub}/resourceGroups/{ws.get('resourceGroup', '')}/providers/{ML_NAMESPACE}/{ws['name']}"
            regions[rid.lower()] = str(ws["location"])
    return regions


def _canonical_interval(step: int) -> str | None:
    labels = {60: "PT1M", 300: "PT5M", 900: "PT15M", 1800: "PT30M", 3600: "PT1H", 21600: "PT6H", 43200: "PT12H", 86400: "P1D"}
    return labels.get(step)


def _order_by(text: str | None) -> tuple[str, bool] | None:
    if not text:
        return None
    parts = text.strip().lower().split()
    aggregation = {"sum": "total", "avg": "average", "min": "minimum", "max": "maximum"}.get(parts[0], parts[0])
    if aggregation not in AGGREGATIONS or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
        raise QueryError(400, "BadRequest", f"Invalid orderby '{text}'. Example: 'sum asc'.")
    return aggregation, len(parts) == 2 and parts[1] == "desc"


def _dim(series: Series, name: str) -> str | None:
    return next((v for k, v in series.dimensions.items() if k.lower() == name.lower()), None)


def _matches(series: Series, clauses: list[tuple[str, list[str]]]) -> bool:
    for name, values in clauses:
        actual = _dim(series, name)
        if "*" in values:
            continue
        if actual is None or actual.lower() not in {v.lower() for v in values}:
            return False
    return True


def _timeseries(
    matching: list[Series],
    split: list[tuple[str, list[str]]],
    filtered: bool,
    buckets: list[tuple[int, int]],
    aggregations: list[str],
    top: int,
    order: tuple[str, bool] | None,
) -> list[dict[str, Any]]:
    groups: dict[tuple[str, ...], list[Series]] = {}
    for series in matching:
        key = tuple(_dim(series, name) or "" for name, _ in split)
        lowered = tuple(v.lower() for v in key)
        existing = next((k for k in groups if tuple(v.lower() for v in k) == lowered), key)
        groups.setdefault(existing, []).append(series)
    if not groups:
        if filtered:
            return []
        groups[()] = []
    built = []
    for key, members in groups.items():
        whole = Stats()
        data = []
        for start, end in buckets:
            acc = Stats()
            for series in members:
                acc.merge(series.stats(start, end))
            whole.merge(acc)
            point: dict[str, Any] = {"timeStamp": wire.iso(_from_epoch(start))}
            if acc.count:
                for aggregation in aggregations:
                    point[aggregation] = acc.value(aggregation)
            data.append(point)
        metadata = [
            {"name": {"value": name.lower(), "localizedValue": name.lower()}, "value": value}
            for (name, _), value in zip(split, key, strict=True)
        ]
        built.append((whole, {"metadatavalues": metadata, "data": data}))
    if order is not None:
        aggregation, descending = order
        present = [b for b in built if b[0].value(aggregation) is not None]
        absent = [b for b in built if b[0].value(aggregation) is None]
        present.sort(key=lambda b: b[0].value(aggregation) or 0.0, reverse=descending)
        built = present + absent
    if filtered:
        built = built[: max(top, 0)]
    return [series for _, series in built]


# --- logs -----------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    type: str  # Log Analytics type: string, datetime, long, real, bool, dynamic, guid, timespan


@dataclass
class Table:
    """A seeded Log Analytics table: typed columns and rows (datetimes as aware datetimes)."""

    name: str
    columns: list[Column]
    rows: list[list[Any]]

    @classmethod
    def seed(cls, name: str, spec: Any, now: datetime) -> Table:
        if isinstance(spec, dict):
            columns = [Column(c["name"], c["type"]) for c in spec.get("columns") or []]
            raw_rows = list(spec.get("rows") or [])
        else:
            columns, raw_rows = [], list(spec or [])
        known = {c.name for c in columns}
        for row in raw_rows:
            if isinstance(row, dict):
                for col, value in row.items():
                    if col not in known:
                        columns.append(Column(col, _infer_type(col, value)))
                        known.add(col)
        rows = []
        for row in raw_rows:
            values = [row.get(c.name) for c in columns] if isinstance(row, dict) else list(row)
            rows.append([_coerce(c, v, now) for c, v in zip(columns, values, strict=False)])
        return cls(name, columns, rows)

    def snapshot(self) -> dict[str, Any]:
        return {
            "columns": [{"name": c.name, "type": c.type} for c in self.columns],
            "rows": [[_render(c, v) for c, v in zip(self.columns, row, strict=False)] for row in self.rows],
        }


def _infer_type(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, dict | list):
        return "dynamic"
    if isinstance(value, str) and (name == "TimeGenerated" or value.startswith("now") or re.match(r"^\d{4}-\d\d-\d\dT", value)):
        return "datetime"
    return "string"


def _coerce(column: Column, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if column.type == "datetime":
        return value if isinstance(value, datetime) else wire.resolve_time(str(value), now)
    if column.type in ("long", "int"):
        return int(value)
    if column.type in ("real", "decimal"):
        return float(value)
    return value


def _render(column: Column, value: Any) -> Any:
    if isinstance(value, datetime):
        return wire.iso(value)
    return value


def _timespan(text: Any, now: datetime) -> tuple[datetime, datetime] | None:
    """Log Analytics' timespan: a duration ending now, start/end, or start/duration."""
    if not text:
        return None
    text = str(text)
    if "/" in text:
        first, second = text.split("/", 1)
        start = wire.instant(first)
        end = start + wire.parse_duration(second) if second.upper().startswith("P") else wire.instant(second)
        return start, end
    return now - wire.parse_duration(text), now


def _la_error(
    status: int,
    code: str,
    message: str,
    detail: str | None = None,
    inner_kind: str = "SyntaxError",
    inner_code: str = "SYN0002",
) -> Response:
    """Log Analytics' error body; the innermost message is what LogsQueryError shows."""
    error: dict[str, Any] = {"message": message, "code": code, "correlationId": str(uuid.uuid4())}
    if detail:
        summary = "A semantic error occurred." if inner_kind == "SemanticError" else "A recognition error occurred in the query."
        error["innererror"] = {
            "code": inner_kind,
            "message": summary,
            "innererror": {"code": inner_code, "message": detail},
        }
    return Response(status, {"error": error})


class KqlError(Exception):
    """A query the emulator refuses: syntax it does not support, or a name it cannot resolve."""

    def __init__(self, detail: str, kind: str = "SyntaxError", inner_code: str = "SYN0002") -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.inner_code = inner_code


SUPPORTED_KQL = (
    "Table | where Col OP literal [and ...] | take N | limit N | project a, b | order by C [asc|desc] "
    "| sort by C | top N by C | count"
)
_KQL_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<func>ago|datetime|now)\s*\((?P<arg>[^)]*)\)"
    r"|(?P<op>==|!=|=~|!~|>=|<=|>|<)"
    r"|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*))"
)
_KQL_SPAN = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<u>ms|d|h|m|s)\s*$")
_SPAN_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _split_pipes(query: str) -> list[str]:
    """Split on | outside string literals, dropping // comments."""
    parts: list[str] = []
    current: list[str] = []
    quote_char = ""
    index = 0
    while index < len(query):
        char = query[index]
        if quote_char:
            current.append(char)
            if char == "\\" and index + 1 < len(query):
                current.append(query[index + 1])
                index += 1
            elif char == quote_char:
                quote_char = ""
        elif query.startswith("//", index):
            newline = query.find("\n", index)
            index = len(query) if newline < 0 else newline
            continue
        elif char in "'\"":
            quote_char = char
            current.append(char)
        elif char == "|":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return parts


def _literal(match: re.Match[str], now: datetime) -> Any:
    if match.group("str"):
        raw = match.group("str")[1:-1]
        return re.sub(r"\\(.)", r"\1", raw)
    if match.group("func"):
        func, arg = match.group("func").lower(), match.group("arg").strip()
        if func == "now" and not arg:
            return now
        if func == "ago":
            span = _KQL_SPAN.match(arg)
            if not span:
                raise KqlError(f"ago() needs a timespan literal such as 2h, got '{arg}'")
            return now - timedelta(seconds=float(span.group("n")) * _SPAN_UNITS[span.group("u")])
        if func == "datetime":
            try:
                return wire.instant(arg.strip("'\""))
            except ValueError:
                raise KqlError(f"datetime() could not parse '{arg}'") from None
        raise KqlError(f"{func}() is not supported by this emulator")
    if match.group("num"):
        number = match.group("num")
        return float(number) if "." in number else int(number)
    ident = match.group("ident")
    if ident in ("true", "false"):
        return ident == "true"
    raise KqlError(f"Query could not be parsed at '{ident}'")


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None:
        return False
    if op == "=~":
        return str(left).lower() == str(right).lower()
    if op == "!~":
        return str(left).lower() != str(right).lower()
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
        if op == "<":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _where(text: str, columns: list[Column], now: datetime) -> list[tuple[int, str, Any]]:
    """``Col OP literal [and Col OP literal ...]`` -> [(column index, op, value)]."""
    tokens = []
    position = 0
    while position < len(text):
        match = _KQL_TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise KqlError(f"Query could not be parsed at '{text[position:].strip()[:20]}' (the emulator supports: {SUPPORTED_KQL})")
        tokens.append(match)
        position = match.end()
    conditions = []
    index = 0
    names = [c.name for c in columns]
    while index < len(tokens):
        if index + 2 >= len(tokens) or not tokens[index].group("ident") or not tokens[index + 1].group("op"):
            raise KqlError(f"'where {text}' is beyond this emulator (supported: {SUPPORTED_KQL})")
        column = tokens[index].group("ident")
        if column not in names:
            raise KqlError(f"'where' operator: Failed to resolve column or scalar expression named '{column}'", "SemanticError", "SEM0100")
        conditions.append((names.index(column), tokens[index + 1].group("op"), _literal(tokens[index + 2], now)))
        index += 3
        if index < len(tokens):
            if (tokens[index].group("ident") or "").lower() != "and":
                raise KqlError(f"'where {text}' is beyond this emulator: only 'and' joins conditions (supported: {SUPPORTED_KQL})")
            index += 1
            if index >= len(tokens):
                raise KqlError(f"Query could not be parsed at end of 'where {text}'")
    return conditions


def run_query(
    query: str, tables: dict[str, Table], window: tuple[datetime, datetime] | None, now: datetime
) -> tuple[list[Column], list[list[Any]]]:
    """Run the supported KQL subset over seeded tables."""
    stages = _split_pipes(query)
    source = stages[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", source):
        raise KqlError(f"Query could not be parsed at '{source[:30]}' (the emulator supports: {SUPPORTED_KQL})")
    table = tables.get(source)
    if table is None:
        raise KqlError(f"Failed to resolve table expression named '{source}'", "SemanticError", "SEM0100")
    columns = list(table.columns)
    rows = [list(r) for r in table.rows]
    names = [c.name for c in columns]
    if window is not None and "TimeGenerated" in names:
        at = names.index("TimeGenerated")
        rows = [r for r in rows if r[at] is not None and window[0] <= r[at] <= window[1]]
    for stage in stages[1:]:
        verb, _, rest = stage.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        names = [c.name for c in columns]
        if verb == "where":
            for at, op, value in _where(rest, columns, now):
                rows = [r for r in rows if _compare(r[at], op, value)]
        elif verb in ("take", "limit"):
            if not rest.isdigit():
                raise KqlError(f"'{verb}' needs a row count, got '{rest}'")
            rows = rows[: int(rest)]
        elif verb == "project":
            wanted = [w.strip() for w in rest.split(",") if w.strip()]
            for name in wanted:
                if name not in names:
                    raise KqlError(f"'project' operator: Failed to resolve scalar expression named '{name}'", "SemanticError", "SEM0100")
            picks = [names.index(w) for w in wanted]
            columns = [columns[i] for i in picks]
            rows = [[r[i] for i in picks] for r in rows]
        elif verb in ("order", "sort", "top"):
            match = re.fullmatch(
                r"(?:(?P<n>\d+)\s+)?by\s+(?P<col>[A-Za-z_][A-Za-z0-9_]*)(?:\s+(?P<dir>asc|desc))?", rest, re.IGNORECASE
            )
            if not match or (verb == "top") != bool(match.group("n")):
                raise KqlError(f"'{stage}' is beyond this emulator (supported: {SUPPORTED_KQL})")
            if match.group("col") not in names:
                raise KqlError(f"'{verb}' operator: Failed to resolve column named '{match.group('col')}'", "SemanticError", "SEM0100")
            at = names.index(match.group("col"))
            descending = (match.group("dir") or "desc").lower() == "desc"
            present = [r for r in rows if r[at] is not None]
            present.sort(key=lambda r: r[at], reverse=descending)
            rows = present + [r for r in rows if r[at] is None]
            if match.group("n"):
                rows = rows[: int(match.group("n"))]
        elif verb == "count" and not rest:
            columns, rows = [Column("Count", "long")], [[len(rows)]]
        else:
            raise KqlError(f"'{stage}' is beyond this emulator (supported: {SUPPORTED_KQL})")
    return columns, rows


SERVICE = MonitorService()

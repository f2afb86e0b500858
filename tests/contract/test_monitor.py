"""Contract: azure-monitor-querymetrics' MetricsClient and azure-monitor-query's LogsQueryClient
against the emulator's Azure Monitor data planes.

Clients are built as the app builds them locally:
``MetricsClient(emulator.url, credential)`` and
``LogsQueryClient(credential, endpoint=emulator.url, audience="https://api.loganalytics.io")``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryClient, LogsQueryStatus
from azure.monitor.querymetrics import MetricsClient

SUB = "00000000-0000-0000-0000-000000000001"
NS = "Microsoft.MachineLearningServices/workspaces"
WS = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/{NS}/mlw-demo"
QUIET_WS = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/{NS}/mlw-quiet"
LA_WORKSPACE = "8c1a7f0e-1d2b-4c3d-9e8f-0a1b2c3d4e5f"
LOGS_AUDIENCE = "https://api.loganalytics.io"
CPU = "CpuUtilizationPercentage"

SCENARIO: dict[str, Any] = {
    "subscriptionId": SUB,
    "metrics": [
        {
            "resourceId": WS,
            "namespace": NS,
            "name": CPU,
            "dimensions": {"ComputeName": "ci-alice"},
            "series": [{"from": "now-8h", "to": "now-4h", "value": 60}, {"from": "now-4h", "value": 1}],
        },
        {"resourceId": WS, "namespace": NS, "name": CPU, "dimensions": {"ComputeName": "ci-bob"}, "series": {"from": "now-8h", "value": 70}},
        {
            "resourceId": WS,
            "namespace": NS,
            "name": "Unusable Nodes",
            "dimensions": {"ClusterName": "gpu-cluster"},
            "points": [{"time": "now-12m", "value": 2}, {"time": "now-11m", "value": 3}],
        },
        {
            "resourceId": WS,
            "namespace": NS,
            "name": "Unusable Nodes",
            "dimensions": {"ClusterName": "cpu-cluster"},
            "series": {"from": "now-1h", "value": 0},
        },
    ],
    "logs": {
        "workspaceId": LA_WORKSPACE,
        "tables": {
            "AmlComputeJobEvent": [
                {"TimeGenerated": "now-30m", "ClusterName": "cpu-cluster", "JobName": "job-a", "EventType": "JobRunning", "NodeCount": 2},
                {"TimeGenerated": "now-3h", "ClusterName": "gpu-cluster", "JobName": "job-b", "EventType": "JobFailed", "NodeCount": 4},
                {"TimeGenerated": "now-5h", "ClusterName": "cpu-cluster", "JobName": "job-c", "EventType": "JobSucceeded", "NodeCount": 1},
            ]
        },
    },
}


@pytest.fixture(autouse=True)
def _seeded(emulator: Any) -> None:
    emulator.reset(SCENARIO)


@pytest.fixture
def metrics(emulator: Any, credential: Any) -> MetricsClient:
    return MetricsClient(emulator.url, credential, connection_verify=emulator.ca)


@pytest.fixture
def logs(emulator: Any, credential: Any) -> LogsQueryClient:
    return LogsQueryClient(credential, endpoint=emulator.url, audience=LOGS_AUDIENCE, connection_verify=emulator.ca)


def _last_hours(hours: int) -> tuple[datetime, datetime]:
    """A window of whole past hours, so every bucket is complete and deterministic."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours), end


def _calls(emulator: Any, service: str) -> list[dict[str, Any]]:
    return [e for e in emulator.journal() if e["service"] == service]


# --- metrics --------------------------------------------------------------------------------


def test_split_by_compute_buckets_hourly_with_the_requested_aggregations(metrics: MetricsClient, emulator: Any) -> None:
    start, end = _last_hours(3)

    [result] = metrics.query_resources(
        resource_ids=[WS],
        metric_namespace=NS,
        metric_names=[CPU],
        timespan=(start, end),
        granularity=timedelta(hours=1),
        aggregations=["Average", "Maximum", "Count"],
        filter="ComputeName eq '*'",
    )

    assert result.granularity == timedelta(hours=1)
    assert result.namespace == NS.lower()
    metric = result.metrics[CPU]
    assert (metric.unit, metric.type) == ("Count", "Microsoft.Insights/metrics")
    series = {ts.metadata_values["computename"]: ts.data for ts in metric.timeseries}
    assert set(series) == {"ci-alice", "ci-bob"}
    assert [p.timestamp for p in series["ci-bob"]] == [start + timedelta(hours=h) for h in range(3)]
    assert all((p.average, p.maximum, p.count, p.total) == (70.0, 70.0, 60.0, None) for p in series["ci-bob"])
    assert (series["ci-alice"][-1].average, series["ci-alice"][-1].count) == (1.0, 60.0)
    [call] = _calls(emulator, "monitor")
    assert (call["method"], call["path"], call["status"]) == ("POST", f"/subscriptions/{SUB}/metrics:getBatch", 200)
    assert call["query"]["metricnames"] == CPU and call["query"]["interval"] == "PT1H"
    assert call["query"]["aggregation"] == "Average,Maximum,Count"
    assert call["query"]["filter"] == "ComputeName eq '*'"
    assert call["body"] == {"resourceids": [WS]}


def test_busy_then_idle_instance_shows_the_drop_at_five_minute_grain(metrics: MetricsClient) -> None:
    start, end = _last_hours(6)

    [result] = metrics.query_resources(
        resource_ids=[WS],
        metric_namespace=NS,
        metric_names=[CPU],
        timespan=(start, end),
        granularity=timedelta(minutes=5),
        aggregations=["Maximum"],
        filter="ComputeName eq 'ci-alice'",
    )

    [series] = result.metrics[CPU].timeseries
    assert series.metadata_values == {"computename": "ci-alice"}
    assert len(series.data) == 72
    values = [p.maximum for p in series.data]
    assert values[0] == 60.0 and values[-1] == 1.0
    assert sorted(set(values)) == [1.0, 60.0]


def test_or_between_values_of_one_dimension_selects_both(metrics: MetricsClient) -> None:
    [result] = metrics.query_resources(
        resource_ids=[WS],
        metric_namespace=NS,
        metric_names=[CPU],
        timespan=_last_hours(1),
        granularity=timedelta(hours=1),
        filter="ComputeName eq 'ci-alice' or ComputeName eq 'CI-BOB'",
    )

    assert sorted(ts.metadata_values["computename"] for ts in result.metrics[CPU].timeseries) == ["ci-alice", "ci-bob"]


def test_without_a_filter_all_computes_are_aggregated_together(metrics: MetricsClient) -> None:
    start, end = _last_hours(6)

    [result] = metrics.query_resources(
        resource_ids=[WS], metric_namespace=NS, metric_names=[CPU], timespan=(start, end), granularity=timedelta(hours=1)
    )

    [series] = result.metrics[CPU].timeseries
    assert series.metadata_values == {}
    assert series.data[-1].average == pytest.approx((1.0 + 70.0) / 2)
    assert series.data[-1].maximum is None, "only the primary aggregation (average) is returned by default"


def test_a_resource_without_data_has_empty_timeseries(metrics: MetricsClient) -> None:
    window = _last_hours(2)

    split, unsplit = (
        metrics.query_resources(
            resource_ids=[WS, QUIET_WS],
            metric_namespace=NS,
            metric_names=[CPU],
            timespan=window,
            granularity=timedelta(hours=1),
            **extra,
        )
        for extra in ({"filter": "ComputeName eq '*'"}, {})
    )

    assert [r.metrics[CPU].timeseries != [] for r in split] == [True, False]
    [quiet] = unsplit[1].metrics[CPU].timeseries
    assert quiet.metadata_values == {} and len(quiet.data) == 2
    assert all(p.average is None for p in quiet.data)


def test_unusable_nodes_split_by_cluster_with_totals(metrics: MetricsClient) -> None:
    [result] = metrics.query_resources(
        resource_ids=[WS],
        metric_namespace=NS,
        metric_names=["Unusable Nodes"],
        timespan=timedelta(minutes=30),
        granularity=timedelta(minutes=30),
        aggregations=["Total", "Maximum"],
        filter="ClusterName eq '*'",
        order_by="maximum desc",
        max_results=1,
    )

    [series] = result.metrics["Unusable Nodes"].timeseries
    assert series.metadata_values == {"clustername": "gpu-cluster"}
    assert sum(p.total or 0 for p in series.data) == 5.0
    assert max(p.maximum or 0 for p in series.data) == 3.0


def test_unknown_metric_and_unsupported_dimension_are_refused(metrics: MetricsClient, emulator: Any) -> None:
    with pytest.raises(HttpResponseError) as unknown:
        metrics.query_resources(resource_ids=[WS], metric_namespace=NS, metric_names=["CpuUtilisation"])
    with pytest.raises(HttpResponseError) as bad_dim:
        metrics.query_resources(resource_ids=[WS], metric_namespace=NS, metric_names=[CPU], filter="ClusterName eq '*'")

    assert unknown.value.status_code == bad_dim.value.status_code == 400
    assert "Failed to find metric configuration" in str(unknown.value)
    assert "does not support requested dimension combination" in str(bad_dim.value)
    assert [c["status"] for c in _calls(emulator, "monitor")] == [400, 400]


# --- logs -----------------------------------------------------------------------------------


def test_where_and_take_return_typed_rows(logs: LogsQueryClient, emulator: Any) -> None:
    result = logs.query_workspace(
        LA_WORKSPACE, "AmlComputeJobEvent | where ClusterName == 'cpu-cluster' | take 1", timespan=timedelta(days=1)
    )

    assert result.status == LogsQueryStatus.SUCCESS
    [table] = result.tables
    assert table.name == "PrimaryResult"
    assert dict(zip(table.columns, table.columns_types, strict=True)) == {
        "TimeGenerated": "datetime",
        "ClusterName": "string",
        "JobName": "string",
        "EventType": "string",
        "NodeCount": "long",
    }
    [row] = table.rows
    assert (row["JobName"], row["NodeCount"]) == ("job-a", 2)
    assert isinstance(row["TimeGenerated"], datetime)
    [call] = _calls(emulator, "monitor")
    assert (call["method"], call["path"], call["status"]) == ("POST", f"/v1/workspaces/{LA_WORKSPACE}/query", 200)
    assert call["body"]["query"].endswith("| take 1") and call["body"]["timespan"] == "PT86400.0S"


def test_ago_and_the_timespan_bound_time_generated(logs: LogsQueryClient) -> None:
    recent = logs.query_workspace(LA_WORKSPACE, "AmlComputeJobEvent | where TimeGenerated > ago(2h)", timespan=timedelta(days=1))
    windowed = logs.query_workspace(LA_WORKSPACE, "AmlComputeJobEvent | project JobName", timespan=timedelta(hours=4))

    assert [r["JobName"] for r in recent.tables[0].rows] == ["job-a"]
    assert windowed.tables[0].columns == ["JobName"]
    assert sorted(r["JobName"] for r in windowed.tables[0].rows) == ["job-a", "job-b"]


def test_unsupported_kql_is_a_bad_argument_error(logs: LogsQueryClient, emulator: Any) -> None:
    with pytest.raises(HttpResponseError) as caught:
        logs.query_workspace(LA_WORKSPACE, "AmlComputeJobEvent | summarize count() by ClusterName", timespan=None)

    assert caught.value.status_code == 400
    assert "beyond this emulator" in str(caught.value)
    assert caught.value.response is not None
    assert caught.value.response.json()["error"]["code"] == "BadArgumentError"
    assert [c["status"] for c in _calls(emulator, "monitor")] == [400]


def test_an_unknown_table_is_a_semantic_error(logs: LogsQueryClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        logs.query_workspace(LA_WORKSPACE, "AmlComputeClusterEvent | take 5", timespan=None)

    assert caught.value.status_code == 400
    assert caught.value.response is not None
    assert caught.value.response.json()["error"]["innererror"]["code"] == "SemanticError"


def test_the_default_audience_is_the_endpoint_and_is_refused(emulator: Any, credential: Any) -> None:
    naive = LogsQueryClient(credential, endpoint=emulator.url, connection_verify=emulator.ca)

    with pytest.raises(HttpResponseError) as caught:
        naive.query_workspace(LA_WORKSPACE, "AmlComputeJobEvent", timespan=None)

    assert caught.value.status_code == 401
    assert [c["status"] for c in _calls(emulator, "monitor")] == [401]

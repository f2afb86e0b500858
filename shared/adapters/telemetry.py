"""Azure Monitor through OpenTelemetry (azure-monitor-opentelemetry), for the outcome events and metrics only.

The Functions host already sends the app's logs, requests and exceptions to Application Insights;
this adds the structured outcomes (``shared/telemetry.py``) and nothing else: no tracing, no live
metrics, no performance counters, no library instrumentation, and only the one named logger.
With ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` the exporter authenticates with the managed
identity (Application Insights has local authentication off in infra/).
"""

from __future__ import annotations

from typing import Any

from shared.adapters.azure import managed_identity
from shared.settings import Settings

INSTRUMENTATIONS = ("azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3")


def configure(settings: Settings, logger_name: str) -> Any:
    """Configure the exporters for `logger_name` and the metrics; return the meter provider."""
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics

    options: dict[str, Any] = {
        "connection_string": settings.app_insights_connection,
        "logger_name": logger_name,
        "disable_tracing": True,
        "enable_live_metrics": False,
        "enable_performance_counters": False,
        "instrumentation_options": {name: {"enabled": False} for name in INSTRUMENTATIONS},
    }
    if settings.app_insights_client_id is not None:
        options["credential"] = managed_identity(settings.app_insights_client_id)
    configure_azure_monitor(**options)
    return metrics.get_meter_provider()

"""The emulator's Application Insights ingestion answers as the service does for a component without local authentication."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from local.emulator.client import EmulatorClient

pytestmark = pytest.mark.usefixtures("demo")
ENVELOPE = {"name": "Microsoft.ApplicationInsights.Event", "time": "2026-12-02T01:00:00Z", "iKey": "k",
            "data": {"baseType": "EventData", "baseData": {"ver": 2, "name": "AutopilotOutcome", "properties": {}}}}


def _post(emulator: EmulatorClient, body: bytes, token: str | None, **headers: str) -> requests.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{emulator.url}/_sinks/appinsights/v2.1/track", data=body, verify=emulator.ca, timeout=5,
                         headers={"Content-Type": "application/json", **headers})


def _token(resource: str) -> str:
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential().get_token(f"{resource}/.default").token


def test_telemetry_without_an_entra_token_is_refused(emulator):
    answer = _post(emulator, json.dumps([ENVELOPE]).encode(), None)
    assert answer.status_code == 401 and answer.json()["itemsAccepted"] == 0
    answer = _post(emulator, json.dumps([ENVELOPE]).encode(), _token("https://management.azure.com"))
    assert answer.status_code == 401, "a token for another audience is no better"
    assert emulator.state()["sinks"]["appinsights"] == []


def test_telemetry_with_a_monitor_token_is_accepted_gzip_or_not(emulator):
    token = _token("https://monitor.azure.com")
    assert _post(emulator, json.dumps([ENVELOPE]).encode(), token).json() == {"itemsReceived": 1, "itemsAccepted": 1, "errors": []}
    answer = _post(emulator, gzip.compress(json.dumps([ENVELOPE, ENVELOPE]).encode()), token, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.json()["itemsAccepted"] == 2
    assert len(emulator.state()["sinks"]["appinsights"]) == 3


def test_an_envelope_without_its_required_fields_is_reported_by_index(emulator):
    broken = {k: v for k, v in ENVELOPE.items() if k != "iKey"}
    answer = _post(emulator, json.dumps([ENVELOPE, broken]).encode(), _token("https://monitor.azure.com"))
    assert answer.status_code == 206
    assert answer.json()["itemsAccepted"] == 1 and answer.json()["errors"][0]["index"] == 1

"""The server itself: control API, journal, faults, latency, robustness, the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient

pytestmark = pytest.mark.usefixtures("demo")

ALICE = f"{DEMO_WORKSPACE_ID}/computes/ci-alice"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast_ml(emulator: EmulatorClient, credential: Any) -> Any:
    """An MLClient that retries quickly, as the app configures it on the event path."""
    return emulator.ml_client(credential, retry_total=2, retry_backoff_factor=0.01)


def _statuses(emulator: EmulatorClient, path: str) -> list[int | None]:
    return [e["status"] for e in emulator.journal(path=path) if e["path"].endswith(path)]


# --- control API and journal ------------------------------------------------------------------


def test_health_lists_the_services(emulator: EmulatorClient) -> None:
    health = emulator.control("GET", "health")
    assert health["status"] == "ok"
    assert {"identity", "storage", "ml"} <= set(health["services"])


def test_reset_with_an_empty_body_empties_every_service(emulator: EmulatorClient) -> None:
    assert emulator.state()["ml"]["workspaces"]
    emulator.reset(None)
    state = emulator.state()
    assert state["ml"]["workspaces"] == []
    assert state["storage"]["accounts"] == []
    assert emulator.journal() == []


def test_journal_records_each_request_without_its_authorization(emulator: EmulatorClient, credential: Any) -> None:
    emulator.arm(credential, "POST", f"{ALICE}/updateIdleShutdownSetting", {"idleTimeBeforeShutdown": "PT45M"})
    (entry,) = emulator.journal(service="arm")
    assert set(entry) == {"seq", "time", "method", "path", "query", "api_version", "service", "body", "status"}
    assert entry["query"] == {"api-version": "2025-09-01"}
    assert entry["api_version"] == "2025-09-01"
    assert entry["body"] == {"idleTimeBeforeShutdown": "PT45M"}
    assert entry["status"] == 200
    assert "Bearer" not in json.dumps(emulator.journal())
    later = emulator.journal(since=entry["seq"])
    assert all(e["seq"] > entry["seq"] for e in later)
    emulator.control("DELETE", "journal")
    assert emulator.journal() == []


def test_control_calls_are_not_journaled(emulator: EmulatorClient) -> None:
    emulator.state()
    emulator.control("GET", "faults")
    assert emulator.journal() == []


def test_unknown_routes_get_an_arm_404(emulator: EmulatorClient, credential: Any) -> None:
    answer = emulator.arm(credential, "GET", "/subscriptions/x/providers/Microsoft.Nothing/things")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"]
    with pytest.raises(urllib.error.HTTPError) as raised:
        emulator.control("GET", "no-such-thing")
    assert raised.value.code == 404


def test_bad_control_input_is_a_400_and_the_server_lives_on(emulator: EmulatorClient) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        emulator.control("POST", "faults", {"path": "(unclosed"})
    assert raised.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as raised:
        emulator.control("POST", "arm/computes", {"workspace": "/nowhere", "compute": {"name": "x"}})
    assert raised.value.code == 400
    assert emulator.control("GET", "health")["status"] == "ok"


def test_malformed_bodies_and_garbage_requests_do_not_kill_the_server(emulator: EmulatorClient, credential: Any) -> None:
    from azure.core.rest import HttpRequest

    with emulator.arm_client(credential) as client:
        answer = client.send_request(HttpRequest(
            "PUT", f"{emulator.url}{DEMO_WORKSPACE_ID}/datastores/x", params={"api-version": "2025-09-01"},
            content=b"{not json", headers={"Content-Type": "application/json"},
        ))
    assert answer.status_code == 400
    context = ssl.create_default_context(cafile=emulator.ca)
    host, port = emulator.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"BREW /pot HTTP/1.1\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 501")
    with socket.create_connection((host, int(port)), timeout=5):
        pass  # a client that never speaks TLS
    assert emulator.control("GET", "health")["status"] == "ok"


def test_concurrent_requests_are_all_served_and_journaled_once(emulator: EmulatorClient, credential: Any) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: emulator.arm(credential, "GET", ALICE).status_code, range(24)))
    assert answers == [200] * 24
    entries = emulator.journal(service="arm")
    assert len(entries) == 24
    assert len({e["seq"] for e in entries}) == 24


# --- faults and latency -------------------------------------------------------------------------


def test_a_429_with_retry_after_is_retried_by_azure_core(emulator: EmulatorClient, fast_ml: Any) -> None:
    emulator.fault(method="GET", path="/computes/ci-alice$", status=429, headers={"Retry-After": "1"}, times=1)
    started = time.perf_counter()
    assert fast_ml.compute.get("ci-alice").state == "Running"
    assert time.perf_counter() - started >= 1.0  # Retry-After was honoured
    assert _statuses(emulator, "/computes/ci-alice") == [429, 200]
    (fault,) = emulator.control("GET", "faults")
    assert fault["remaining"] == 0
    assert fault["body"]["error"]["code"] == "TooManyRequests"


def test_a_500_that_persists_exhausts_the_retries(emulator: EmulatorClient, fast_ml: Any) -> None:
    emulator.fault(method="*", path="/computes/ci-alice$", status=500, times=5)
    with pytest.raises(HttpResponseError) as raised:
        fast_ml.compute.get("ci-alice")
    assert raised.value.status_code == 500
    assert _statuses(emulator, "/computes/ci-alice") == [500, 500, 500]  # first try + retry_total=2
    assert emulator.control("GET", "faults")[0]["remaining"] == 2
    emulator.control("DELETE", "faults")
    assert fast_ml.compute.get("ci-alice").state == "Running"


def test_a_fault_only_matches_its_method(emulator: EmulatorClient, fast_ml: Any) -> None:
    emulator.fault(method="POST", path="/computes/ci-alice", status=503, times=1)
    assert fast_ml.compute.get("ci-alice").state == "Running"
    assert emulator.control("GET", "faults")[0]["remaining"] == 1


def test_a_dropped_connection_is_retried(emulator: EmulatorClient, fast_ml: Any) -> None:
    emulator.fault(method="GET", path="/computes/ci-alice$", drop=True, times=1)
    assert fast_ml.compute.get("ci-alice").state == "Running"
    assert _statuses(emulator, "/computes/ci-alice") == [None, 200]


def test_a_dropped_connection_surfaces_when_retries_are_off(emulator: EmulatorClient, credential: Any) -> None:
    no_retry = emulator.ml_client(credential, retry_total=0)
    emulator.fault(method="GET", path="/computes/ci-alice$", drop=True, times=1)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        no_retry.compute.get("ci-alice")


def test_a_delay_only_fault_slows_one_request_then_serves_it(emulator: EmulatorClient, fast_ml: Any) -> None:
    emulator.fault(method="GET", path="/computes/ci-alice$", delay_ms=400, times=1)
    started = time.perf_counter()
    assert fast_ml.compute.get("ci-alice").state == "Running"
    assert time.perf_counter() - started >= 0.4
    assert _statuses(emulator, "/computes/ci-alice") == [200]


def test_latency_delays_every_request_until_reset(emulator: EmulatorClient, fast_ml: Any, demo: dict[str, Any]) -> None:
    fast_ml.compute.get("ci-alice")  # warm the token and the connection
    emulator.latency(300)
    started = time.perf_counter()
    fast_ml.compute.get("ci-alice")
    fast_ml.compute.get("ci-bob")
    assert time.perf_counter() - started >= 0.6
    emulator.reset(demo)
    started = time.perf_counter()
    fast_ml.compute.get("ci-alice")
    assert time.perf_counter() - started < 0.3


# --- the command line ------------------------------------------------------------------------


def test_command_line_announces_itself_serves_https_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.emulator", "--host", "127.0.0.1", "--port", "0", "--state-dir", str(tmp_path / "state"),
         "--scenario", str(REPO / "local" / "emulator" / "scenarios" / "demo.json")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert set(announced) == {"url", "ca", "identity_endpoint", "identity_header"}
        assert announced["url"].startswith("https://127.0.0.1:")
        assert announced["identity_endpoint"] == f"{announced['url']}/msi/token"
        ca_text = Path(announced["ca"]).read_text(encoding="utf-8")
        assert "BEGIN CERTIFICATE" in ca_text
        assert "PRIVATE KEY" not in ca_text
        client = EmulatorClient(announced["url"], announced["ca"], announced["identity_header"])
        assert client.control("GET", "health")["status"] == "ok"
        assert client.state()["ml"]["workspaces"][0]["name"] == "mlw-demo"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

"""HTTP triggers with their auth levels and route parameters, the admin API and host status (master key only)."""

from __future__ import annotations

import uuid

import pytest
import requests

from local.host.server import HostHandle
from tests.host.conftest import EVENTGRID_KEY, FUNCTION_KEY, MASTER_KEY, QueueReader

pytestmark = pytest.mark.stack


def test_anonymous_route_fills_route_params_and_query(host: HostHandle) -> None:
    response = requests.get(f"{host.url}/api/hello/ada%20l?x=1&x=2", timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Fixture"] == "hello"
    assert response.json() == {"name": "ada l", "query": {"x": "1,2"}, "method": "GET"}


def test_route_literals_match_case_insensitively_and_a_trailing_slash_is_ignored(host: HostHandle) -> None:
    assert requests.get(f"{host.url}/API/Hello/x/", timeout=10).json()["name"] == "x"


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        ({}, {}, 401),
        ({"x-functions-key": "wrong"}, {}, 401),
        ({"x-functions-key": FUNCTION_KEY}, {}, 200),
        ({}, {"code": FUNCTION_KEY}, 200),
        ({"x-functions-key": MASTER_KEY}, {}, 200),
        ({}, {"code": MASTER_KEY}, 200),
    ],
    ids=["no-key", "wrong-key", "function-key-header", "function-key-code", "master-key-header", "master-key-code"],
)
def test_function_level_accepts_the_function_or_master_key(host: HostHandle, headers: dict[str, str], params: dict[str, str], status: int) -> None:
    response = requests.get(f"{host.url}/api/secure", headers=headers, params=params, timeout=10)
    assert response.status_code == status
    if status == 200:
        # An async function with a context parameter.
        assert response.text == "function-level ok secure"


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        ({"x-functions-key": FUNCTION_KEY}, {}, 401),
        ({}, {"code": FUNCTION_KEY}, 401),
        ({"x-functions-key": MASTER_KEY}, {}, 200),
        ({}, {"code": MASTER_KEY}, 200),
    ],
    ids=["function-key-header", "function-key-code", "master-key-header", "master-key-code"],
)
def test_admin_level_accepts_only_the_master_key(host: HostHandle, headers: dict[str, str], params: dict[str, str], status: int) -> None:
    assert requests.get(f"{host.url}/api/ops/restricted", headers=headers, params=params, timeout=10).status_code == status


def test_a_method_the_function_does_not_accept_and_an_unknown_route_are_404(host: HostHandle) -> None:
    assert requests.post(f"{host.url}/api/hello/x", timeout=10).status_code == 404
    assert requests.get(f"{host.url}/api/nowhere", timeout=10).status_code == 404
    assert requests.get(f"{host.url}/hello/x", timeout=10).status_code == 404


def test_an_exception_in_a_function_is_500_and_the_host_keeps_running(host: HostHandle) -> None:
    assert requests.get(f"{host.url}/api/explode", timeout=10).status_code == 500
    status = requests.get(f"{host.url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}, timeout=10)
    assert status.status_code == 200
    assert status.json()["state"] == "Running"
    assert "RuntimeError: exploded on purpose" in host.logs()
    assert "Executed 'Functions.explode' (Failed, Id=" in host.logs()


def test_the_admin_endpoint_needs_the_master_key(host: HostHandle) -> None:
    url = f"{host.url}/admin/functions/nightly"
    assert requests.post(url, json={"input": ""}, timeout=10).status_code == 401
    assert requests.post(url, json={"input": ""}, headers={"x-functions-key": FUNCTION_KEY}, timeout=10).status_code == 401
    assert requests.post(url, json={"input": ""}, params={"code": "wrong"}, timeout=10).status_code == 401
    assert requests.post(f"{host.url}/admin/functions/nope", json={"input": ""}, headers={"x-functions-key": MASTER_KEY}, timeout=10).status_code == 404
    assert requests.post(url, data=b"", headers={"x-functions-key": MASTER_KEY}, timeout=10).status_code == 400


def test_the_admin_endpoint_runs_a_timer_not_past_due(host: HostHandle, queues: QueueReader) -> None:
    queues.drain("timer-out")
    response = requests.post(f"{host.url}/admin/functions/nightly", json={"input": ""}, params={"code": MASTER_KEY}, timeout=10)
    assert response.status_code == 202
    [record] = queues.collect("timer-out", lambda r: r.get("function") == "nightly", 1)
    assert record["past_due"] is False


def test_the_admin_endpoint_runs_a_queue_function_with_the_input_as_message(host: HostHandle, queues: QueueReader) -> None:
    body = f"admin-{uuid.uuid4()}"
    response = requests.post(f"{host.url}/admin/functions/work", json={"input": body}, headers={"x-functions-key": MASTER_KEY}, timeout=10)
    assert response.status_code == 202
    [record] = queues.collect("work-out", lambda r: r.get("body") == body, 1)
    assert record["id"]


def test_the_admin_endpoint_refuses_http_functions(host: HostHandle) -> None:
    response = requests.post(f"{host.url}/admin/functions/hello", json={"input": ""}, headers={"x-functions-key": MASTER_KEY}, timeout=10)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("headers", "params"),
    [({}, {}), ({"x-functions-key": "wrong"}, {}), ({"x-functions-key": FUNCTION_KEY}, {}), ({}, {"code": EVENTGRID_KEY})],
    ids=["no-key", "wrong-key", "function-key", "eventgrid-extension-key"],
)
def test_host_status_without_the_master_key_is_401(host: HostHandle, headers: dict[str, str], params: dict[str, str]) -> None:
    response = requests.get(f"{host.url}/admin/host/status", headers=headers, params=params, timeout=10)
    assert response.status_code == 401
    assert response.content == b""


def test_host_status_answers_with_the_master_key_in_the_header_or_the_code(host: HostHandle) -> None:
    assert requests.get(f"{host.url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}, timeout=10).json()["state"] == "Running"
    assert requests.get(f"{host.url}/admin/host/status", params={"code": MASTER_KEY}, timeout=10).json()["state"] == "Running"


def test_function_listing_needs_the_master_key(host: HostHandle) -> None:
    assert requests.get(f"{host.url}/admin/functions", timeout=10).status_code == 401
    listing = requests.get(f"{host.url}/admin/functions", headers={"x-functions-key": MASTER_KEY}, timeout=10).json()
    assert {f["name"] for f in listing} >= {"eg_handler", "tick", "nightly", "work", "hello", "secure", "restricted"}


def test_an_unknown_admin_path_is_401_without_the_master_key_and_404_with_it(host: HostHandle) -> None:
    assert requests.get(f"{host.url}/admin/nothing-here", timeout=10).status_code == 401
    assert requests.get(f"{host.url}/admin/nothing-here", headers={"x-functions-key": MASTER_KEY}, timeout=10).status_code == 404

"""Start-up behaviour of the host and of Azurite as processes: errors, function errors, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from local import azurite
from local.host import server
from tests.host.conftest import MASTER_KEY, Stack

pytestmark = pytest.mark.stack
REPO_ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, source: str) -> Path:
    (tmp_path / "function_app.py").write_text(textwrap.dedent(source))
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    return tmp_path


def test_a_function_whose_binding_cannot_resolve_is_in_error_and_the_others_run(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        import azure.functions as func
        app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

        @app.route(route="ping")
        def ping(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("pong")

        @app.queue_trigger(arg_name="msg", queue_name="%UNSET_QUEUE%", connection="AzureWebJobsStorage")
        def consume(msg: func.QueueMessage) -> None:
            pass
        """,
    )
    handle = server.start(project, env={"FUNCTIONS_MASTER_KEY": MASTER_KEY}, log_path=tmp_path / "host.log")
    try:
        assert handle.errors == {"consume": "'%UNSET_QUEUE%' does not resolve to a value."}
        assert [f["name"] for f in handle.functions] == ["ping"]
        assert requests.get(f"{handle.url}/api/ping", timeout=10).text == "pong"
        response = requests.post(f"{handle.url}/admin/functions/consume", json={"input": "x"}, headers={"x-functions-key": MASTER_KEY}, timeout=10)
        assert response.status_code == 404
    finally:
        assert handle.stop() == 0


def test_an_app_that_cannot_be_indexed_stops_the_host_with_the_reason(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        import azure.functions as func
        app = func.FunctionApp()
        other = func.FunctionApp()
        """,
    )
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--project", str(project), "--port", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "more than one module-level FunctionApp instance" in result.stderr


def test_the_azurite_cli_prints_its_connection_string_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.azurite", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        assert "QueueEndpoint=http://127.0.0.1:" in line["connection_string"]
        assert f"AccountKey={azurite.ACCOUNT_KEY}" in line["connection_string"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    # No node process of that group survives.
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)


def test_the_host_stops_cleanly_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    handle = server.start(
        Path(__file__).parent / "fixture_app",
        env={"AzureWebJobsStorage": stack.storage, "WORK_QUEUE": "work-stop-test"},
        log_path=tmp_path / "host.log",
    )
    assert handle.stop() == 0
    assert "Traceback" not in handle.logs()

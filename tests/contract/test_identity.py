"""Managed identity endpoint and ARM authentication, driven by the real azure-identity."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from local.emulator.client import ARM_SCOPE, DEMO_WORKSPACE_ID, EmulatorClient

pytestmark = pytest.mark.usefixtures("demo")


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_default_azure_credential_gets_an_arm_token_from_the_app_service_endpoint(emulator: EmulatorClient) -> None:
    from azure.identity import DefaultAzureCredential

    started = time.perf_counter()
    token = DefaultAzureCredential().get_token(ARM_SCOPE)
    elapsed = time.perf_counter() - started

    assert elapsed < 2, f"DefaultAzureCredential took {elapsed:.1f}s: it probed something slow first"
    claims = _claims(token.token)
    assert claims["aud"] == "https://management.azure.com"
    assert token.expires_on > time.time() + 600
    calls = emulator.journal(service="identity")
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/msi/token")]
    assert calls[0]["query"] == {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    assert calls[0]["status"] == 200


def test_token_endpoint_answers_the_app_service_shape(emulator: EmulatorClient) -> None:
    answer = requests.get(
        f"{emulator.url}/msi/token",
        params={"resource": "https://vault.azure.net", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": emulator.identity_header},
        verify=emulator.ca,
        timeout=5,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://vault.azure.net"
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) > time.time()
    assert _claims(body["access_token"])["aud"] == "https://vault.azure.net"


@pytest.mark.parametrize("header", [None, "wrong-secret"], ids=["missing header", "wrong header"])
def test_token_endpoint_refuses_without_the_identity_header(emulator: EmulatorClient, header: str | None) -> None:
    headers = {"X-IDENTITY-HEADER": header} if header else {}
    answer = requests.get(
        f"{emulator.url}/msi/token",
        params={"resource": "https://management.azure.com", "api-version": "2019-08-01"},
        headers=headers,
        verify=emulator.ca,
        timeout=5,
    )
    assert answer.status_code == 401
    assert "access_token" not in answer.json()


def test_arm_refuses_a_request_without_a_token(emulator: EmulatorClient) -> None:
    answer = requests.get(f"{emulator.url}{DEMO_WORKSPACE_ID}", params={"api-version": "2025-09-01"}, verify=emulator.ca, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "AuthenticationFailed"


def test_arm_refuses_a_token_for_another_audience(emulator: EmulatorClient, credential: object) -> None:
    vault_token = credential.get_token("https://vault.azure.net/.default").token  # type: ignore[attr-defined]
    answer = requests.get(
        f"{emulator.url}{DEMO_WORKSPACE_ID}",
        params={"api-version": "2025-09-01"},
        headers={"Authorization": f"Bearer {vault_token}"},
        verify=emulator.ca,
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_arm_requires_an_api_version(emulator: EmulatorClient, credential: object) -> None:
    answer = emulator.arm(credential, "GET", DEMO_WORKSPACE_ID, api_version=None)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "MissingApiVersionParameter"

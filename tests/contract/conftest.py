"""Shared fixtures for contract tests: the real Azure SDKs against the emulator over HTTPS.

- ``emulator`` (session): the emulator running in-process on a free port, with
  ``REQUESTS_CA_BUNDLE``, ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` pointing at it for the
  whole session (restored afterwards). Its helpers drive the control API.
- ``credential`` (session): a plain ``DefaultAzureCredential``, which finds the App Service
  managed identity through those variables.
- ``demo`` (function): resets the emulator with ``local/emulator/scenarios/demo.json`` and
  returns that scenario.
- ``ml`` (session): an ``MLClient`` on the demo workspace, built as the app builds it.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.emulator import server

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.storage import StorageManagementClient

DEMO_SCENARIO = Path(__file__).resolve().parents[2] / "local" / "emulator" / "scenarios" / "demo.json"
DEMO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
DEMO_RG = "rg-ml-demo"
DEMO_WORKSPACE = "mlw-demo"
DEMO_WORKSPACE_ID = (
    f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/{DEMO_RG}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{DEMO_WORKSPACE}"
)
ARM_SCOPE = "https://management.azure.com/.default"

# Variables that would make DefaultAzureCredential pick another credential than App Service MI.
_FOREIGN_IDENTITY_VARS = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
)


@dataclass(frozen=True)
class EmulatorClient:
    """A running emulator (in-process or not) plus helpers over its control API."""

    url: str
    ca: str
    identity_header: str

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/msi/token"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/_emulator/<path>``; returns the parsed JSON answer, raises on HTTP errors."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        context = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset(self, scenario: dict[str, Any] | None = None) -> None:
        self.control("POST", "reset", scenario)

    def state(self) -> dict[str, Any]:
        return self.control("GET", "state")

    def journal(self, since: int = 0, *, service: str | None = None, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Journal entries after `since`, optionally only those of a service/method/path substring."""
        entries = self.control("GET", f"journal?since={since}")
        return [
            e for e in entries
            if (service is None or e["service"] == service)
            and (method is None or e["method"] == method)
            and (path is None or path in e["path"])
        ]

    def fault(self, **spec: Any) -> dict[str, Any]:
        return self.control("POST", "faults", spec)

    def latency(self, ms: int) -> None:
        self.control("POST", "latency", {"ms": ms})

    def lro(self, **config: Any) -> dict[str, Any]:
        return self.control("POST", "lro", config)

    def lro_fail(self, path: str, times: int = 1) -> dict[str, Any]:
        return self.control("POST", "lro-fail", {"path": path, "times": times})

    def ml_workspace(self, name: str = DEMO_WORKSPACE) -> dict[str, Any]:
        return next(ws for ws in self.state()["ml"]["workspaces"] if ws["name"] == name)

    def cloud_metadata(self) -> dict[str, str]:
        """The custom-cloud description that points azure-ai-ml at the emulator."""
        return {
            "azure_portal": "https://portal.azure.com/",
            "resource_manager": f"{self.url}/",
            "active_directory": "https://login.microsoftonline.com/",
            "aml_resource_id": "https://ml.azure.com/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": f"{self.url}/",
        }

    def ml_client(self, credential: Any, workspace: str = DEMO_WORKSPACE, **kwargs: Any) -> MLClient:
        from azure.ai.ml import MLClient

        # Custom clouds are cached per process by name: one name per emulator URL.
        return MLClient(
            credential, DEMO_SUBSCRIPTION, DEMO_RG, workspace,
            cloud=f"emulator-{self.url}", cloud_metadata=self.cloud_metadata(), **kwargs,
        )

    def storage_client(self, credential: Any, **kwargs: Any) -> StorageManagementClient:
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(credential, DEMO_SUBSCRIPTION, base_url=self.url, credential_scopes=[ARM_SCOPE], **kwargs)

    def arm_client(self, credential: Any, *, retry_total: int = 3) -> ARMPipelineClient:
        """A bare ARM pipeline for the verbs azure-ai-ml lacks (PATCH compute, updateIdleShutdownSetting).

        ARMPipelineClient takes no credential argument of its own: it needs `policies` (or a
        `config`), and its send_request does not prefix relative URLs with base_url.
        """
        from azure.core.pipeline.policies import RetryPolicy
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

        return ARMPipelineClient(
            base_url=self.url,
            policies=[
                RetryPolicy(retry_total=retry_total, retry_backoff_factor=0.01),
                ARMChallengeAuthenticationPolicy(credential, ARM_SCOPE),
            ],
        )

    def arm(self, credential: Any, method: str, path: str, body: Any = None, api_version: str | None = "2025-09-01") -> Any:
        """One authenticated ARM call; returns the azure-core HttpResponse."""
        from azure.core.rest import HttpRequest

        params = {"api-version": api_version} if api_version else {}
        request = HttpRequest(method, f"{self.url}{path}", params=params, json=body)
        with self.arm_client(credential) as client:
            response = client.send_request(request)
            response.read()
            return response


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorClient]:
    handle = server.start("127.0.0.1", 0, tmp_path_factory.mktemp("emulator"))
    patch = pytest.MonkeyPatch()
    patch.setenv("REQUESTS_CA_BUNDLE", handle.ca)
    patch.setenv("IDENTITY_ENDPOINT", handle.identity_endpoint)
    patch.setenv("IDENTITY_HEADER", handle.identity_header)
    # MLClient records its cloud in this variable; setting it here lets undo() restore it.
    patch.setenv("AZUREML_CURRENT_CLOUD", os.environ.get("AZUREML_CURRENT_CLOUD", "AzureCloud"))
    for name in _FOREIGN_IDENTITY_VARS:
        patch.delenv(name, raising=False)
    try:
        yield EmulatorClient(handle.url, handle.ca, handle.identity_header)
    finally:
        patch.undo()
        handle.stop()


@pytest.fixture(scope="session")
def credential(emulator: EmulatorClient) -> DefaultAzureCredential:
    del emulator  # the environment it sets is what the credential reads
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


@pytest.fixture(scope="session")
def demo_scenario() -> dict[str, Any]:
    return json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))


@pytest.fixture
def demo(emulator: EmulatorClient, demo_scenario: dict[str, Any]) -> dict[str, Any]:
    emulator.reset(demo_scenario)
    return demo_scenario


@pytest.fixture(scope="session")
def ml(emulator: EmulatorClient, credential: DefaultAzureCredential) -> MLClient:
    return emulator.ml_client(credential)


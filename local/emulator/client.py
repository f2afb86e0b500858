"""A client for a running emulator's control API, plus the SDK clients pointed at it.

Used by the demo, the local stack and the tests; it speaks HTTPS to the emulator like any client.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.storage import StorageManagementClient

DEMO_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "demo.json"
DEMO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
DEMO_RG = "rg-ml-demo"
DEMO_WORKSPACE = "mlw-demo"
DEMO_WORKSPACE_ID = (
    f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/{DEMO_RG}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{DEMO_WORKSPACE}"
)
ARM_SCOPE = "https://management.azure.com/.default"

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

    def key_vault_event(self, vault: str, secret: str, kind: str = "SecretNearExpiry", schema: str = "eventgrid") -> Any:
        """The event Key Vault would publish now for the secret's latest version."""
        url = f"{self.url}/keyvault/_events/{vault}?secret={secret}&type={kind}&schema={schema}"
        context = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return json.loads(response.read())

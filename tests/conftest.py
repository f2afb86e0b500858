"""Fixtures every suite shares: one emulator per test process (its services are module singletons).

- ``emulator`` (session): the emulator in-process on a free port, with ``REQUESTS_CA_BUNDLE``,
  ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` pointing at it for the whole session (restored
  afterwards), so the real SDKs and ``DefaultAzureCredential`` reach it unchanged.
- ``credential`` (session): a plain ``DefaultAzureCredential``.
- ``demo`` (function): the emulator reset to ``local/emulator/scenarios/demo.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from local.emulator import server
from local.emulator.client import DEMO_SCENARIO, EmulatorClient

if TYPE_CHECKING:
    from azure.identity import DefaultAzureCredential

# Variables that would make DefaultAzureCredential pick another credential than App Service MI.
_FOREIGN_IDENTITY_VARS = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
)


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

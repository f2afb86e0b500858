"""Contract-test fixtures: the real Azure SDKs against the emulator over HTTPS.

The session ``emulator``, ``credential`` and ``demo`` fixtures live in ``tests/conftest.py``; this
adds an ``MLClient`` on the demo workspace, built as the app builds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from local.emulator.client import (  # noqa: F401  (re-exported for the tests of this folder)
    ARM_SCOPE,
    DEMO_RG,
    DEMO_SUBSCRIPTION,
    DEMO_WORKSPACE,
    DEMO_WORKSPACE_ID,
    EmulatorClient,
)

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential


@pytest.fixture(scope="session")
def ml(emulator: EmulatorClient, credential: DefaultAzureCredential) -> MLClient:
    return emulator.ml_client(credential)


"""A write that ARM answers 200 but carries on (a cluster's PATCH while it is Updating), through the app's
own ARM client: followed to its end, its failure said as such, and its wait bounded — polling included."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient
from shared.adapters.arm import ArmClient
from shared.errors import AzureError
from shared.settings import Settings

CLUSTER = f"{DEMO_WORKSPACE_ID}/computes/cpu-cluster"
BODY = {"properties": {"properties": {"scaleSettings": {"minNodeCount": 0, "maxNodeCount": 3}}}}


def _arm(emulator: EmulatorClient, credential: Any, timeout_s: int = 30) -> ArmClient:
    env = {"ALLOWED_WORKSPACES": DEMO_WORKSPACE_ID, "ARM_ENDPOINT": emulator.url, "ARM_TIMEOUT_SECONDS": str(timeout_s)}
    return ArmClient(Settings.from_env(env, require_storage=False), credential)


def _monitor_polls(emulator: EmulatorClient) -> int:
    return len([e for e in emulator.journal(path="/computeOperationsStatus/") if e["method"] == "GET"])


def test_a_patch_answered_updating_is_followed_until_the_settings_have_landed(emulator: EmulatorClient, credential: Any, demo: Any) -> None:
    emulator.lro(polls=1, retry_after=0)
    body = _arm(emulator, credential).begin("PATCH", CLUSTER, BODY, api_version="2025-09-01")
    assert body["properties"]["provisioningState"] == "Succeeded"
    assert body["properties"]["properties"]["scaleSettings"]["maxNodeCount"] == 3
    assert _monitor_polls(emulator) >= 2  # InProgress, then Succeeded


def test_a_patch_whose_operation_fails_is_said_to_have_failed(emulator: EmulatorClient, credential: Any, demo: Any) -> None:
    emulator.lro(polls=0, retry_after=0)
    emulator.lro_fail("/computes/cpu-cluster$")
    with pytest.raises(AzureError) as failed:
        _arm(emulator, credential).begin("PATCH", CLUSTER, BODY, api_version="2025-09-01", what="scale cpu-cluster")
    assert not failed.value.transient
    assert str(failed.value).startswith("scale cpu-cluster: the operation ended without success (OperationFailed"), str(failed.value)


def test_an_operation_that_does_not_end_stops_being_polled_when_the_wait_gives_up(emulator: EmulatorClient, credential: Any, demo: Any) -> None:
    emulator.lro(polls=10_000, seconds=10_000, retry_after=0)
    with pytest.raises(AzureError) as waited:
        _arm(emulator, credential, timeout_s=1).begin("PATCH", CLUSTER, BODY, api_version="2025-09-01", what="scale cpu-cluster")
    assert waited.value.transient and "still running after 6s" in str(waited.value)
    polls = _monitor_polls(emulator)
    time.sleep(5)  # ARM's polling waits 2 s between polls when ARM names no Retry-After
    assert _monitor_polls(emulator) == polls

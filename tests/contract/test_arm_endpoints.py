"""Online endpoints, deployments and job cancel: the emulator's wire as the REST examples show it, and the
app's own adapter (azure-mgmt-core's pipeline and ARM polling) against it."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulator.client import DEMO_WORKSPACE_ID, EmulatorClient
from shared.adapters.aml import Workspace
from shared.model import ResourceId
from shared.settings import Settings

ENDPOINTS = f"{DEMO_WORKSPACE_ID}/onlineEndpoints"
CANARY = f"{ENDPOINTS}/scoring-api/deployments/canary"


@pytest.fixture(autouse=True)
def fresh(emulator: EmulatorClient, demo: dict[str, Any]) -> None:
    emulator.lro(polls=1)  # the demo scenario, each operation polled once before it ends


@pytest.fixture
def workspace(emulator: EmulatorClient) -> Workspace:
    settings = Settings.from_env({"ALLOWED_WORKSPACES": DEMO_WORKSPACE_ID, "ARM_ENDPOINT": emulator.url,
                                  "ARM_AUDIENCE": "https://management.azure.com"}, require_storage=False)
    return Workspace(settings, ResourceId.parse(DEMO_WORKSPACE_ID))


def test_an_endpoint_carries_its_traffic_and_mirror_traffic_and_a_deployment_its_state_size_and_count(
        emulator: EmulatorClient, credential: Any) -> None:
    endpoint = emulator.arm(credential, "GET", f"{ENDPOINTS}/churn-api").json()
    assert endpoint["type"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    assert endpoint["properties"]["traffic"] == {"blue": 100, "green": 0}
    assert endpoint["properties"]["mirrorTraffic"] == {"green": 10}
    listed = emulator.arm(credential, "GET", f"{ENDPOINTS}/churn-api/deployments").json()
    assert [d["name"] for d in listed["value"]] == ["blue", "green"] and listed["nextLink"] is None
    green = emulator.arm(credential, "GET", f"{ENDPOINTS}/churn-api/deployments/green").json()
    assert (green["properties"]["provisioningState"], green["properties"]["instanceType"], green["sku"]["capacity"]) == \
        ("Failed", "Standard_DS3_v2", 1)
    assert green["properties"]["endpointComputeType"] == "Managed" and green["systemData"]["createdBy"] == "alice@contoso.com"
    assert emulator.arm(credential, "GET", f"{ENDPOINTS}/nope").status_code == 404


def test_get_logs_answers_the_last_lines_of_the_container_asked_for(emulator: EmulatorClient, credential: Any) -> None:
    tail = emulator.arm(credential, "POST", f"{CANARY}/getLogs", {"containerType": "InferenceServer", "tail": 2}).json()
    assert tail["content"].splitlines() == ["2026-01-01 12:00:02 ERROR init() failed: FileNotFoundError: /var/azureml-app/model/model.pkl",
                                            "2026-01-01 12:00:02 ERROR container exited with code 1"]
    assert emulator.arm(credential, "POST", f"{CANARY}/getLogs", {"containerType": "StorageInitializer"}).json() == {"content": ""}
    assert emulator.arm(credential, "POST", f"{CANARY}/getLogs", {"containerType": "Sidecar", "tail": 1}).status_code == 400


def test_a_deployment_delete_is_a_long_running_operation_and_one_with_traffic_or_mirror_traffic_is_refused(
        emulator: EmulatorClient, credential: Any) -> None:
    started = emulator.arm(credential, "DELETE", CANARY)
    assert started.status_code == 202
    monitor = started.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.MachineLearningServices/locations/westeurope/mfeOperationsStatus/" in monitor
    assert "/locations/westeurope/mfeOperationResults/" in started.headers["Location"]
    assert emulator.arm(credential, "GET", CANARY).json()["properties"]["provisioningState"] == "Deleting"
    for path in (f"{ENDPOINTS}/churn-api/deployments/green", f"{ENDPOINTS}/fraud-api/deployments/v2"):
        refused = emulator.arm(credential, "DELETE", path)
        assert refused.status_code == 400 and "cannot be deleted" in refused.json()["error"]["message"], path
    assert emulator.arm(credential, "DELETE", f"{ENDPOINTS}/scoring-api/deployments/never-was").status_code == 204


def test_the_adapter_deletes_a_deployment_through_arm_polling_and_reads_it_back_gone(emulator: EmulatorClient,
                                                                                     workspace: Workspace) -> None:
    (canary,) = [d for d in workspace.list_deployments("scoring-api") if d.name == "canary"]
    assert (canary.failed, canary.instance_count, canary.owner) == (True, 2, "dave@contoso.com")
    assert workspace.get_endpoint("scoring-api").share("CANARY") == (0, 0)  # type: ignore[union-attr]
    assert "FileNotFoundError" in workspace.deployment_logs("scoring-api", "canary", 5)
    workspace.delete_deployment("scoring-api", "canary")
    assert workspace.get_deployment("scoring-api", "canary") is None
    polls = [e for e in emulator.journal(path="/mfeOperationsStatus/") if e["method"] == "GET"]
    assert len(polls) == 2  # InProgress once, then Succeeded: ARM polling waits for the end


def test_the_adapter_cancels_a_job_through_its_location_and_the_job_reads_back_canceled(emulator: EmulatorClient,
                                                                                        credential: Any, workspace: Workspace) -> None:
    started = emulator.arm(credential, "POST", f"{DEMO_WORKSPACE_ID}/jobs/train-bob-0001/cancel")
    assert started.status_code == 202 and "Azure-AsyncOperation" not in started.headers
    # AML's job operations answer with their results resource, a type of its own (its own read permission).
    assert "/providers/Microsoft.MachineLearningServices/locations/westeurope/mfeOperationResults/" in started.headers["Location"]
    workspace.cancel_job("score-serverless-0107")
    job = workspace.get_job("score-serverless-0107")
    assert job is not None and job.status == "Canceled" and job.instance_type == "Standard_DS3_v2"
    done = emulator.arm(credential, "POST", f"{DEMO_WORKSPACE_ID}/jobs/finetune-0007/cancel")
    assert done.status_code == 200  # a finished job: nothing to cancel
    assert workspace.get_job("no-such-job") is None

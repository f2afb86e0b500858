"""Microsoft.MachineLearningServices through the real azure-ai-ml (and a bare ARM pipeline)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from local.emulator.client import DEMO_RG, DEMO_SUBSCRIPTION, DEMO_WORKSPACE_ID, EmulatorClient

pytestmark = pytest.mark.usefixtures("demo")

COMPUTES = f"{DEMO_WORKSPACE_ID}/computes"
SUBNET = (
    f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/{DEMO_RG}/providers/Microsoft.Network"
    "/virtualNetworks/vnet-ml-demo/subnets/snet-compute"
)


def _compute(emulator: EmulatorClient, name: str) -> dict[str, Any]:
    return next(c for c in emulator.ml_workspace()["computes"] if c["name"] == name)


def _datastore(emulator: EmulatorClient, name: str) -> dict[str, Any]:
    return next(d for d in emulator.ml_workspace()["datastores"] if d["name"] == name)


# --- workspace -------------------------------------------------------------------------------


def test_workspace_get_returns_the_seeded_workspace(emulator: EmulatorClient, ml: Any) -> None:
    ws = ml.workspaces.get("mlw-demo")
    assert ws.name == "mlw-demo"
    assert ws.location == "westeurope"
    assert ws.tags == {"team": "data-science", "env": "demo"}
    assert ws.storage_account.endswith("/Microsoft.Storage/storageAccounts/stmldemo")
    (call,) = emulator.journal(service="arm")
    assert (call["method"], call["path"], call["status"]) == ("GET", DEMO_WORKSPACE_ID, 200)
    assert call["api_version"]


def test_sync_keys_is_a_long_running_operation_recorded_on_the_workspace(emulator: EmulatorClient, ml: Any) -> None:
    assert emulator.ml_workspace()["keysSyncCount"] == 0
    ml.workspaces.begin_sync_keys("mlw-demo").result()
    ws = emulator.ml_workspace()
    assert ws["keysSyncCount"] == 1
    assert ws["keysSyncedAt"] is not None
    (post,) = emulator.journal(method="POST", path="/resyncKeys")
    assert post["path"] == f"{DEMO_WORKSPACE_ID}/resyncKeys"
    assert post["status"] == 202
    polls = emulator.journal(path="/workspaceOperationsStatus/")
    assert [p["status"] for p in polls] == [202, 200]
    assert all(p["query"]["type"] == "location" for p in polls)


# --- computes: reads ------------------------------------------------------------------------


def test_compute_list_returns_instances_and_clusters_fully_populated(ml: Any) -> None:
    computes = {c.name: c for c in ml.compute.list()}
    assert set(computes) == {"ci-alice", "ci-bob", "ci-carol", "ci-dave", "ci-erin", "ci-frank", "cpu-cluster", "gpu-cluster",
                             *ATTACHED}
    alice = computes["ci-alice"]
    assert alice.type == "computeinstance"
    assert alice.state == "Running"
    assert alice.size == "Standard_DS3_v2"
    assert alice.idle_time_before_shutdown is None
    # azure-ai-ml hands last_operation back with the wire's camelCase keys.
    assert set(alice.last_operation) == {"operationName", "operationTime", "operationStatus", "operationTrigger"}
    assert alice.last_operation["operationName"] == "Start"
    assert alice.last_operation["operationStatus"] == "Succeeded"
    assert computes["ci-bob"].idle_time_before_shutdown_minutes == 60
    assert computes["ci-carol"].state == "Stopped"
    assert computes["ci-dave"].tags == {"autopilot-exempt": "true"}
    assert computes["cpu-cluster"].type == "amlcompute"


# Every other compute type of the demo, as ARM names it in properties.computeType (one not known to Azure today).
ATTACHED = {"aks-inference": "AKS", "k8s-arc": "Kubernetes", "vm-gpu-box": "VirtualMachine", "dbx-prod": "Databricks",
            "hdi-spark": "HDInsight", "syn-pool": "SynapseSpark", "adf-pipelines": "DataFactory",
            "adla-legacy": "DataLakeAnalytics", "fabric-pool": "FabricSpark"}


def test_every_other_compute_type_is_served_as_the_rest_examples_show_it_and_the_sdk_reads_it(
        emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    listed = {c.name: c for c in ml.compute.list()}
    for name, kind in ATTACHED.items():
        raw = emulator.arm(credential, "GET", f"{COMPUTES}/{name}").json()
        props = raw["properties"]
        assert props["computeType"] == kind and props["provisioningState"] == "Succeeded", name
        assert listed[name].name == name  # azure-ai-ml lists it (an unknown type too) without failing
        if kind != "FabricSpark":
            assert props["resourceId"].startswith("/subscriptions/"), name
    aks = emulator.arm(credential, "GET", f"{COMPUTES}/aks-inference").json()["properties"]
    assert aks["properties"]["agentCount"] == 3 and aks["properties"]["agentVmSize"] == "Standard_D4s_v3"
    assert aks["isAttachedCompute"] is False
    k8s = emulator.arm(credential, "GET", f"{COMPUTES}/k8s-arc").json()["properties"]
    assert k8s["isAttachedCompute"] is True and k8s["properties"]["defaultInstanceType"] == "defaultInstanceType"
    vm = emulator.arm(credential, "GET", f"{COMPUTES}/vm-gpu-box").json()["properties"]["properties"]
    assert vm["virtualMachineSize"] == "Standard_NC6s_v3" and "password" not in vm["administratorAccount"]


def test_compute_instance_carries_its_creator_on_the_wire(emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    alice = ml.compute.get("ci-alice")
    # The entity exposes the creator only as the assigned user; the name is on the wire.
    assert alice.create_on_behalf_of.user_object_id == "a11ce000-0000-4000-8000-000000000001"
    raw = emulator.arm(credential, "GET", f"{COMPUTES}/ci-alice").json()
    assert raw["properties"]["properties"]["createdBy"]["userName"] == "alice@contoso.com"
    assert raw["systemData"]["createdBy"] == "alice@contoso.com"
    assert set(raw["systemData"]) == {"createdBy", "createdByType", "createdAt", "lastModifiedBy", "lastModifiedByType", "lastModifiedAt"}
    assert raw["type"] == "Microsoft.MachineLearningServices/workspaces/computes"


def test_cluster_get_exposes_scale_settings_priority_subnet_and_node_counts(emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    cluster = ml.compute.get("cpu-cluster")
    assert (cluster.min_instances, cluster.max_instances) == (2, 4)
    assert cluster.idle_time_before_scale_down == 7200
    assert cluster.size == "Standard_DS3_v2"
    assert cluster.tier == "dedicated"
    assert cluster.network_settings.subnet == SUBNET
    raw = emulator.arm(credential, "GET", f"{COMPUTES}/gpu-cluster").json()["properties"]["properties"]
    assert raw["nodeStateCounts"]["unusableNodeCount"] == 1
    assert raw["currentNodeCount"] == 1


def test_list_nodes_reports_each_node_state(ml: Any) -> None:
    nodes = list(ml.compute.list_nodes("cpu-cluster"))
    assert len(nodes) == 2
    # camelCase only, as the architecture notes: node_state stays None.
    assert [n.nodeState for n in nodes] == ["idle", "idle"]
    assert all(n.nodeId and n.privateIpAddress for n in nodes)
    (gpu,) = ml.compute.list_nodes("gpu-cluster")
    assert gpu.nodeState == "unusable"


def test_missing_compute_raises_resource_not_found(emulator: EmulatorClient, ml: Any) -> None:
    with pytest.raises(ResourceNotFoundError):
        ml.compute.get("ci-nobody")
    with pytest.raises(ResourceNotFoundError):
        ml.compute.begin_stop("ci-nobody")
    statuses = [e["status"] for e in emulator.journal(service="arm", path="ci-nobody")]
    assert statuses == [404, 404]


def test_usages_are_derived_from_the_computes_that_hold_cores(emulator: EmulatorClient, ml: Any) -> None:
    def family(usages: list[Any], label: str) -> int:
        # Named as Azure's example names them (Usage/list.json): by the row's label.
        (usage,) = [u for u in usages if u.type.endswith("/vmFamily/usages") and u.name["value"] == f"{label} Cluster Dedicated vCPUs"]
        return usage.currentValue  # camelCase only on the entity

    usages = list(ml.compute.list_usage(location="westeurope"))
    # alice 4 + bob 4 + dave 8 + erin 4 (carol is stopped) + two cpu-cluster nodes x 4
    assert family(usages, "Standard DSv2 Family") == 28
    assert family(usages, "Standard NCSv3 Family") == 6  # the unusable gpu node still holds its cores
    assert family(usages, "Standard DSv3 Family") == 4  # frank's D4s_v3
    low = [u for u in usages if u.type.endswith("/vmFamily/usages") and "LowPriority" in u.name["value"]]
    assert low and all(u.limit == -1 for u in low)  # each family's low-priority count, with no limit of its own
    (total,) = [u for u in usages if u.type.endswith("/dedicatedCores/usages")]
    assert total.currentValue == 38
    ml.compute.begin_stop("ci-alice").result()
    assert family(list(ml.compute.list_usage(location="westeurope")), "Standard DSv2 Family") == 24
    assert emulator.journal(path="/locations/westeurope/usages")[0]["method"] == "GET"


# --- computes: start / stop / restart -------------------------------------------------------


def test_stop_moves_running_to_stopping_to_stopped_through_the_operation_monitor(emulator: EmulatorClient, ml: Any) -> None:
    poller = ml.compute.begin_stop("ci-alice")
    during = ml.compute.get("ci-alice")
    assert during.state == "Stopping"
    assert during.last_operation["operationStatus"] == "InProgress"
    poller.result()
    after = ml.compute.get("ci-alice")
    assert after.state == "Stopped"
    assert after.last_operation["operationName"] == "Stop"
    assert after.last_operation["operationStatus"] == "Succeeded"
    assert after.last_operation["operationTrigger"] == "User"
    (post,) = emulator.journal(method="POST", path="/stop")
    assert post["path"] == f"{COMPUTES}/ci-alice/stop"
    assert post["status"] == 202
    assert post["body"] is None
    monitor = emulator.journal(path="/computeOperationsStatus/")
    assert monitor
    assert all(m["path"].startswith(f"/subscriptions/{DEMO_SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/westeurope/") for m in monitor)


def test_start_and_restart_walk_their_transitions(emulator: EmulatorClient, ml: Any) -> None:
    ml.compute.begin_start("ci-carol").result()
    carol = ml.compute.get("ci-carol")
    assert carol.state == "Running"
    assert carol.last_operation["operationName"] == "Start"
    ml.compute.begin_restart("ci-carol").result()
    carol = ml.compute.get("ci-carol")
    assert carol.state == "Running"
    assert carol.last_operation["operationName"] == "Restart"
    assert [e["path"].rsplit("/", 1)[-1] for e in emulator.journal(method="POST")] == ["start", "restart"]


@pytest.mark.parametrize(
    ("verb", "name"),
    [
        ("begin_stop", "ci-carol"),  # already stopped
        ("begin_start", "ci-alice"),  # already running
        ("begin_restart", "ci-carol"),  # stopped
        ("begin_stop", "cpu-cluster"),  # clusters have no start/stop
        ("begin_start", "cpu-cluster"),
    ],
)
def test_an_invalid_transition_is_a_conflict(emulator: EmulatorClient, ml: Any, verb: str, name: str) -> None:
    before = _compute(emulator, name)
    with pytest.raises(ResourceExistsError) as raised:
        getattr(ml.compute, verb)(name)
    assert raised.value.status_code == 409
    assert raised.value.error.code == "Conflict"
    assert _compute(emulator, name) == before


def test_stopping_twice_conflicts_while_the_first_stop_runs(emulator: EmulatorClient, ml: Any) -> None:
    poller = ml.compute.begin_stop("ci-erin")
    with pytest.raises(ResourceExistsError):
        ml.compute.begin_stop("ci-erin")
    poller.result()
    assert _compute(emulator, "ci-erin")["state"] == "Stopped"


def test_an_injected_operation_failure_fails_the_poller_and_restores_the_state(emulator: EmulatorClient, ml: Any) -> None:
    emulator.lro_fail(path="/computes/ci-alice/stop")
    poller = ml.compute.begin_stop("ci-alice")
    with pytest.raises(HttpResponseError):
        poller.result()
    alice = _compute(emulator, "ci-alice")
    assert alice["state"] == "Running"
    assert alice["lastOperation"]["operationStatus"] == "StopFailed"
    (failed,) = [op for op in emulator.state()["ml"]["operations"] if op["operation"] == "Stop"]
    assert failed["status"] == "Failed"
    assert failed["error"]["code"] == "OperationFailed"
    # The rule was used up: the next stop succeeds.
    ml.compute.begin_stop("ci-alice").result()
    assert _compute(emulator, "ci-alice")["state"] == "Stopped"


def test_an_operation_nobody_polls_completes_after_its_deadline(emulator: EmulatorClient, credential: Any) -> None:
    emulator.lro(seconds=0.2)
    answer = emulator.arm(credential, "POST", f"{COMPUTES}/ci-alice/stop")
    assert answer.status_code == 202
    assert answer.headers["Retry-After"] == "0"
    assert "/computeOperationsStatus/" in answer.headers["Azure-AsyncOperation"]
    assert "type=location" in answer.headers["Location"]
    assert _compute(emulator, "ci-alice")["state"] == "Stopping"
    time.sleep(0.3)
    # Any ARM request settles operations whose time is up.
    emulator.arm(credential, "GET", f"{COMPUTES}/ci-alice")
    assert _compute(emulator, "ci-alice")["state"] == "Stopped"


# --- computes: writes ------------------------------------------------------------------------


def _settle(emulator: EmulatorClient, credential: Any, answer: Any) -> str:
    """Poll the operation a write started (its Azure-AsyncOperation) until it ends; its final status."""
    monitor = urlsplit(answer.headers["Azure-AsyncOperation"])
    for _ in range(10):
        status = emulator.arm(credential, "GET", monitor.path, api_version="2025-09-01").json()["status"]
        if status != "InProgress":
            return str(status)
    raise AssertionError("the operation never ended")


def test_patch_answers_updating_and_lands_only_scale_settings_when_its_operation_ends(
        emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    body = {"properties": {"properties": {"scaleSettings": {"minNodeCount": 0, "maxNodeCount": 3}}}}
    answer = emulator.arm(credential, "PATCH", f"{COMPUTES}/cpu-cluster", body)
    # Azure's answer (Compute/patch.json): 200, the cluster Updating, its operation to follow.
    assert answer.status_code == 200
    assert answer.json()["properties"]["provisioningState"] == "Updating"
    assert "/computeOperationsStatus/" in answer.headers["Azure-AsyncOperation"]
    assert answer.json()["properties"]["properties"]["scaleSettings"]["maxNodeCount"] == 4  # not yet
    again = emulator.arm(credential, "PATCH", f"{COMPUTES}/cpu-cluster", body)
    assert again.status_code == 409  # a second write while it is Updating
    assert _settle(emulator, credential, answer) == "Succeeded"
    inner = emulator.arm(credential, "GET", f"{COMPUTES}/cpu-cluster").json()["properties"]
    assert inner["provisioningState"] == "Succeeded"
    assert inner["properties"]["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": 3, "nodeIdleTimeBeforeScaleDown": "PT7200S"}
    cluster = ml.compute.get("cpu-cluster")
    assert (cluster.min_instances, cluster.max_instances) == (0, 3)
    assert cluster.idle_time_before_scale_down == 7200
    assert cluster.network_settings.subnet == SUBNET
    assert cluster.size == "Standard_DS3_v2"
    assert cluster.tags == {"cost-center": "1234"}
    # Idle nodes above the new minimum are released.
    assert _compute(emulator, "cpu-cluster")["nodes"] == []
    patch = emulator.journal(method="PATCH")[0]
    assert patch["body"] == body
    assert patch["api_version"] == "2025-09-01"


def test_a_failed_patch_leaves_the_old_settings(emulator: EmulatorClient, credential: Any) -> None:
    emulator.lro_fail("/computes/cpu-cluster$")
    answer = emulator.arm(credential, "PATCH", f"{COMPUTES}/cpu-cluster", {"properties": {"scaleSettings": {"maxNodeCount": 8}}})
    assert answer.status_code == 200
    assert _settle(emulator, credential, answer) == "Failed"
    assert _compute(emulator, "cpu-cluster")["maxNodes"] == 4


def test_patch_accepts_the_flat_shape_and_validates(emulator: EmulatorClient, credential: Any) -> None:
    flat = emulator.arm(credential, "PATCH", f"{COMPUTES}/cpu-cluster", {"properties": {"scaleSettings": {"maxNodeCount": 8}}})
    assert flat.status_code == 200
    _settle(emulator, credential, flat)
    assert _compute(emulator, "cpu-cluster")["maxNodes"] == 8
    assert _compute(emulator, "cpu-cluster")["minNodes"] == 2
    bad = emulator.arm(credential, "PATCH", f"{COMPUTES}/cpu-cluster", {"properties": {"properties": {"scaleSettings": {"minNodeCount": 9}}}})
    assert bad.status_code == 400
    instance = emulator.arm(credential, "PATCH", f"{COMPUTES}/ci-alice", {"properties": {"properties": {"scaleSettings": {"maxNodeCount": 1}}}})
    assert instance.status_code == 409


def test_begin_update_puts_the_whole_entity_so_what_the_sdk_omits_is_replaced(emulator: EmulatorClient, ml: Any) -> None:
    cluster = ml.compute.get("cpu-cluster")
    cluster.max_instances = 6
    updated = ml.compute.begin_update(cluster).result()
    assert updated.max_instances == 6
    (put,) = emulator.journal(method="PUT")
    assert put["body"]["properties"]["properties"]["scaleSettings"]["maxNodeCount"] == 6
    # azure-ai-ml sends "subnet": {} on update: a PUT therefore loses the subnet, hence PATCH.
    assert put["body"]["properties"]["properties"]["subnet"] == {}
    assert updated.network_settings is None or updated.network_settings.subnet is None


def test_update_idle_shutdown_setting_sets_the_instance_duration(emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    answer = emulator.arm(credential, "POST", f"{COMPUTES}/ci-alice/updateIdleShutdownSetting", {"idleTimeBeforeShutdown": "PT30M"})
    assert answer.status_code == 200
    assert ml.compute.get("ci-alice").idle_time_before_shutdown_minutes == 30
    (post,) = emulator.journal(method="POST", path="updateIdleShutdownSetting")
    assert post["body"] == {"idleTimeBeforeShutdown": "PT30M"}


@pytest.mark.parametrize(
    ("name", "duration"),
    [("ci-alice", "PT5M"), ("ci-alice", "P4D"), ("ci-alice", "thirty minutes"), ("cpu-cluster", "PT30M")],
)
def test_update_idle_shutdown_setting_refuses_out_of_range_or_clusters(emulator: EmulatorClient, credential: Any, name: str, duration: str) -> None:
    answer = emulator.arm(credential, "POST", f"{COMPUTES}/{name}/updateIdleShutdownSetting", {"idleTimeBeforeShutdown": duration})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert _compute(emulator, "ci-alice").get("idleTimeBeforeShutdown") is None


def test_control_api_upserts_and_deletes_computes(emulator: EmulatorClient, ml: Any) -> None:
    emulator.control("POST", "arm/computes", {"workspace": DEMO_WORKSPACE_ID, "compute": {
        "name": "ci-frank", "type": "ComputeInstance", "size": "Standard_DS11_v2", "state": "Stopped",
    }})
    assert ml.compute.get("ci-frank").state == "Stopped"
    emulator.control("DELETE", f"arm/computes?id={COMPUTES}/ci-frank")
    with pytest.raises(ResourceNotFoundError):
        ml.compute.get("ci-frank")


# --- jobs --------------------------------------------------------------------------------------


def test_jobs_list_gives_status_compute_and_creation_context(emulator: EmulatorClient, ml: Any) -> None:
    jobs = {j.name: j for j in ml.jobs.list()}
    assert set(jobs) == {"train-bob-0001", "etl-nightly-0412", "finetune-0007", "sweep-serverless-0031", "score-serverless-0107"}
    running = jobs["train-bob-0001"]
    assert running.status == "Running"
    assert running.compute == "ci-bob"
    assert running.display_name == "bob notebook training"
    assert running.experiment_name == "churn"
    failed = jobs["etl-nightly-0412"]
    assert failed.status == "Failed"
    assert failed.compute == "cpu-cluster"
    # A terminal job's last modification is its end: 3 hours ago, an hour after it was created.
    ran_for = failed.creation_context.last_modified_at - failed.creation_context.created_at
    assert abs(ran_for.total_seconds() - 3600) < 5
    (call,) = emulator.journal(path="/jobs")
    assert call["query"]["listViewType"] == "ActiveOnly"


def test_a_serverless_job_has_no_compute_and_says_its_instance_type_and_count(emulator: EmulatorClient) -> None:
    from shared.adapters.aml import Workspace
    from shared.model import ResourceId
    from shared.settings import Settings

    settings = Settings.from_env({"ALLOWED_WORKSPACES": DEMO_WORKSPACE_ID, "ARM_ENDPOINT": emulator.url,
                                  "ARM_AUDIENCE": "https://management.azure.com"}, require_storage=False)
    job = Workspace(settings, ResourceId.parse(DEMO_WORKSPACE_ID)).get_job("sweep-serverless-0031")
    assert job is not None
    assert (job.compute, job.instance_type, job.instance_count, job.owner) == (None, "Standard_DS3_v2", 2, "alice@contoso.com")


def test_jobs_list_honours_the_list_view_type(emulator: EmulatorClient, ml: Any) -> None:
    from azure.ai.ml.constants import ListViewType

    emulator.control("POST", "arm/jobs", {"workspace": DEMO_WORKSPACE_ID, "job": {
        "name": "old-0001", "status": "Completed", "compute": "cpu-cluster", "createdAt": "now-30d", "endedAt": "now-29d", "archived": True,
    }})
    assert "old-0001" not in {j.name for j in ml.jobs.list()}
    assert {j.name for j in ml.jobs.list(list_view_type=ListViewType.ARCHIVED_ONLY)} == {"old-0001"}
    assert len(list(ml.jobs.list(list_view_type=ListViewType.ALL))) == 6
    assert [c["query"]["listViewType"] for c in emulator.journal(path="/jobs")] == ["ActiveOnly", "ArchivedOnly", "All"]


# --- datastores ---------------------------------------------------------------------------------


def test_datastores_list_and_get_never_carry_secrets(emulator: EmulatorClient, credential: Any, ml: Any) -> None:
    stores = {d.name: d for d in ml.datastores.list()}
    assert set(stores) == {"workspaceblobstore", "trainingdata", "curated", "lake"}
    assert stores["trainingdata"].account_name == "stmldemo"
    assert stores["trainingdata"].container_name == "training-data"
    assert stores["lake"].type == "AzureDataLakeGen2"
    assert ml.datastores.get("trainingdata").credentials.account_key is None
    raw = emulator.arm(credential, "GET", f"{DEMO_WORKSPACE_ID}/datastores").json()["value"]
    assert all(set(d["properties"]["credentials"].get("secrets", {})) <= {"secretsType"} for d in raw)


def test_get_with_secrets_calls_list_secrets_per_credential_type(emulator: EmulatorClient, ml: Any) -> None:
    account_key = ml.datastores.get("trainingdata", include_secrets=True).credentials.account_key
    stmldemo = next(a for a in emulator.state()["storage"]["accounts"] if a["name"] == "stmldemo")
    assert account_key == stmldemo["keys"]["key1"]
    assert ml.datastores.get("curated", include_secrets=True).credentials.sas_token.startswith("sv=")
    assert ml.datastores.get("lake", include_secrets=True).credentials.client_secret
    calls = emulator.journal(method="POST", path="/listSecrets")
    assert [c["path"].split("/")[-2] for c in calls] == ["trainingdata", "curated", "lake"]
    assert calls[0]["body"] == {"expirableSecret": True, "expireAfterHours": 1}


def test_put_with_a_stale_account_key_is_refused_unless_validation_is_skipped(emulator: EmulatorClient, credential: Any) -> None:
    body = {"properties": {
        "datastoreType": "AzureBlob", "accountName": "stmldemo", "containerName": "training-data",
        "endpoint": "core.windows.net", "protocol": "https",
        "credentials": {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": "bm90IGEga2V5"}},
    }}
    path = f"{DEMO_WORKSPACE_ID}/datastores/trainingdata"
    refused = emulator.arm(credential, "PUT", path, body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "UserError"
    assert _datastore(emulator, "trainingdata")["keyValid"] is True
    from azure.core.rest import HttpRequest

    with emulator.arm_client(credential) as client:
        skipped = client.send_request(HttpRequest("PUT", f"{emulator.url}{path}", params={"api-version": "2025-09-01", "skipValidation": "true"}, json=body))
    assert skipped.status_code == 200
    assert "key" not in skipped.json()["properties"]["credentials"]["secrets"]
    assert _datastore(emulator, "trainingdata")["keyValid"] is False

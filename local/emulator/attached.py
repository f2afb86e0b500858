"""Computes the autopilot lists but never changes: their ``properties`` as ARM returns them.

Shapes follow azure-rest-api-specs (Microsoft.MachineLearningServices, Compute examples and the
definitions of AKS, Kubernetes, VirtualMachine, HDInsight, Databricks, SynapseSpark, DataFactory and
DataLakeAnalytics). Secrets those types hold (a VM's or cluster's admin password, a Databricks
access token) are write-only in ARM and never served here either. A ``type`` the emulator does not
know keeps the scenario's ``properties`` as given: a future compute type.

Scenario form (in a workspace's ``computes``): ``{"name", "type", "size", "nodes", "resourceId",
"properties"}``; ``size`` and ``nodes`` fill the type's own fields (``agentVmSize``/``agentCount``,
``virtualMachineSize``, ``nodeSize``/``nodeCount``).
"""

from __future__ import annotations

from typing import Any

ATTACHED_TYPES = ("Kubernetes", "AKS", "VirtualMachine", "HDInsight", "Databricks", "SynapseSpark", "DataFactory",
                  "DataLakeAnalytics")


def _rg(ws: Any) -> str:
    return f"/subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}/providers"


def inner_properties(kind: str, spec: dict[str, Any], ws: Any) -> dict[str, Any]:
    """``properties.properties`` of a compute of this type, as the REST examples show it."""
    name = str(spec["name"])
    size, nodes = spec.get("size"), spec.get("nodes")
    given = dict(spec.get("properties") or {})
    if kind == "AKS":
        base = {"agentCount": int(nodes or 3), "agentVmSize": str(size or "Standard_D3_v2"), "clusterPurpose": "FastProd",
                "clusterFqdn": f"{name}-dns.hcp.{ws.location}.azmk8s.io", "loadBalancerType": "PublicIp", "systemServices": []}
    elif kind == "Kubernetes":
        cpu = str(spec.get("cpu") or "1")
        base = {"relayConnectionString": None, "serviceBusConnectionString": None, "extensionPrincipalId": None,
                "extensionInstanceReleaseTrain": "stable", "vcName": None, "namespace": "default",
                "defaultInstanceType": "defaultInstanceType",
                "instanceTypes": {"defaultInstanceType": {"nodeSelector": None, "resources": {
                    "requests": {"cpu": cpu, "memory": "4Gi", "nvidia.com/gpu": None},
                    "limits": {"cpu": cpu, "memory": "4Gi", "nvidia.com/gpu": None}}}}}
    elif kind == "VirtualMachine":
        base = {"virtualMachineSize": str(size or "Standard_DS3_v2"), "sshPort": 22, "address": "10.0.2.4",
                "administratorAccount": {"username": "azureuser"}, "isNotebookInstanceCompute": False}
    elif kind == "HDInsight":
        base = {"sshPort": 22, "address": f"{name}-ssh.azurehdinsight.net", "administratorAccount": {"username": "sshuser"}}
    elif kind == "Databricks":
        base = {"workspaceUrl": f"https://adb-{abs(hash(name)) % 10**16}.azuredatabricks.net"}
    elif kind == "SynapseSpark":
        base = {"autoScaleProperties": {"minNodeCount": 3, "enabled": True, "maxNodeCount": 10},
                "autoPauseProperties": {"delayInMinutes": 15, "enabled": True}, "sparkVersion": "3.4",
                "nodeCount": int(nodes or 3), "nodeSize": str(size or "Medium"), "nodeSizeFamily": "MemoryOptimized",
                "subscriptionId": ws.subscription, "resourceGroup": ws.resource_group, "workspaceName": f"syn-{ws.name}",
                "poolName": name}
    elif kind == "DataLakeAnalytics":
        base = {"dataLakeStoreAccountName": f"adls{name.replace('-', '')}"[:24].lower()}
    elif kind == "DataFactory":
        return given  # DataFactory has no type-specific properties
    else:
        return given
    return {**base, **given}


def outer_fields(kind: str, spec: dict[str, Any], ws: Any) -> dict[str, Any]:
    """``properties.resourceId`` (the underlying resource) and ``isAttachedCompute`` of a compute of this type."""
    name = str(spec["name"])
    resources = {
        "AKS": f"{_rg(ws)}/Microsoft.ContainerService/managedClusters/{name}",
        "Kubernetes": f"{_rg(ws)}/Microsoft.Kubernetes/connectedClusters/{name}",
        "VirtualMachine": f"{_rg(ws)}/Microsoft.Compute/virtualMachines/{name}",
        "HDInsight": f"{_rg(ws)}/Microsoft.HDInsight/clusters/{name}",
        "Databricks": f"{_rg(ws)}/Microsoft.Databricks/workspaces/{name}",
        "SynapseSpark": f"{_rg(ws)}/Microsoft.Synapse/workspaces/syn-{ws.name}/bigDataPools/{name}",
        "DataFactory": f"{_rg(ws)}/Microsoft.DataFactory/factories/{name}",
        "DataLakeAnalytics": f"{_rg(ws)}/Microsoft.DataLakeAnalytics/accounts/{name}",
    }
    return {"resourceId": spec.get("resourceId") or resources.get(kind),
            "isAttachedCompute": bool(spec.get("attached", kind != "AKS"))}

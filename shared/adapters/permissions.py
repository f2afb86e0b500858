"""Every request the adapters send, mapped to the Azure RBAC action that authorizes it, and where it is granted.

One table, ``ROUTES``: (service, method, path pattern) → ``Grant`` (the action, the scope it is
granted at, whether it is a data action, why the app needs it). ``action_for`` looks a request up;
a request that is not in the table raises ``Unmapped`` rather than passing silently, so a new
call cannot reach Azure without its permission being written down here — and, through the
permissions test, granted in ``infra/``.

Services, and the host each one is in Azure:

- ``arm``: Azure Resource Manager, ``management.azure.com`` (AML workspaces, computes, jobs,
  datastores, quotas, long-running-operation polls; storage account keys).
- ``monitor``: the Azure Monitor metrics data plane, ``{region}.metrics.monitor.azure.com``
  (``POST /subscriptions/{id}/metrics:getBatch``).
- ``runhistory``: AML's run history data plane, ``{region}.api.azureml.ms`` (the workspace's
  ``discoveryUrl`` names it): the runs on one compute, and the discovery document.
- ``keyvault``: the Key Vault data plane, ``{vault}.vault.azure.net`` (paths without the host).
- ``identity``: the managed-identity token endpoint (``IDENTITY_ENDPOINT``): no RBAC action.
- ``notify``: the notification sinks (a webhook URL, an Event Grid topic authenticated with its
  key): no RBAC action.

Action names are Microsoft's, as published in "Azure permissions for AI + machine learning"
(Microsoft.MachineLearningServices), "Azure permissions for Storage" (Microsoft.Storage),
"Azure permissions for Monitor" (Microsoft.Insights) and "Azure permissions for Security"
(Microsoft.KeyVault data actions). Paths are those of azure-rest-api-specs (machinelearningservices
2025-12-01, storage, monitor metrics batch 2024-02-01, keyvault secrets 7.x). Azure compares
action names and ARM paths without regard to case; so does this table.

Key Vault answers a first, token-less request with a 401 challenge; that request is the same
operation as its authenticated retry and maps to the same action (it is granted nothing itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache


class Scope(StrEnum):
    """Where a grant is assigned: the narrowest scope at which Azure authorizes the action."""

    WORKSPACE = "workspace"  # each allowed AML workspace
    SUBSCRIPTION = "subscription"  # subscription-level resources (locations/...) and endpoints
    STORAGE_ACCOUNT = "storage account"  # each storage account whose keys are rotated
    VAULT = "vault"  # each allowed Key Vault


@dataclass(frozen=True)
class Grant:
    action: str
    scope: Scope
    reason: str
    data_action: bool = False  # a data action (dataActions in a role), not a control-plane action


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    pattern: str  # a path with {placeholders}, each matching one path segment
    grant: Grant


class Unmapped(LookupError):
    """A request the table does not know: its permission is not written down (nor, then, granted)."""


ML = "Microsoft.MachineLearningServices"
WS = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
LOCATION = "/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/{region}"
ACCOUNT = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}"


def _g(action: str, scope: Scope, reason: str, data_action: bool = False) -> Grant:
    return Grant(action, scope, reason, data_action)


WORKSPACE_READ = _g(f"{ML}/workspaces/read", Scope.WORKSPACE, "the workspace's region, which the metrics endpoint follows")
COMPUTES_READ = _g(f"{ML}/workspaces/computes/read", Scope.WORKSPACE,
                   "list instances and clusters, and re-read one right before acting on it")
COMPUTES_WRITE = _g(f"{ML}/workspaces/computes/write", Scope.WORKSPACE,
                    "PATCH a cluster's scale settings (scale to min 0, recycle, restore)")
COMPUTES_STOP = _g(f"{ML}/workspaces/computes/stop/action", Scope.WORKSPACE, "stop an idle compute instance")
IDLE_SHUTDOWN = _g(f"{ML}/workspaces/computes/updateIdleShutdownSetting/action", Scope.WORKSPACE,
                   "set AML's own idle shutdown on an instance that lacks it or has a longer one")
JOBS_READ = _g(f"{ML}/workspaces/jobs/read", Scope.WORKSPACE, "never act on a compute with an active or queued job")
RUNS_READ = _g(f"{ML}/workspaces/experiments/runs/read", Scope.WORKSPACE,
               "the jobs active or just ended on one compute, from run history (never act on a compute with one active)")
DATASTORES_READ = _g(f"{ML}/workspaces/datastores/read", Scope.WORKSPACE,
                     "find the account-key datastores on a rotated storage account")
DATASTORES_WRITE = _g(f"{ML}/workspaces/datastores/write", Scope.WORKSPACE, "point an account-key datastore at the new key")
DATASTORES_SECRETS = _g(f"{ML}/workspaces/datastores/listsecrets/action", Scope.WORKSPACE,
                        "which key a datastore holds, before and after a rotation")
RESYNC_KEYS = _g(f"{ML}/workspaces/resynckeys/action", Scope.WORKSPACE, "make the workspace pick the new key up now")
ENDPOINTS_READ = _g(f"{ML}/workspaces/onlineEndpoints/read", Scope.WORKSPACE,
                    "list online endpoints and re-read one's traffic and mirror traffic before deleting a deployment")
DEPLOYMENTS_READ = _g(f"{ML}/workspaces/onlineEndpoints/deployments/read", Scope.WORKSPACE,
                      "find failed deployments, and re-read one before and after its delete")
DEPLOYMENTS_DELETE = _g(f"{ML}/workspaces/onlineEndpoints/deployments/delete", Scope.WORKSPACE,
                        "delete a failed deployment with no traffic after its grace period (releases its quota)")
DEPLOYMENT_LOGS = _g(f"{ML}/workspaces/onlineEndpoints/deployments/getLogs/action", Scope.WORKSPACE,
                     "the tail of a failed deployment's inference server log: why it failed")
JOBS_CANCEL = _g(f"{ML}/workspaces/jobs/cancel/action", Scope.WORKSPACE,
                 "cancel a job not responding past NOT_RESPONDING_CANCEL_MINUTES (opt-in)")
MFE_OPERATION = _g(f"{ML}/locations/mfeOperationsStatus/read", Scope.SUBSCRIPTION,
                   "poll a deployment delete until it is done (its Azure-AsyncOperation)")
MFE_RESULT = _g(f"{ML}/locations/mfeOperationResults/read", Scope.SUBSCRIPTION,
                "poll a job cancel until it is done (its Location: the cancel answers with no Azure-AsyncOperation)")
USAGES = _g(f"{ML}/locations/usages/read", Scope.SUBSCRIPTION, "quota usage per VM family (quota relief)")
VM_SIZES = _g(f"{ML}/locations/vmsizes/read", Scope.SUBSCRIPTION, "each VM size's family and vCPUs (quota relief)")
COMPUTE_OPERATION = _g(f"{ML}/locations/computeoperationsstatus/read", Scope.SUBSCRIPTION,
                       "poll a stop or a cluster PATCH until it is done")
WORKSPACE_OPERATION = _g(f"{ML}/locations/workspaceOperationsStatus/read", Scope.SUBSCRIPTION,
                         "poll a key resync until it is done")
METRICS = _g("Microsoft.Insights/metrics/read", Scope.SUBSCRIPTION,
             "instance CPU activity through metrics:getBatch, a subscription-level API")
LIST_KEYS = _g("Microsoft.Storage/storageAccounts/listkeys/action", Scope.STORAGE_ACCOUNT,
               "which key is in use, and the new key's value")
REGENERATE_KEY = _g("Microsoft.Storage/storageAccounts/regeneratekey/action", Scope.STORAGE_ACCOUNT,
                    "regenerate the key not in use")
SECRET_METADATA = _g("Microsoft.KeyVault/vaults/secrets/readMetadata/action", Scope.VAULT,
                     "list the managed credentials (tags and expiry, no values)", data_action=True)
SECRET_GET = _g("Microsoft.KeyVault/vaults/secrets/getSecret/action", Scope.VAULT,
                "read a managed credential: which key it holds", data_action=True)
SECRET_SET = _g("Microsoft.KeyVault/vaults/secrets/setSecret/action", Scope.VAULT,
                "write the credential's new version", data_action=True)

ROUTES: tuple[Route, ...] = (
    # --- AML workspace (ARM) ----------------------------------------------------------------------
    Route("arm", "GET", WS, WORKSPACE_READ),
    Route("arm", "GET", WS + "/computes", COMPUTES_READ),
    Route("arm", "GET", WS + "/computes/{compute}", COMPUTES_READ),
    Route("arm", "PATCH", WS + "/computes/{compute}", COMPUTES_WRITE),
    Route("arm", "POST", WS + "/computes/{compute}/stop", COMPUTES_STOP),
    Route("arm", "POST", WS + "/computes/{compute}/updateIdleShutdownSetting", IDLE_SHUTDOWN),
    Route("arm", "GET", WS + "/jobs", JOBS_READ),
    Route("arm", "GET", WS + "/jobs/{job}", JOBS_READ),
    Route("runhistory", "GET", "/history/v1.0" + WS + "/computes/{compute}/runs", RUNS_READ),  # AML's run history data plane
    Route("arm", "POST", WS + "/jobs/{job}/cancel", JOBS_CANCEL),
    Route("arm", "GET", WS + "/onlineEndpoints", ENDPOINTS_READ),
    Route("arm", "GET", WS + "/onlineEndpoints/{endpoint}", ENDPOINTS_READ),
    Route("arm", "GET", WS + "/onlineEndpoints/{endpoint}/deployments", DEPLOYMENTS_READ),
    Route("arm", "GET", WS + "/onlineEndpoints/{endpoint}/deployments/{deployment}", DEPLOYMENTS_READ),
    Route("arm", "DELETE", WS + "/onlineEndpoints/{endpoint}/deployments/{deployment}", DEPLOYMENTS_DELETE),
    Route("arm", "POST", WS + "/onlineEndpoints/{endpoint}/deployments/{deployment}/getLogs", DEPLOYMENT_LOGS),
    Route("arm", "GET", WS + "/datastores", DATASTORES_READ),
    Route("arm", "PUT", WS + "/datastores/{datastore}", DATASTORES_WRITE),
    Route("arm", "POST", WS + "/datastores/{datastore}/listSecrets", DATASTORES_SECRETS),
    Route("arm", "POST", WS + "/resyncKeys", RESYNC_KEYS),
    # --- AML subscription-level resources: quotas, sizes, long-running-operation monitors ----------
    Route("arm", "GET", LOCATION + "/usages", USAGES),
    Route("arm", "GET", LOCATION + "/vmSizes", VM_SIZES),
    Route("arm", "GET", LOCATION + "/computeOperationsStatus/{operation}", COMPUTE_OPERATION),
    Route("arm", "GET", LOCATION + "/workspaceOperationsStatus/{operation}", WORKSPACE_OPERATION),
    Route("arm", "GET", LOCATION + "/mfeOperationsStatus/{operation}", MFE_OPERATION),
    Route("arm", "GET", LOCATION + "/mfeOperationResults/{operation}", MFE_RESULT),
    # --- storage account keys (ARM) ---------------------------------------------------------------
    Route("arm", "POST", ACCOUNT + "/listKeys", LIST_KEYS),
    Route("arm", "POST", ACCOUNT + "/regenerateKey", REGENERATE_KEY),
    # --- Azure Monitor metrics data plane ---------------------------------------------------------
    Route("monitor", "POST", "/subscriptions/{subscription}/metrics:getBatch", METRICS),
    # --- Key Vault data plane ---------------------------------------------------------------------
    Route("keyvault", "GET", "/secrets", SECRET_METADATA),
    Route("keyvault", "GET", "/secrets/{secret}", SECRET_GET),
    Route("keyvault", "PUT", "/secrets/{secret}", SECRET_SET),
)

# Services whose requests need no Azure RBAC action, and why.
NO_ACTION: dict[str, str] = {
    "identity": "a token request to the managed-identity endpoint: it proves who the app is, it is not an operation on a resource",
    "notify": "a notification: an outgoing webhook, or an Event Grid topic authenticated with its access key",
}


# ARM requests that need no RBAC action of their own, and why.
NO_ACTION_ROUTES: dict[tuple[str, str, str], str] = {
    ("runhistory", "GET", "/discovery"):
        "AML's discovery document (which host serves the workspace's run history): public, read without a token",
    ("arm", "POST", "/providers/microsoft.resourcegraph/resources"):
        "a Resource Graph query (discovery): it answers with the resources the identity may already read, so "
        f"{ML}/workspaces/read at a scope is what makes that scope's workspaces discoverable",
}


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", pattern)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body + "/?", re.IGNORECASE)


@cache
def _compiled() -> tuple[tuple[Route, re.Pattern[str]], ...]:
    return tuple((route, _regex(route.pattern)) for route in ROUTES)


def route_for(service: str, method: str, path: str) -> Route | None:
    """The route of a request (None: its service needs no RBAC action); ``Unmapped`` when the table lacks it."""
    bare = path.split("?", 1)[0]
    if service in NO_ACTION or (service, method.upper(), bare.rstrip("/").lower()) in NO_ACTION_ROUTES:
        return None
    for route, regex in _compiled():
        if route.service == service and route.method == method.upper() and regex.fullmatch(bare):
            return route
    raise Unmapped(f"{service} {method.upper()} {bare}: no RBAC action mapped in shared/adapters/permissions.py")


def grant_for(service: str, method: str, path: str) -> Grant | None:
    """The grant a request needs (None: it needs no RBAC action); ``Unmapped`` when the table lacks it."""
    route = route_for(service, method, path)
    return None if route is None else route.grant


def action_for(service: str, method: str, path: str) -> str | None:
    """The RBAC action a request needs; None for a token request or a notification; ``Unmapped`` otherwise."""
    grant = grant_for(service, method, path)
    return None if grant is None else grant.action


def grants() -> dict[str, Grant]:
    """Every grant of the table, by action (one scope per action)."""
    return {route.grant.action: route.grant for route in ROUTES}

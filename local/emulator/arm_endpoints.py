"""Microsoft.MachineLearningServices online endpoints, online deployments and job cancel.

Bodies follow the azure-rest-api-specs examples (OnlineEndpoint/get, OnlineDeployment/get, list,
delete, getLogs; Job/cancel). Routes, relative to
``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}``
(the workspace must exist in the ML service, else 404):

- ``GET onlineEndpoints``, ``GET onlineEndpoints/{ep}``: ``properties.traffic`` and
  ``properties.mirrorTraffic`` (deployment name → percent), ``endpointComputeType``.
- ``GET onlineEndpoints/{ep}/deployments``, ``GET onlineEndpoints/{ep}/deployments/{d}``:
  ``properties.provisioningState``, ``instanceType``, ``endpointComputeType`` (Managed or
  Kubernetes), ``sku.capacity`` (the instance count), ``systemData.createdBy``.
- ``DELETE onlineEndpoints/{ep}/deployments/{d}``: 202 with ``Azure-AsyncOperation`` and
  ``Location`` (``locations/{loc}/mfeOperationsStatus/{id}``); the deployment is ``Deleting`` until
  the operation ends, then gone (a failed operation restores its state). As AML does, a deployment
  the endpoint still sends traffic or mirror traffic to is refused with 400 and left as it is; an
  unknown one is 204.
- ``POST onlineEndpoints/{ep}/deployments/{d}/getLogs`` ``{"containerType": "InferenceServer" |
  "StorageInitializer", "tail": N}`` → ``{"content": "<the last N lines>"}``.
- ``POST jobs/{id}/cancel``: 202 with ``Location`` (the operation, location mode); the job is
  ``CancelRequested`` until the operation ends, then ``Canceled``. A job already in a terminal
  state answers 200 and is left as it is.

Scenario form, in a workspace: ``"onlineEndpoints": [{"name", "computeType", "traffic": {d: pct},
"mirrorTraffic": {d: pct}, "createdBy", "deployments": [{"name", "state", "instanceType",
"instanceCount", "computeType", "createdBy", "tags", "logs": "text", "storageLogs": "text"}]}]``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from local.emulator import arm_ml, lro, wire
from local.httpwire import Request, Response

PROVIDER = arm_ml.PROVIDER
ENDPOINT_TYPE = f"{PROVIDER}/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = f"{PROVIDER}/workspaces/onlineEndpoints/deployments"
CONTAINERS = {"inferenceserver": "logs", "storageinitializer": "storageLogs"}
_TERMINAL_JOB = {"completed", "failed", "canceled"}


@dataclass
class Endpoint:
    body: dict[str, Any]
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> ARM body
    logs: dict[str, dict[str, str]] = field(default_factory=dict)  # lower name -> {"logs", "storageLogs"}


class EndpointService:
    """Online endpoints of the emulated workspaces (the workspaces themselves live in the ML service)."""

    name = "endpoints"

    def __init__(self, ml: arm_ml.MLService) -> None:
        self.ml = ml
        self._endpoints: dict[str, dict[str, Endpoint]] = {}  # lower workspace id -> lower endpoint name -> endpoint

    # --- protocol -------------------------------------------------------------------------

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        self._endpoints.clear()
        subscription = str(scenario.get("subscriptionId") or arm_ml.DEFAULT_SUBSCRIPTION)
        for spec in scenario.get("workspaces") or []:
            ws_id = (f"/subscriptions/{subscription}/resourceGroups/{spec['resourceGroup']}/providers/{PROVIDER}"
                     f"/workspaces/{spec['name']}")
            location = str(spec.get("location") or "westeurope")
            for ep in spec.get("onlineEndpoints") or []:
                self._seed_endpoint(ws_id, location, ep, now)

    def state(self) -> dict[str, Any]:
        return {
            ws_id: {name: {"traffic": ep.body["properties"]["traffic"], "mirrorTraffic": ep.body["properties"]["mirrorTraffic"],
                           "deployments": {d["name"]: d["properties"]["provisioningState"] for d in ep.deployments.values()}}
                    for name, ep in endpoints.items()}
            for ws_id, endpoints in self._endpoints.items()
        }

    def handle(self, req: Request) -> Response | None:
        for pattern, methods, handler in self._routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            refused = lro.guard(req)
            if refused is not None:
                return refused
            args = match.groupdict()
            ws = self.ml.workspace_by_id(
                f"/subscriptions/{args['sub']}/resourceGroups/{args['rg']}/providers/{PROVIDER}/workspaces/{args['ws']}")
            if ws is None:
                return wire.not_found(f"{PROVIDER}/workspaces", args["ws"])
            if req.method not in methods:
                return wire.arm_error(405, "MethodNotAllowed", f"The method {req.method} is not allowed on {req.path}.")
            now = self.ml.clock()
            self.ml.operations.settle(now)
            return handler(self, req, ws, args, now)
        return None

    # --- seeding --------------------------------------------------------------------------

    def _seed_endpoint(self, ws_id: str, location: str, spec: dict[str, Any], now: datetime) -> None:
        name = str(spec["name"])
        created = wire.resolve_time(spec.get("createdAt"), now) or now - timedelta(days=7)
        user = str(spec.get("createdBy") or "alice@contoso.com")
        body = {
            "id": f"{ws_id}/onlineEndpoints/{name}",
            "name": name,
            "type": ENDPOINT_TYPE,
            "location": location,
            "kind": "Managed",
            "tags": dict(spec.get("tags") or {}),
            "identity": {"type": "SystemAssigned", "principalId": wire.PRINCIPAL_ID, "tenantId": wire.TENANT_ID},
            "systemData": lro.system_data(created, user),
            "properties": {
                "description": spec.get("description"),
                "properties": {},
                "scoringUri": f"https://{name}.{location}.inference.ml.azure.com/score",
                "swaggerUri": f"https://{name}.{location}.inference.ml.azure.com/swagger.json",
                "authMode": str(spec.get("authMode") or "Key"),
                "provisioningState": str(spec.get("state") or "Succeeded"),
                "endpointComputeType": str(spec.get("computeType") or "Managed"),
                "compute": spec.get("compute"),
                "publicNetworkAccess": "Enabled",
                "traffic": {str(k): int(v) for k, v in (spec.get("traffic") or {}).items()},
                "mirrorTraffic": {str(k): int(v) for k, v in (spec.get("mirrorTraffic") or {}).items()},
            },
        }
        endpoint = Endpoint(body)
        for dep in spec.get("deployments") or []:
            dname = str(dep["name"])
            dcreated = wire.resolve_time(dep.get("createdAt"), now) or created
            kind = str(dep.get("computeType") or body["properties"]["endpointComputeType"])
            endpoint.deployments[dname.lower()] = {
                "id": f"{body['id']}/deployments/{dname}",
                "name": dname,
                "type": DEPLOYMENT_TYPE,
                "location": location,
                "kind": kind,
                "tags": dict(dep.get("tags") or {}),
                "systemData": lro.system_data(dcreated, str(dep.get("createdBy") or user),
                                              wire.resolve_time(dep.get("modifiedAt"), now) or dcreated),
                "sku": {"name": "Default", "tier": "Standard", "capacity": int(dep.get("instanceCount") or 1)},
                "properties": {
                    "description": dep.get("description"),
                    "properties": {},
                    "codeConfiguration": {"codeId": f"{ws_id}/codes/score/versions/1", "scoringScript": "score.py"},
                    "environmentId": "azureml://registries/azureml/environments/minimal-py311-inference/versions/1",
                    "environmentVariables": {},
                    "scaleSettings": {"scaleType": "Default"},
                    "requestSettings": {"maxQueueWait": "PT0.5S", "requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1},
                    "appInsightsEnabled": False,
                    "livenessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S", "initialDelay": "PT10S"},
                    "readinessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S", "initialDelay": "PT10S"},
                    "provisioningState": str(dep.get("state") or "Succeeded"),
                    "instanceType": str(dep.get("instanceType") or "Standard_DS3_v2"),
                    "model": str(dep.get("model") or f"{ws_id}/models/model/versions/1"),
                    "endpointComputeType": kind,
                    "egressPublicNetworkAccess": "Enabled",
                },
            }
            endpoint.logs[dname.lower()] = {"logs": str(dep.get("logs") or ""), "storageLogs": str(dep.get("storageLogs") or "")}
        self._endpoints.setdefault(ws_id.lower(), {})[name.lower()] = endpoint

    # --- route handlers ---------------------------------------------------------------------

    def _endpoint(self, ws: arm_ml.Workspace, name: str) -> Endpoint | Response:
        found = self._endpoints.get(ws.id.lower(), {}).get(name.lower())
        return found if found is not None else wire.not_found(ENDPOINT_TYPE, name)

    def _h_endpoints(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        listed = [copy.deepcopy(e.body) for e in self._endpoints.get(ws.id.lower(), {}).values()]
        return Response(200, {"value": listed, "nextLink": None})

    def _h_endpoint(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        endpoint = self._endpoint(ws, args["ep"])
        return endpoint if isinstance(endpoint, Response) else Response(200, copy.deepcopy(endpoint.body))

    def _h_deployments(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        endpoint = self._endpoint(ws, args["ep"])
        if isinstance(endpoint, Response):
            return endpoint
        return Response(200, {"value": [copy.deepcopy(d) for d in endpoint.deployments.values()], "nextLink": None})

    def _h_deployment(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        endpoint = self._endpoint(ws, args["ep"])
        if isinstance(endpoint, Response):
            return endpoint
        name = args["d"].lower()
        body = endpoint.deployments.get(name)
        if body is None:
            return Response(204, None) if req.method == "DELETE" else wire.not_found(DEPLOYMENT_TYPE, args["d"])
        if req.method == "GET":
            return Response(200, copy.deepcopy(body))
        return self._delete(req, ws, endpoint, body, now)

    def _delete(self, req: Request, ws: arm_ml.Workspace, endpoint: Endpoint, body: dict[str, Any], now: datetime) -> Response:
        props = endpoint.body["properties"]
        share = {split: sum(v for k, v in props[split].items() if k.lower() == body["name"].lower()) for split in ("traffic", "mirrorTraffic")}
        if share["traffic"] or share["mirrorTraffic"]:
            return wire.arm_error(400, "BadRequest", f"Deployment '{body['name']}' cannot be deleted: endpoint '{endpoint.body['name']}' "
                                                     f"sends it {share['traffic']}% of traffic and {share['mirrorTraffic']}% of mirror traffic.")
        if self.ml.operations.pending(body["id"]):
            return wire.arm_error(409, "Conflict", f"Another operation is in progress on deployment '{body['name']}'.")
        previous = body["properties"]["provisioningState"]
        body["properties"]["provisioningState"] = "Deleting"
        lro.touch(body, now)

        def done(succeeded: bool, at: datetime) -> None:
            if succeeded:
                endpoint.deployments.pop(body["name"].lower(), None)
                endpoint.logs.pop(body["name"].lower(), None)
            else:
                body["properties"]["provisioningState"] = previous

        op = self.ml.operations.start(req, kind="mfe", name="Delete", target=body["id"], subscription=ws.subscription,
                                      location=ws.location, now=now, on_done=done)
        return Response(202, None, self.ml.operations.headers(op, req))

    def _h_logs(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        endpoint = self._endpoint(ws, args["ep"])
        if isinstance(endpoint, Response):
            return endpoint
        if args["d"].lower() not in endpoint.deployments:
            return wire.not_found(DEPLOYMENT_TYPE, args["d"])
        try:
            sent = req.json()
        except ValueError:
            sent = None
        if not isinstance(sent, dict):
            return wire.arm_error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        container = CONTAINERS.get(str(sent.get("containerType") or "InferenceServer").lower())
        tail = sent.get("tail")
        if container is None or (tail is not None and (not isinstance(tail, int) or isinstance(tail, bool) or tail < 0)):
            return wire.arm_error(400, "BadRequest", "containerType must be InferenceServer or StorageInitializer, tail a whole number >= 0.")
        lines = endpoint.logs.get(args["d"].lower(), {}).get(container, "").splitlines()
        shown = lines if not tail else lines[-tail:]
        return Response(200, {"content": "\n".join(shown)})

    def _h_cancel(self, req: Request, ws: arm_ml.Workspace, args: dict[str, str], now: datetime) -> Response:
        job = next((j for name, j in ws.jobs.items() if name.lower() == args["job"].lower()), None)
        if job is None:
            return wire.not_found(f"{PROVIDER}/workspaces/jobs", args["job"])
        props = job["properties"]
        if props["status"].lower() in _TERMINAL_JOB:
            return Response(200, None)
        props["status"] = "CancelRequested"
        lro.touch(job, now)

        def done(succeeded: bool, at: datetime) -> None:
            props["status"] = "Canceled" if succeeded else "NotResponding"
            job["systemData"]["lastModifiedAt"] = wire.iso(at)

        op = self.ml.operations.start(req, kind="mfe", name="Cancel", target=job["id"], subscription=ws.subscription,
                                      location=ws.location, now=now, on_done=done)
        location = self.ml.operations.headers(op, req)["Location"]
        return Response(202, None, {"Location": location, "Retry-After": "0"})

    _WS = rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{re.escape(PROVIDER)}/workspaces/(?P<ws>[^/]+)"
    _EP = _WS + r"/onlineEndpoints/(?P<ep>[^/]+)"
    _routes: ClassVar[list[tuple[re.Pattern[str], tuple[str, ...], Callable[..., Response]]]] = [
        (re.compile(rf"{_WS}/onlineEndpoints/?$", re.I), ("GET",), _h_endpoints),
        (re.compile(rf"{_EP}/?$", re.I), ("GET",), _h_endpoint),
        (re.compile(rf"{_EP}/deployments/?$", re.I), ("GET",), _h_deployments),
        (re.compile(rf"{_EP}/deployments/(?P<d>[^/]+)/?$", re.I), ("GET", "DELETE"), _h_deployment),
        (re.compile(rf"{_EP}/deployments/(?P<d>[^/]+)/getLogs/?$", re.I), ("POST",), _h_logs),
        (re.compile(rf"{_WS}/jobs/(?P<job>[^/]+)/cancel/?$", re.I), ("POST",), _h_cancel),
    ]


SERVICE = EndpointService(arm_ml.SERVICE)

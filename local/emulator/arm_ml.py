"""Microsoft.MachineLearningServices: workspaces, computes, jobs, datastores, usages.

Bodies follow the azure-rest-api-specs examples (stable 2024-10-01 / 2025-09-01); every
api-version gets the same bodies. Routes, relative to
``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces``:

- ``GET {ws}``; ``GET`` (list, also subscription-wide); ``POST {ws}/resyncKeys`` -> 202 + Location,
  and when the operation ends the workspace records ``keysSyncedAt`` and ``keysSyncCount``.
- ``GET {ws}/computes``, ``GET|PUT|PATCH {ws}/computes/{name}``:
  PUT replaces the entity (server-managed fields survive: state, lastOperation, createdBy,
  nodes); PATCH takes ClusterUpdateParameters ``{"properties": {"properties": {"scaleSettings":
  {...}}}}`` (the flatter ``{"properties": {"scaleSettings": {...}}}`` is accepted too), merges
  only the scale settings given, AmlCompute only (409 otherwise), and answers 200 with the
  compute plus ``Azure-AsyncOperation``. The new settings apply at once: idle nodes above the new
  minimum are released and nodes are added up to it (the emulator does not age nodes).
- ``POST {ws}/computes/{name}/start|stop|restart`` (ComputeInstance only): 202 + monitor headers;
  Running -> Stopping -> Stopped, Stopped -> Starting -> Running, Running -> Restarting ->
  Running; ``lastOperation`` = {operationName, operationTime, operationStatus InProgress then
  Succeeded or <Name>Failed, operationTrigger User}. A failed operation restores the previous
  state. Any other transition, or any of these on a cluster, is 409 Conflict.
- ``POST {ws}/computes/{name}/updateIdleShutdownSetting`` ``{"idleTimeBeforeShutdown": "PT30M"}``
  -> 200; 400 unless the compute is an instance and the duration is within PT15M..P3D.
- ``POST {ws}/computes/{name}/listNodes`` -> ``{"nodes": [...], "nextLink": null}``.
- ``GET {ws}/jobs`` (``listViewType`` ActiveOnly by default, ArchivedOnly, All; ``jobType`` only that
  type), newest first, and ``GET {ws}/computes`` are paged like ARM (``paging.py``: page size, absolute
  ``nextLink`` with a ``$skipToken``); ``GET {ws}/jobs/{id}``. A pipeline job seeded with ``steps``
  carries them in ``jobs``, each with its ``computeId``; in run history (``runhistory.py``) each
  step is a child run on its compute once started — the ones listed in ``waiting`` are not yet. ``POST /_emulator/arm/jobs:bulk`` seeds thousands of jobs
  in one call (kept compact, rendered when read).
- ``GET {ws}/datastores``, ``GET|PUT {ws}/datastores/{name}``, ``POST {ws}/datastores/{name}/listSecrets``.
  Secrets are never returned by GET or list. A PUT carrying an account key is validated as AML
  does unless ``skipValidation=true``: when the account is emulated, the key must be one of its
  current keys, else 400 ``UserError``.
- ``GET /subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/usages``:
  ``currentValue`` is derived, never seeded: cores of every instance not Stopped plus every
  present cluster node (preempted excluded), per VM family, from the size table below. Limits
  come from the scenario's optional ``"quotas": {"<location>": {"<family value>": N,
  "totalDedicated": N, "totalLowPriority": N}}``, else 24 per family and 100 in total.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from local.emulator import arm_storage, attached, lro, paging, wire
from local.emulator.arm_storage import StorageService
from local.httpwire import Request, Response

PROVIDER = "Microsoft.MachineLearningServices"
COMPUTE_TYPE = f"{PROVIDER}/workspaces/computes"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# VM size -> (family as usages name it, cores). Only sizes in this table count toward usages.
VM_SIZES: dict[str, tuple[str, int]] = {
    "standard_ds1_v2": ("standardDSv2Family", 1),
    "standard_ds2_v2": ("standardDSv2Family", 2),
    "standard_ds3_v2": ("standardDSv2Family", 4),
    "standard_ds4_v2": ("standardDSv2Family", 8),
    "standard_ds5_v2": ("standardDSv2Family", 16),
    "standard_ds11_v2": ("standardDSv2Family", 2),
    "standard_ds12_v2": ("standardDSv2Family", 4),
    "standard_d2_v3": ("standardDv3Family", 2),
    "standard_d4_v3": ("standardDv3Family", 4),
    "standard_d8_v3": ("standardDv3Family", 8),
    "standard_d2s_v3": ("standardDSv3Family", 2),
    "standard_d4s_v3": ("standardDSv3Family", 4),
    "standard_d8s_v3": ("standardDSv3Family", 8),
    "standard_d4ds_v5": ("standardDDSv5Family", 4),
    "standard_e4s_v3": ("standardESv3Family", 4),
    "standard_e8s_v3": ("standardESv3Family", 8),
    "standard_f4s_v2": ("standardFSv2Family", 4),
    "standard_f8s_v2": ("standardFSv2Family", 8),
    "standard_nc6": ("standardNCFamily", 6),
    "standard_nc12": ("standardNCFamily", 12),
    "standard_nc24": ("standardNCFamily", 24),
    "standard_nc6s_v3": ("standardNCSv3Family", 6),
    "standard_nc12s_v3": ("standardNCSv3Family", 12),
    "standard_nc24s_v3": ("standardNCSv3Family", 24),
    "standard_nc4as_t4_v3": ("standardNCASv3_T4Family", 4),
    "standard_nc8as_t4_v3": ("standardNCASv3_T4Family", 8),
    "standard_nc16as_t4_v3": ("standardNCASv3_T4Family", 16),
    "standard_nd40rs_v2": ("standardNDSv2Family", 40),
    "standard_nv6": ("standardNVFamily", 6),
}
DEFAULT_FAMILY_LIMIT = 24
DEFAULT_TOTAL_LIMIT = 100

# Instance states in which the VM is not allocated, hence holds no quota.
_NOT_HOLDING = {"stopped", "createfailed", "deleting"}
_TRANSITIONS = {  # operation -> (states it may start from, transient state, final state)
    "Start": ({"stopped"}, "Starting", "Running"),
    "Stop": ({"running", "jobrunning"}, "Stopping", "Stopped"),
    "Restart": ({"running", "jobrunning"}, "Restarting", "Running"),
}
_NODE_STATES = ("idle", "running", "preparing", "unusable", "leaving", "preempted")
_JOB_STATUSES = {
    s.lower(): s
    for s in (
        "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
        "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
    )
}
_TERMINAL_JOB = {"completed", "failed", "canceled"}
IDLE_SHUTDOWN_MIN = timedelta(minutes=15)
IDLE_SHUTDOWN_MAX = timedelta(days=3)

def _duration(value: Any) -> timedelta | None:
    try:
        return wire.parse_duration(value)
    except ValueError:
        return None


def family_label(family: str) -> str:
    """'standardDSv2Family' -> 'Standard DSv2 Family', as usages spell it for people."""
    core = family.removeprefix("standard").removesuffix("Family").replace("_", " ")
    return f"Standard {core} Family"


def _rid_tail(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Workspace:
    subscription: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    created: datetime
    created_by: str
    storage_account: str | None
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    computes: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> ARM body
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # lower cluster name -> nodes
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> ARM body
    # Jobs seeded in bulk, kept compact and rendered only when listed or read: name -> BulkJob.
    bulk_jobs: dict[str, BulkJob] = field(default_factory=dict)
    job_order: dict[tuple[bool, ...], list[str]] | None = None  # names newest first, per archive view; None once stale
    # Run history's index: lower compute name -> (created, job name, step or None), newest first; None once stale.
    run_index: dict[str, list[tuple[datetime, str, str | None]]] | None = None
    waiting_steps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pipeline job -> its steps not started yet
    datastores: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> ARM body
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower datastore name -> secrets
    keys_synced_at: datetime | None = None
    keys_sync_count: int = 0

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/workspaces/{self.name}"
        )

    def compute_id(self, name: str) -> str:
        return f"{self.id}/computes/{name}"

    def ordered_jobs(self, archived: frozenset[bool]) -> list[str]:
        """The names of the jobs whose archive flag is in `archived`, newest first: the order ARM lists
        jobs in (bulk-seeded jobs are never archived). Kept until a job is added."""
        if self.job_order is None:
            self.job_order = {}
        view = tuple(sorted(archived))
        if view not in self.job_order:
            order = [(_created(body), name) for name, body in self.jobs.items() if body["properties"]["isArchived"] in archived]
            if False in archived:
                order += [(job.created, name) for name, job in self.bulk_jobs.items()]
            order.sort(reverse=True)
            self.job_order[view] = [name for _, name in order]
        return self.job_order[view]


@dataclass(frozen=True)
class BulkJob:
    """A job seeded in bulk: what its ARM body varies in (the rest is rendered as for any job)."""

    status: str
    compute: str | None
    created: datetime
    ended: datetime | None


def _created(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(body["systemData"]["createdAt"]).replace("Z", "+00:00"))


def _parse_time(value: Any) -> datetime | None:
    return wire.instant(str(value)) if value else None


class MLService:
    """The AML resource provider of one emulated subscription."""

    name = "ml"

    def __init__(self, storage: StorageService, operations: lro.Operations, clock: Callable[[], datetime] = lro.utcnow) -> None:
        self.storage = storage
        self.operations = operations
        self.clock = clock
        self.tenant_id = wire.TENANT_ID
        self.subscription = DEFAULT_SUBSCRIPTION
        self.quotas: dict[str, dict[str, int]] = {}
        self._workspaces: dict[tuple[str, str, str], Workspace] = {}  # (subscription, rg, name), lower-cased
        self.page_size = paging.DEFAULT_PAGE_SIZE

    # --- protocol -------------------------------------------------------------------------

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        self._workspaces.clear()
        self.page_size = int((scenario.get("paging") or {}).get("pageSize", paging.DEFAULT_PAGE_SIZE))
        self.subscription = str(scenario.get("subscriptionId") or DEFAULT_SUBSCRIPTION)
        self.tenant_id = str(scenario.get("tenantId") or wire.TENANT_ID)
        self.quotas = {loc.lower(): dict(q) for loc, q in (scenario.get("quotas") or {}).items()}
        for spec in scenario.get("workspaces") or []:
            ws = Workspace(
                subscription=str(spec.get("subscriptionId") or self.subscription),  # a fleet spans subscriptions
                resource_group=str(spec["resourceGroup"]),
                name=str(spec["name"]),
                location=str(spec.get("location") or "westeurope"),
                tags=dict(spec.get("tags") or {}),
                created=wire.resolve_time(spec.get("createdAt"), now) or now - timedelta(days=90),
                created_by=str(spec.get("createdBy") or "admin@contoso.com"),
                storage_account=spec.get("storageAccount"),
            )
            self._workspaces[(ws.subscription.lower(), ws.resource_group.lower(), ws.name.lower())] = ws
            for compute in spec.get("computes") or []:
                self._upsert_compute_spec(ws, compute, now)
            for job in spec.get("jobs") or []:
                self._upsert_job_spec(ws, job, now)
            for datastore in spec.get("datastores") or []:
                self._upsert_datastore_spec(ws, datastore, now)
            if ws.storage_account is None:
                # The workspace's own account is the one behind its default datastore.
                default = ws.datastores.get("workspaceblobstore")
                ws.storage_account = default["properties"].get("accountName") if default else None

    def state(self) -> dict[str, Any]:
        # Operations past their deadline end now, so the snapshot agrees with what ARM would answer.
        self.operations.settle(self.clock())
        return {
            "subscriptionId": self.subscription,
            "workspaces": [self._workspace_state(ws) for ws in self._workspaces.values()],
            "operations": self.operations.state(),
            "lro": self.operations.config(),
        }

    def handle(self, req: Request) -> Response | None:
        if f"/providers/{PROVIDER.lower()}/" not in req.path.lower() + "/" or req.path.lower().startswith("/history/"):
            return None  # not ARM's (run history's paths name the provider too)
        refused = lro.guard(req)
        if refused is not None:
            return refused
        now = self.clock()
        self.operations.settle(now)
        monitor = self.operations.handle(req, now)
        if monitor is not None:
            return monitor
        for pattern, methods, handler in self._routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            args = match.groupdict()
            ws = None
            if args.get("ws"):
                found = self._workspace(args)
                if isinstance(found, Response):
                    return found
                ws = found
            if methods is not None and req.method not in methods:
                return _not_allowed(req)
            return handler(self, req, ws, args, now)
        return wire.arm_error(404, "NoRegisteredProviderFound", f"No route for {req.method} {req.path} in {PROVIDER}.")

    # --- control-API helpers --------------------------------------------------------------

    def workspaces(self) -> list[Workspace]:
        """Every workspace of every subscription (what Resource Graph indexes)."""
        return list(self._workspaces.values())

    def workspace_by_id(self, resource_id: str) -> Workspace | None:
        for ws in self._workspaces.values():
            if ws.id.lower() == resource_id.rstrip("/").lower():
                return ws
        return None

    def upsert_compute(self, workspace_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        ws = self._require_workspace(workspace_id)
        return copy.deepcopy(self._render_compute(ws, self._upsert_compute_spec(ws, spec, self.clock())))

    def upsert_job(self, workspace_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        ws = self._require_workspace(workspace_id)
        return copy.deepcopy(self._upsert_job_spec(ws, spec, self.clock()))

    def seed_jobs(self, workspace_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Seed ``count`` jobs at once (no control call per job): ``prefix``-000001…, spread evenly
        from ``since`` (default now-365d) to now over ``computes`` in turn; every ``activeEvery``-th
        one is ``activeStatus`` (default Running), the others Completed half an hour after they began."""
        ws = self._require_workspace(workspace_id)
        now = self.clock()
        count = int(spec.get("count") or 0)
        if not 0 < count <= 1_000_000:
            raise ValueError("count must be 1..1000000")
        computes = [str(c) for c in spec.get("computes") or []] or [None]
        every = int(spec.get("activeEvery") or 0)
        active = _JOB_STATUSES.get(str(spec.get("activeStatus") or "Running").lower())
        if active is None or active.lower() in _TERMINAL_JOB:
            raise ValueError(f"activeStatus must be a non-terminal job status, not {spec.get('activeStatus')!r}")
        since = wire.resolve_time(str(spec.get("since") or "now-365d"), now) or now
        step = (now - since) / count
        prefix = str(spec.get("prefix") or "job")
        for i in range(count):
            created = since + step * i
            running = every > 0 and i % every == 0
            # The active ones take the computes in turn too, whatever `activeEvery` and their number.
            compute = computes[(i // every if running else i) % len(computes)]
            ws.bulk_jobs[f"{prefix}-{i:07d}"] = BulkJob(active if running else "Completed", compute, created,
                                                         None if running else created + timedelta(minutes=30))
        ws.job_order = ws.run_index = None
        return {"workspace": ws.id, "jobs": len(ws.jobs) + len(ws.bulk_jobs)}

    def delete_compute(self, compute_id: str) -> bool:
        workspace_id, sep, name = compute_id.rstrip("/").rpartition("/computes/")
        ws = self.workspace_by_id(workspace_id) if sep else None
        if ws is None or ws.computes.pop(name.lower(), None) is None:
            return False
        ws.nodes.pop(name.lower(), None)
        return True

    def _require_workspace(self, workspace_id: str) -> Workspace:
        ws = self.workspace_by_id(workspace_id)
        if ws is None:
            raise KeyError(f"no workspace {workspace_id}")
        return ws

    # --- seeding from the scenario format ---------------------------------------------------

    def _upsert_compute_spec(self, ws: Workspace, spec: dict[str, Any], now: datetime) -> dict[str, Any]:
        name = str(spec["name"])
        kind = str(spec.get("type") or "ComputeInstance")
        created = wire.resolve_time(spec.get("createdAt"), now) or now - timedelta(days=30)
        user = spec.get("createdBy") or {}
        user_name = str(user.get("userName") or "admin@contoso.com")
        user_id = str(user.get("userId") or uuid.uuid5(uuid.NAMESPACE_URL, user_name))
        subnet = spec.get("subnet")
        size = str(spec.get("size") or "Standard_DS3_v2")
        inner: dict[str, Any]
        if kind == "ComputeInstance":
            last = spec.get("lastOperation")
            inner = {
                "vmSize": size,
                "subnet": {"id": subnet} if subnet else None,
                "applicationSharingPolicy": "Personal",
                "sshSettings": {"sshPublicAccess": "Disabled", "adminUserName": "azureuser", "sshPort": 50000},
                "osImageMetadata": {"currentImageVersion": "25.01.01", "latestImageVersion": "25.01.01", "isLatestOsImageVersion": True},
                "computeInstanceAuthorizationType": "personal",
                "personalComputeInstanceSettings": {"assignedUser": {"objectId": user_id, "tenantId": self.tenant_id}},
                "createdBy": {"userName": user_name, "userOrgId": self.tenant_id, "userId": user_id},
                "connectivityEndpoints": {"publicIpAddress": None, "privateIpAddress": f"10.0.0.{4 + len(ws.computes) % 250}"},
                "applications": [
                    {"displayName": app, "endpointUri": f"https://{name}.{ws.location}.instances.azureml.ms/{app.lower()}"}
                    for app in ("Jupyter", "JupyterLab")
                ],
                "errors": None,
                "state": str(spec.get("state") or "Running"),
                "lastOperation": {
                    "operationName": str((last or {}).get("name") or "Create"),
                    "operationTime": wire.iso(wire.resolve_time((last or {}).get("time"), now) or created),
                    "operationStatus": str((last or {}).get("status") or "Succeeded"),
                    "operationTrigger": str((last or {}).get("trigger") or "User"),
                },
                "schedules": {"computeStartStop": []},
                "enableNodePublicIp": False,
                "enableSSO": True,
                "enableRootAccess": True,
                "releaseQuotaOnStop": False,
            }
            if spec.get("idleTimeBeforeShutdown"):
                inner["idleTimeBeforeShutdown"] = str(spec["idleTimeBeforeShutdown"])
        elif kind == "AmlCompute":
            inner = {
                "osType": "Linux",
                "vmSize": size,
                "vmPriority": str(spec.get("priority") or "Dedicated"),
                "virtualMachineImage": None,
                "isolatedNetwork": False,
                "subnet": {"id": subnet} if subnet else None,
                "scaleSettings": {
                    "maxNodeCount": int(spec.get("maxNodes", 4)),
                    "minNodeCount": int(spec.get("minNodes", 0)),
                    "nodeIdleTimeBeforeScaleDown": str(spec.get("idleTimeBeforeScaleDown") or "PT120S"),
                },
                "remoteLoginPortPublicAccess": "NotSpecified",
                "allocationState": "Steady",
                "allocationStateTransitionTime": wire.iso(created),
                "errors": None,
                "enableNodePublicIp": True,
            }
            ws.nodes[name.lower()] = [
                self._new_node(ws, name, i, str(node.get("state") or "idle"), node.get("runId"))
                for i, node in enumerate(spec.get("nodes") or [])
            ]
        else:
            inner = attached.inner_properties(kind, spec, ws)
        body = {
            "id": ws.compute_id(name),
            "name": name,
            "type": COMPUTE_TYPE,
            "location": ws.location,
            "tags": dict(spec.get("tags") or {}),
            "identity": None,
            "systemData": lro.system_data(created, user_name, wire.resolve_time(spec.get("modifiedAt"), now) or created),
            "properties": {
                "computeType": kind,
                "computeLocation": ws.location,
                "description": spec.get("description"),
                "createdOn": wire.iso(created),
                "modifiedOn": wire.iso(created),
                "resourceId": None,
                "provisioningErrors": None,
                "provisioningState": str(spec.get("provisioningState") or "Succeeded"),
                "isAttachedCompute": False,
                "disableLocalAuth": True,
                "properties": inner,
            },
        }
        if kind not in ("ComputeInstance", "AmlCompute"):
            body["properties"].update(attached.outer_fields(kind, spec, ws))
        ws.computes[name.lower()] = body
        return body

    def _new_node(self, ws: Workspace, cluster: str, index: int, state: str, run_id: str | None) -> dict[str, Any]:
        if state.lower() not in _NODE_STATES:
            raise ValueError(f"node state {state!r} is not one of {_NODE_STATES}")
        return {
            "nodeId": f"tvm-{abs(hash((ws.name, cluster))) % 10**10}_{index}-{secrets.token_hex(4)}",
            "privateIpAddress": f"10.0.1.{4 + index}",
            "publicIpAddress": f"20.50.0.{4 + index}",
            "port": 50000 + index,
            "nodeState": state.lower(),
            "runId": run_id,
        }

    def _upsert_job_spec(self, ws: Workspace, spec: dict[str, Any], now: datetime) -> dict[str, Any]:
        name = str(spec["name"])
        status = _JOB_STATUSES.get(str(spec.get("status") or "Running").lower())
        if status is None:
            raise ValueError(f"job status {spec.get('status')!r} is not one of {sorted(_JOB_STATUSES.values())}")
        created = wire.resolve_time(spec.get("createdAt"), now) or now
        ended = wire.resolve_time(spec.get("endedAt"), now)
        if status.lower() in _TERMINAL_JOB and ended is None:
            ended = now
        body = self._job_body(ws, name, status, spec.get("compute"), created, ended, spec)
        ws.jobs[name] = body
        ws.waiting_steps[name] = tuple(str(s) for s in spec.get("waiting") or ())
        ws.bulk_jobs.pop(name, None)
        ws.job_order = ws.run_index = None
        return body

    # --- run history's view of the jobs (local/emulator/runhistory.py) ------------------------

    def _run_index(self, ws: Workspace) -> dict[str, list[tuple[datetime, str, str | None]]]:
        """Where each job ran, by compute: a job on its compute, a pipeline's steps each on its own."""
        if ws.run_index is None:
            index: dict[str, list[tuple[datetime, str, str | None]]] = {}
            for name, body in ws.jobs.items():
                props = body["properties"]
                created = _created(body)
                if props.get("computeId"):
                    index.setdefault(str(props["computeId"]).rsplit("/", 1)[-1].lower(), []).append((created, name, None))
                for step, spec in (props.get("jobs") or {}).items():
                    # A step is a run once it has started; one waiting on the steps before it is none yet.
                    if isinstance(spec, dict) and spec.get("computeId") and step not in ws.waiting_steps.get(name, ()):
                        index.setdefault(str(spec["computeId"]).rsplit("/", 1)[-1].lower(), []).append((created, name, step))
            for name, job in ws.bulk_jobs.items():
                if job.compute:
                    index.setdefault(job.compute.lower(), []).append((job.created, name, None))
            for entries in index.values():
                entries.sort(reverse=True, key=lambda e: (e[0], e[1], e[2] or ""))
            ws.run_index = index
        return ws.run_index

    def runs_on(self, ws: Workspace, compute: str) -> list[tuple[dict[str, Any], Callable[[], dict[str, Any]]]]:
        """The runs whose target is `compute` (any case), newest first: for each, the fields a filter
        reads (times as datetimes) and how to render it as run history's Run object."""
        return [self._run(ws, name, step) for _, name, step in self._run_index(ws).get(compute.lower(), [])]

    def _run(self, ws: Workspace, name: str, step: str | None) -> tuple[dict[str, Any], Callable[[], dict[str, Any]]]:
        body = ws.jobs.get(name)
        if body is None:
            job = ws.bulk_jobs[name]
            status, compute, created, ended, user = job.status, job.compute, job.created, job.ended, "alice@contoso.com"
        else:
            props, system = body["properties"], body["systemData"]
            status, created, user = props["status"], _created(body), system.get("createdBy")
            ended = _parse_time(system.get("lastModifiedAt")) if status.lower() in _TERMINAL_JOB else None
            compute_id = (props.get("jobs") or {}).get(step, {}).get("computeId") if step else props.get("computeId")
            compute = str(compute_id or "").rsplit("/", 1)[-1] or None
        run_id = f"{name}_{step}" if step else name
        fields = {"runId": run_id, "status": status, "target": compute, "runType": "azureml.StepRun" if step else "azureml.scriptrun",
                  "parentRunId": name if step else None, "createdUtc": created, "startTimeUtc": created, "endTimeUtc": ended}

        def render() -> dict[str, Any]:
            return {
                **fields,
                "runUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ws.id}/runs/{run_id}")),
                "rootRunId": name,
                "experimentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ws.id}/experiments/Default")),
                "createdUtc": wire.iso(created),
                "startTimeUtc": wire.iso(created),
                "endTimeUtc": wire.iso(ended),
                "hidden": False,
                "createdBy": {"userObjectId": wire.PRINCIPAL_ID, "userName": user},
                "compute": {"target": compute, "targetType": "AmlCompute", "vmSize": None, "instanceCount": 1},
            }

        return fields, render

    def _render_bulk(self, ws: Workspace, name: str) -> dict[str, Any]:
        job = ws.bulk_jobs[name]
        return self._job_body(ws, name, job.status, job.compute, job.created, job.ended, {})

    def _job_body(self, ws: Workspace, name: str, status: str, compute: Any, created: datetime, ended: datetime | None,
                  spec: dict[str, Any]) -> dict[str, Any]:
        """A job's ARM body (JobBaseResource, CommandJob unless the spec says otherwise)."""
        compute_id = (compute if str(compute).startswith("/") else ws.compute_id(str(compute))) if compute else None
        user = str(spec.get("createdBy") or "alice@contoso.com")
        body = {
            "id": f"{ws.id}/jobs/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/jobs",
            "systemData": lro.system_data(created, user, ended or created),
            "properties": {
                "jobType": str(spec.get("jobType") or "Command"),
                "status": status,
                "displayName": str(spec.get("displayName") or name),
                "experimentName": str(spec.get("experimentName") or "Default"),
                "description": spec.get("description"),
                "tags": dict(spec.get("tags") or {}),
                "properties": {},
                "computeId": compute_id,
                "isArchived": bool(spec.get("archived", False)),
                "command": str(spec.get("command") or "python train.py"),
                "environmentId": "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
                "codeId": None,
                "inputs": {},
                "outputs": {},
                "environmentVariables": {},
                "distribution": None,
                "identity": None,
                "resources": {"instanceCount": int(spec.get("instanceCount") or 1), "instanceType": spec.get("instanceType"), "properties": {}},
                "limits": None,
                "services": {
                    "Studio": {
                        "jobServiceType": "Studio",
                        "endpoint": f"https://ml.azure.com/runs/{name}?wsid={ws.id}",
                    }
                },
            },
        }
        if isinstance(spec.get("steps"), dict):
            # A pipeline's steps, each with the compute it names (PipelineJob ``jobs``).
            body["properties"]["jobs"] = {step: {"type": "command", "computeId": ws.compute_id(str(c)) if c else None}
                                          for step, c in spec["steps"].items()}
        return body

    def _upsert_datastore_spec(self, ws: Workspace, spec: dict[str, Any], now: datetime) -> None:
        name = str(spec["name"])
        kind = str(spec.get("type") or "AzureBlob")
        credential = str(spec.get("credential") or "AccountKey")
        account = str(spec.get("account") or ws.storage_account or "")
        container = str(spec.get("container") or "data")
        creds: dict[str, Any]
        secret: dict[str, Any] = {}
        if credential == "AccountKey":
            # "key": a key name of the account, or "revoked": a key the account no longer has (regenerated elsewhere).
            key_name = str(spec.get("key") or "key1")
            acct = self.storage.find(account)
            creds = {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey"}}
            value = acct.keys[key_name] if acct and key_name in acct.keys else spec.get("keyValue")
            if key_name == "revoked":
                value = base64.b64encode(secrets.token_bytes(64)).decode()
            secret = {"secretsType": "AccountKey", "key": value}
        elif credential == "Sas":
            creds = {"credentialsType": "Sas", "secrets": {"secretsType": "Sas"}}
            secret = {"secretsType": "Sas", "sasToken": f"sv=2022-11-02&ss=b&srt=co&sp=rl&se=2099-01-01&sig={secrets.token_urlsafe(32)}"}
        elif credential == "ServicePrincipal":
            creds = {
                "credentialsType": "ServicePrincipal",
                "authorityUrl": "https://login.microsoftonline.com",
                "resourceUrl": "https://storage.azure.com/",
                "tenantId": self.tenant_id,
                "clientId": str(spec.get("clientId") or uuid.uuid5(uuid.NAMESPACE_URL, f"{ws.id}/{name}")),
                "secrets": {"secretsType": "ServicePrincipal"},
            }
            secret = {"secretsType": "ServicePrincipal", "clientSecret": secrets.token_urlsafe(30)}
        elif credential == "None":
            creds = {"credentialsType": "None"}
        else:
            raise ValueError(f"datastore credential {credential!r} is not AccountKey, Sas, ServicePrincipal or None")
        props: dict[str, Any] = {
            "description": spec.get("description"),
            "tags": dict(spec.get("tags") or {}),
            "properties": {},
            "isDefault": name == "workspaceblobstore",
            "credentials": creds,
            "datastoreType": kind,
            "accountName": account,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "serviceDataAccessAuthIdentity": "None",
        }
        if kind == "AzureBlob":
            props["containerName"] = container
        elif kind == "AzureFile":
            props["fileShareName"] = container
        elif kind == "AzureDataLakeGen2":
            props["filesystem"] = container
        else:
            raise ValueError(f"datastore type {kind!r} is not AzureBlob, AzureFile or AzureDataLakeGen2")
        created = wire.resolve_time(spec.get("createdAt"), now) or ws.created
        ws.datastores[name.lower()] = {
            "id": f"{ws.id}/datastores/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/datastores",
            "properties": props,
            "systemData": lro.system_data(created, ws.created_by),
        }
        ws.secrets[name.lower()] = secret

    # --- rendering --------------------------------------------------------------------------

    def _render_compute(self, ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
        """The stored body, with a cluster's node-derived fields filled in from its nodes."""
        out = copy.deepcopy(body)
        props = out["properties"]
        if props.get("computeType") == "AmlCompute":
            nodes = ws.nodes.get(out["name"].lower(), [])
            inner = props.setdefault("properties", {})
            counts = {f"{s}NodeCount": 0 for s in _NODE_STATES}
            for node in nodes:
                counts[f"{node['nodeState']}NodeCount"] += 1
            scale = inner.get("scaleSettings") or {}
            inner["currentNodeCount"] = len(nodes)
            inner["targetNodeCount"] = max(int(scale.get("minNodeCount") or 0), counts["runningNodeCount"] + counts["preparingNodeCount"], 0)
            inner["nodeStateCounts"] = counts
        return out

    def _render_workspace(self, ws: Workspace, base_url: str = "") -> dict[str, Any]:
        """A workspace's ARM body. Its discoveryUrl names this server when known (its run history is
        ``local/emulator/runhistory.py``), where Azure names the region's ``api.azureml.ms``."""
        rg_id = f"/subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}/providers"
        storage = self.storage.find(ws.storage_account) if ws.storage_account else None
        api = f"{ws.location}.api.azureml.ms"
        return {
            "id": ws.id,
            "name": ws.name,
            "type": f"{PROVIDER}/workspaces",
            "location": ws.location,
            "tags": dict(ws.tags),
            "kind": "Default",
            "sku": {"name": "Basic", "tier": "Basic"},
            "identity": {"type": "SystemAssigned", "principalId": wire.PRINCIPAL_ID, "tenantId": self.tenant_id},
            "systemData": lro.system_data(ws.created, ws.created_by),
            "properties": {
                "workspaceId": ws.workspace_id,
                "friendlyName": ws.name,
                "description": "",
                "provisioningState": "Succeeded",
                "storageAccount": storage.id if storage else None,
                "keyVault": f"{rg_id}/Microsoft.KeyVault/vaults/kv-{ws.name}",
                "applicationInsights": f"{rg_id}/microsoft.insights/components/appi-{ws.name}",
                "containerRegistry": None,
                "discoveryUrl": f"{base_url}/discovery" if base_url else f"https://{api}/discovery",
                "mlFlowTrackingUri": f"azureml://{api}/mlflow/v1.0/subscriptions/{ws.subscription}"
                f"/resourceGroups/{ws.resource_group}/providers/{PROVIDER}/workspaces/{ws.name}",
                "hbiWorkspace": False,
                "allowPublicAccessWhenBehindVnet": False,
                "publicNetworkAccess": "Enabled",
                "v1LegacyMode": False,
                "privateLinkCount": 0,
                "privateEndpointConnections": [],
                "sharedPrivateLinkResources": [],
                "serviceProvisionedResourceGroup": f"{ws.name}_{ws.workspace_id.replace('-', '')[:16]}",
                "systemDatastoresAuthMode": "accessKey",
                "enableDataIsolation": False,
            },
        }

    def _workspace_state(self, ws: Workspace) -> dict[str, Any]:
        computes = []
        for body in ws.computes.values():
            rendered = self._render_compute(ws, body)
            props, inner = rendered["properties"], rendered["properties"].get("properties") or {}
            item: dict[str, Any] = {
                "name": rendered["name"],
                "type": props.get("computeType"),
                "size": inner.get("vmSize"),
                "provisioningState": props.get("provisioningState"),
                "tags": rendered.get("tags") or {},
                "subnet": (inner.get("subnet") or {}).get("id"),
            }
            if props.get("computeType") == "ComputeInstance":
                item |= {
                    "state": inner.get("state"),
                    "lastOperation": inner.get("lastOperation"),
                    "idleTimeBeforeShutdown": inner.get("idleTimeBeforeShutdown"),
                }
            elif props.get("computeType") == "AmlCompute":
                scale = inner.get("scaleSettings") or {}
                item |= {
                    "minNodes": scale.get("minNodeCount"),
                    "maxNodes": scale.get("maxNodeCount"),
                    "idleTimeBeforeScaleDown": scale.get("nodeIdleTimeBeforeScaleDown"),
                    "nodes": [{"state": n["nodeState"], "runId": n["runId"]} for n in ws.nodes.get(rendered["name"].lower(), [])],
                }
            computes.append(item)
        datastores = []
        for key, body in ws.datastores.items():
            props = body["properties"]
            kind = props["credentials"]["credentialsType"]
            item = {"name": body["name"], "type": props["datastoreType"], "credential": kind, "account": props.get("accountName")}
            if kind == "AccountKey":
                item["keyValid"] = self.storage.key_status(props.get("accountName") or "", ws.secrets.get(key, {}).get("key"))
            datastores.append(item)
        return {
            "id": ws.id,
            "name": ws.name,
            "resourceGroup": ws.resource_group,
            "location": ws.location,
            "keysSyncedAt": wire.iso(ws.keys_synced_at),
            "keysSyncCount": ws.keys_sync_count,
            "computes": computes,
            "jobs": [
                {"name": j["name"], "status": j["properties"]["status"], "compute": _rid_tail(j["properties"]["computeId"] or "") or None}
                for j in ws.jobs.values()
            ],
            "bulkJobs": len(ws.bulk_jobs),
            "datastores": datastores,
        }

    # --- route handlers ---------------------------------------------------------------------

    def _workspace(self, args: dict[str, str]) -> Workspace | Response:
        ws = self._workspaces.get((args["sub"].lower(), args["rg"].lower(), args["ws"].lower()))
        if ws is None:
            return wire.arm_error(
                404,
                "ResourceNotFound",
                f"The Resource '{PROVIDER}/workspaces/{args['ws']}' under resource group '{args['rg']}' was not found.",
            )
        return ws

    def _compute(self, ws: Workspace, name: str) -> dict[str, Any] | Response:
        body = ws.computes.get(name.lower())
        return body if body is not None else wire.not_found(COMPUTE_TYPE, name)

    def _h_workspaces(self, req: Request, ws: Workspace | None, args: dict[str, str], now: datetime) -> Response:
        del ws, now
        listed = [
            self._render_workspace(each, req.base_url) for each in self._workspaces.values()
            if each.subscription.lower() == args["sub"].lower()
            and (args.get("rg") is None or each.resource_group.lower() == args["rg"].lower())
        ]
        return Response(200, {"value": listed})

    def _h_workspace(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        return Response(200, self._render_workspace(ws, req.base_url))

    def _h_resync(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        def done(succeeded: bool, at: datetime) -> None:
            if succeeded:
                ws.keys_synced_at = at
                ws.keys_sync_count += 1

        op = self.operations.start(
            req, kind="workspace", name="ResyncKeys", target=ws.id, subscription=ws.subscription,
            location=ws.location, now=now, on_done=done,
        )
        headers = self.operations.headers(op, req)
        # The spec's resyncKeys answers 202 with Location only.
        return Response(202, None, {"Location": headers["Location"], "Retry-After": headers["Retry-After"]})

    def _h_computes(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        return paging.page(req, list(ws.computes.values()), self.page_size, lambda body: self._render_compute(ws, body))

    def _h_compute(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        name = args["name"]
        if req.method == "PUT":
            return self._put_compute(ws, name, req, now)
        body = self._compute(ws, name)
        if isinstance(body, Response):
            return body
        if req.method == "GET":
            return Response(200, self._render_compute(ws, body))
        if req.method == "PATCH":
            return self._patch_compute(ws, body, req, now)
        if req.method == "DELETE":
            self.delete_compute(body["id"])
            return Response(200, None)
        return _not_allowed(req)

    def _put_compute(self, ws: Workspace, name: str, req: Request, now: datetime) -> Response:
        sent = _json_object(req)
        if isinstance(sent, Response):
            return sent
        props = sent.get("properties")
        if not isinstance(props, dict) or not props.get("computeType"):
            return wire.arm_error(400, "BadRequest", "properties.computeType is required.")
        old = ws.computes.get(name.lower())
        if old is not None and old["properties"]["computeType"] != props["computeType"]:
            return wire.arm_error(409, "Conflict", f"Compute '{name}' is a {old['properties']['computeType']}; its type cannot change.")
        if old is not None and self.operations.pending(old["id"]):
            return wire.arm_error(409, "Conflict", f"Compute '{name}' has an operation in progress.")
        inner = dict(props.get("properties") or {})
        new = {
            "id": ws.compute_id(name),
            "name": name,
            "type": COMPUTE_TYPE,
            "location": sent.get("location") or ws.location,
            "tags": dict(sent.get("tags") or {}),
            "identity": sent.get("identity"),
            "systemData": copy.deepcopy(old["systemData"]) if old else lro.system_data(now, lro.EMULATOR_PRINCIPAL, created_by_type="Application"),
            "properties": {
                **{k: v for k, v in props.items() if k != "properties"},
                "computeLocation": ws.location,
                "provisioningState": "Succeeded",
                "createdOn": old["properties"]["createdOn"] if old else wire.iso(now),
                "modifiedOn": wire.iso(now),
                "properties": inner,
            },
        }
        # Server-managed fields are not the caller's to replace, as in AML.
        old_inner = (old or {}).get("properties", {}).get("properties") or {}
        managed = ("state", "lastOperation", "createdBy", "connectivityEndpoints", "applications", "osImageMetadata", "errors", "allocationState", "allocationStateTransitionTime")
        for key in managed:
            if key in old_inner:
                inner[key] = old_inner[key]
        if old is None and props["computeType"] == "ComputeInstance":
            inner["state"] = "Running"
            inner["lastOperation"] = {"operationName": "Create", "operationTime": wire.iso(now), "operationStatus": "Succeeded", "operationTrigger": "User"}
        if props["computeType"] == "AmlCompute":
            scale = inner.get("scaleSettings") or {}
            nodes = ws.nodes.setdefault(name.lower(), [])
            self._resize(ws, name, nodes, int(scale.get("minNodeCount") or 0), int(scale.get("maxNodeCount") or 0))
        lro.touch(new, now)
        ws.computes[name.lower()] = new
        return Response(200 if old else 201, self._render_compute(ws, new))

    def _patch_compute(self, ws: Workspace, body: dict[str, Any], req: Request, now: datetime) -> Response:
        if body["properties"]["computeType"] != "AmlCompute":
            return wire.arm_error(409, "Conflict", f"Compute '{body['name']}' is a {body['properties']['computeType']}: only AmlCompute takes scale settings.")
        sent = _json_object(req)
        if isinstance(sent, Response):
            return sent
        outer = sent.get("properties") if isinstance(sent.get("properties"), dict) else {}
        holder = outer.get("properties") if isinstance(outer.get("properties"), dict) else outer
        scale = holder.get("scaleSettings")
        if not isinstance(scale, dict):
            return wire.arm_error(400, "BadRequest", "properties.properties.scaleSettings is required.")
        current = dict(body["properties"]["properties"].get("scaleSettings") or {})
        merged = current | {k: v for k, v in scale.items() if k in ("maxNodeCount", "minNodeCount", "nodeIdleTimeBeforeScaleDown") and v is not None}
        try:
            low, high = int(merged.get("minNodeCount") or 0), int(merged["maxNodeCount"])
        except (KeyError, TypeError, ValueError):
            return wire.arm_error(400, "BadRequest", "scaleSettings.maxNodeCount and minNodeCount must be integers.")
        if low < 0 or high < low:
            return wire.arm_error(400, "BadRequest", f"Invalid scale settings: minNodeCount {low} must be between 0 and maxNodeCount {high}.")
        idle = merged.get("nodeIdleTimeBeforeScaleDown")
        if idle is not None and _duration(idle) is None:
            return wire.arm_error(400, "BadRequest", f"nodeIdleTimeBeforeScaleDown {idle!r} is not an ISO 8601 duration.")
        if self.operations.pending(body["id"]):
            return wire.arm_error(409, "Conflict", f"Compute '{body['name']}' has an operation in progress.")
        def settle(succeeded: bool, when: datetime) -> None:
            # As in AML: the new settings land when the update ends, and a failed update leaves the old ones.
            body["properties"]["provisioningState"] = "Succeeded"
            if succeeded:
                body["properties"]["properties"]["scaleSettings"] = merged
                body["properties"]["modifiedOn"] = wire.iso(when)
                self._resize(ws, body["name"], ws.nodes.setdefault(body["name"].lower(), []), low, high)

        op = self.operations.start(
            req, kind="compute", name="Update", target=body["id"], subscription=ws.subscription,
            location=ws.location, now=now, on_done=settle,
        )
        # Azure's answer (Compute/patch.json): 200, the compute still Updating, and the operation to follow.
        body["properties"]["provisioningState"] = "Updating"
        lro.touch(body, now)
        headers = self.operations.headers(op, req)
        return Response(200, self._render_compute(ws, body), {"Azure-AsyncOperation": headers["Azure-AsyncOperation"]})

    def _resize(self, ws: Workspace, name: str, nodes: list[dict[str, Any]], low: int, high: int) -> None:
        """Release idle nodes above the minimum (and anything above the maximum); add idle ones up to the minimum."""
        while len(nodes) > low:
            idle = [n for n in nodes if n["nodeState"] in ("idle", "unusable", "preempted")]
            if not idle and len(nodes) <= high:
                break
            nodes.remove((idle or nodes)[-1])
        while len(nodes) < low:
            nodes.append(self._new_node(ws, name, len(nodes), "idle", None))

    def _h_compute_action(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        body = self._compute(ws, args["name"])
        if isinstance(body, Response):
            return body
        action = args["action"].lower()
        if action in ("start", "stop", "restart"):
            return self._transition(ws, body, action.capitalize(), req, now)
        if action == "updateidleshutdownsetting":
            return self._idle_shutdown(body, req, now)
        if action == "listnodes":
            nodes = ws.nodes.get(body["name"].lower(), [])
            return Response(200, {"nodes": copy.deepcopy(nodes), "nextLink": None})
        return wire.arm_error(404, "NotFound", f"Unknown compute action '{args['action']}'.")

    def _transition(self, ws: Workspace, body: dict[str, Any], operation: str, req: Request, now: datetime) -> Response:
        kind = body["properties"]["computeType"]
        if kind != "ComputeInstance":
            return wire.arm_error(409, "Conflict", f"{operation} is not supported on compute '{body['name']}' of type {kind}.")
        inner = body["properties"]["properties"]
        allowed, transient, final = _TRANSITIONS[operation]
        previous = str(inner.get("state") or "Unknown")
        if previous.lower() not in allowed or self.operations.pending(body["id"]):
            return wire.arm_error(
                409, "Conflict", f"Cannot {operation.lower()} compute instance '{body['name']}' while it is {previous}."
            )
        inner["state"] = transient
        inner["lastOperation"] = {
            "operationName": operation, "operationTime": wire.iso(now),
            "operationStatus": "InProgress", "operationTrigger": "User",
        }
        lro.touch(body, now)

        def done(succeeded: bool, at: datetime) -> None:
            inner["state"] = final if succeeded else previous
            inner["lastOperation"]["operationStatus"] = "Succeeded" if succeeded else f"{operation}Failed"
            body["properties"]["modifiedOn"] = wire.iso(at)

        op = self.operations.start(
            req, kind="compute", name=operation, target=body["id"], subscription=ws.subscription,
            location=ws.location, now=now, on_done=done,
        )
        return Response(202, None, self.operations.headers(op, req))

    def _idle_shutdown(self, body: dict[str, Any], req: Request, now: datetime) -> Response:
        if body["properties"]["computeType"] != "ComputeInstance":
            return wire.arm_error(400, "BadRequest", f"Compute '{body['name']}' is not a compute instance: it has no idle shutdown.")
        sent = _json_object(req)
        if isinstance(sent, Response):
            return sent
        value = sent.get("idleTimeBeforeShutdown")
        span = _duration(value)
        if span is None or not IDLE_SHUTDOWN_MIN <= span <= IDLE_SHUTDOWN_MAX:
            return wire.arm_error(
                400, "BadRequest", f"idleTimeBeforeShutdown {value!r} must be an ISO 8601 duration between PT15M and P3D."
            )
        body["properties"]["properties"]["idleTimeBeforeShutdown"] = value
        body["properties"]["modifiedOn"] = wire.iso(now)
        lro.touch(body, now)
        return Response(200, None)

    def _h_jobs(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        view = (req.arg("listViewType") or "ActiveOnly").lower()
        wanted = {"activeonly": {False}, "archivedonly": {True}, "all": {False, True}}.get(view)
        if wanted is None:
            return wire.arm_error(400, "BadRequest", f"listViewType {req.arg('listViewType')!r} is not ActiveOnly, ArchivedOnly or All.")
        names = ws.ordered_jobs(frozenset(wanted))
        kind = (req.arg("jobType") or "").lower()
        if kind:  # Jobs_List's jobType: only the jobs of that type (bulk-seeded jobs are command jobs)
            names = [n for n in names if (ws.jobs[n]["properties"]["jobType"] if n in ws.jobs else "Command").lower() == kind]
        return paging.page(req, names, self.page_size, lambda name: self._job(ws, name))

    def _job(self, ws: Workspace, name: str) -> dict[str, Any]:
        return copy.deepcopy(ws.jobs[name]) if name in ws.jobs else self._render_bulk(ws, name)

    def _h_job(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        name = args["name"]
        if name in ws.jobs or name in ws.bulk_jobs:
            return Response(200, self._job(ws, name))
        return wire.not_found(f"{PROVIDER}/workspaces/jobs", name)

    def _h_datastores(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        listed = list(ws.datastores.values())
        if (req.arg("isDefault") or "").lower() == "true":
            listed = [d for d in listed if d["properties"].get("isDefault")]
        return Response(200, {"value": copy.deepcopy(listed), "nextLink": None})

    def _h_datastore(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        name = args["name"]
        if req.method == "PUT":
            return self._put_datastore(ws, name, req, now)
        body = ws.datastores.get(name.lower())
        if body is None:
            return wire.not_found(f"{PROVIDER}/workspaces/datastores", name)
        if req.method == "GET":
            return Response(200, copy.deepcopy(body))
        return _not_allowed(req)

    def _put_datastore(self, ws: Workspace, name: str, req: Request, now: datetime) -> Response:
        sent = _json_object(req)
        if isinstance(sent, Response):
            return sent
        props = copy.deepcopy(sent.get("properties"))
        if not isinstance(props, dict) or props.get("datastoreType") not in ("AzureBlob", "AzureFile", "AzureDataLakeGen2", "AzureDataLakeGen1"):
            return wire.arm_error(400, "BadRequest", "properties.datastoreType must be AzureBlob, AzureFile, AzureDataLakeGen2 or AzureDataLakeGen1.")
        creds = props.get("credentials")
        if not isinstance(creds, dict) or not creds.get("credentialsType"):
            return wire.arm_error(400, "BadRequest", "properties.credentials.credentialsType is required.")
        sent_secrets = creds.get("secrets") if isinstance(creds.get("secrets"), dict) else None
        old = ws.datastores.get(name.lower())
        old_secret = ws.secrets.get(name.lower(), {})
        secret = dict(sent_secrets) if sent_secrets else (
            old_secret if old and old["properties"]["credentials"]["credentialsType"] == creds["credentialsType"] else {}
        )
        skip = (req.arg("skipValidation") or "false").lower() == "true"
        if creds["credentialsType"] == "AccountKey" and not skip:
            valid = self.storage.key_status(str(props.get("accountName") or ""), secret.get("key"))
            if valid is False:
                return wire.arm_error(
                    400,
                    "UserError",
                    f"The account key given for storage account '{props.get('accountName')}' is not valid: "
                    "authentication to the storage account failed.",
                )
        # Secrets are write-only: the stored body keeps only their type.
        if sent_secrets is not None:
            creds["secrets"] = {"secretsType": sent_secrets.get("secretsType") or creds["credentialsType"]}
        props.setdefault("isDefault", bool(old and old["properties"].get("isDefault")))
        props.setdefault("properties", {})
        props.setdefault("tags", {})
        new = {
            "id": f"{ws.id}/datastores/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/datastores",
            "properties": props,
            "systemData": copy.deepcopy(old["systemData"]) if old else lro.system_data(now, lro.EMULATOR_PRINCIPAL, created_by_type="Application"),
        }
        lro.touch(new, now)
        ws.datastores[name.lower()] = new
        ws.secrets[name.lower()] = secret
        return Response(200 if old else 201, copy.deepcopy(new))

    def _h_list_secrets(self, req: Request, ws: Workspace, args: dict[str, str], now: datetime) -> Response:
        del now
        body = ws.datastores.get(args["name"].lower())
        if body is None:
            return wire.not_found(f"{PROVIDER}/workspaces/datastores", args["name"])
        secret = ws.secrets.get(args["name"].lower())
        if not secret:
            return wire.arm_error(400, "UserError", f"Datastore '{args['name']}' has no secrets: it uses identity-based access.")
        return Response(200, dict(secret))

    def _h_vm_sizes(self, req: Request, ws: Workspace | None, args: dict[str, str], now: datetime) -> Response:
        """The VM sizes AML offers in a location (VirtualMachineSizeListResult), from the emulator's size table."""
        del ws, args, now
        sizes = [
            {"name": size_display_name(name), "family": family, "vCPUs": cores, "gpus": 1 if family.startswith("standardNC") else 0,
             "osVhdSizeMB": 1047552, "maxResourceVolumeMB": cores * 7168, "memoryGB": float(cores * 3.5),
             "lowPriorityCapable": True, "premiumIO": True, "supportedComputeTypes": ["AmlCompute", "ComputeInstance"]}
            for name, (family, cores) in sorted(VM_SIZES.items())
        ]
        return Response(200, {"value": sizes})

    def _h_usages(self, req: Request, ws: Workspace | None, args: dict[str, str], now: datetime) -> Response:
        del ws, now
        sub, location = args["sub"], args["loc"].replace(" ", "").lower()
        quotas = self.quotas.get(location, {})
        families = sorted({fam for fam, _ in VM_SIZES.values()})
        per_family = dict.fromkeys(families, 0)
        per_family_low = dict.fromkeys(families, 0)
        per_ws: dict[tuple[str, str], int] = {}  # (workspace id, family) -> cores
        per_compute: dict[tuple[str, str], int] = {}  # (compute id, family) -> cores
        low_priority = clusters = 0
        for ws in self._workspaces.values():
            if ws.subscription.lower() != sub.lower() or ws.location.replace(" ", "").lower() != location:
                continue
            for body in ws.computes.values():
                props = body["properties"]
                inner = props.get("properties") or {}
                size = VM_SIZES.get(str(inner.get("vmSize", "")).lower())
                if props.get("computeType") == "AmlCompute":
                    clusters += 1
                    nodes = sum(1 for n in ws.nodes.get(body["name"].lower(), []) if n["nodeState"] != "preempted")
                    cores = nodes * size[1] if size else 0
                    if str(inner.get("vmPriority", "Dedicated")).lower() == "lowpriority":
                        low_priority += cores
                        if size:
                            per_family_low[size[0]] += cores
                        continue
                elif props.get("computeType") == "ComputeInstance":
                    held = str(inner.get("state", "")).lower() not in _NOT_HOLDING
                    cores = size[1] if size and held else 0
                else:
                    continue
                if size and cores:
                    per_family[size[0]] += cores
                    per_ws[(ws.id, size[0])] = per_ws.get((ws.id, size[0]), 0) + cores
                    per_compute[(body["id"], size[0])] = cores
        dedicated = sum(per_family.values())

        def usage(rid: str, kind: str, value: str, label: str, current: int, limit: int) -> dict[str, Any]:
            return {"id": rid, "type": f"{PROVIDER}/{kind}", "unit": "Count", "currentValue": current,
                    "limit": limit, "name": {"value": value, "localizedValue": label}}

        base = f"/subscriptions/{sub}/providers/{PROVIDER}/locations/{location}/usages"
        out = [
            usage(base, "totalCores/usages", "Clusters", "Clusters", clusters, int(quotas.get("clusters", 200))),
            usage(base, "dedicatedCores/usages", "Total Cluster Dedicated Regional vCPUs", "Total Cluster Dedicated Regional vCPUs",
                  dedicated, int(quotas.get("totalDedicated", DEFAULT_TOTAL_LIMIT))),
            usage(base, "lowPriorityCores/usages", "Total Cluster LowPriority Regional vCPUs", "Total Cluster LowPriority Regional vCPUs",
                  low_priority, int(quotas.get("totalLowPriority", DEFAULT_TOTAL_LIMIT))),
        ]
        # As Azure's example (Usage/list.json) names a family's rows: by their label, in both name fields and
        # in the id; the dedicated count with the family's limit, then the low-priority count with none (-1).
        subscription = f"/subscriptions/{sub}/usages"
        for fam in families:
            label = f"{family_label(fam)} Cluster Dedicated vCPUs"
            tail = label.replace(" ", "_")
            limit = int(quotas.get(fam, DEFAULT_FAMILY_LIMIT))
            out.append(usage(f"{subscription}/{tail}", "vmFamily/usages", label, label, per_family[fam], limit))
            out.extend(
                usage(f"{wid}/usages/{tail}", "workspaces/usages", label, label, cores, limit)
                for (wid, f), cores in per_ws.items() if f == fam
            )
            out.extend(
                usage(f"{cid}/usages/{tail}", "workspaces/computes/usages", label, label, cores, limit)
                for (cid, f), cores in per_compute.items() if f == fam
            )
        for fam in families:
            label = f"{family_label(fam)} Cluster LowPriority vCPUs"
            out.append(usage(f"{subscription}/{label.replace(' ', '_')}", "vmFamily/usages", label, label, per_family_low[fam], -1))
        return Response(200, {"value": out, "nextLink": None})

    _WS = rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{re.escape(PROVIDER)}/workspaces/(?P<ws>[^/]+)"
    # (path, methods the route takes (None: the handler checks), handler). A route with a workspace in its
    # path gets the workspace resolved first: 404 for an unknown workspace comes before 405.
    _routes: ClassVar[list[tuple[re.Pattern[str], tuple[str, ...] | None, Callable[..., Response]]]] = [
        (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/{re.escape(PROVIDER)}/workspaces/?$", re.I), ("GET",), _h_workspaces),
        (re.compile(rf"{_WS}/?$", re.I), ("GET",), _h_workspace),
        (re.compile(rf"{_WS}/resyncKeys/?$", re.I), ("POST",), _h_resync),
        (re.compile(rf"{_WS}/computes/?$", re.I), ("GET",), _h_computes),
        (re.compile(rf"{_WS}/computes/(?P<name>[^/]+)/?$", re.I), None, _h_compute),
        (re.compile(rf"{_WS}/computes/(?P<name>[^/]+)/(?P<action>[^/]+)/?$", re.I), ("POST",), _h_compute_action),
        (re.compile(rf"{_WS}/jobs/?$", re.I), ("GET",), _h_jobs),
        (re.compile(rf"{_WS}/jobs/(?P<name>[^/]+)/?$", re.I), ("GET",), _h_job),
        (re.compile(rf"{_WS}/datastores/?$", re.I), ("GET",), _h_datastores),
        (re.compile(rf"{_WS}/datastores/(?P<name>[^/]+)/?$", re.I), None, _h_datastore),
        (re.compile(rf"{_WS}/datastores/(?P<name>[^/]+)/listSecrets/?$", re.I), ("POST",), _h_list_secrets),
        (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/providers/{re.escape(PROVIDER)}/locations/(?P<loc>[^/]+)/usages/?$", re.I), ("GET",), _h_usages),
        (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/providers/{re.escape(PROVIDER)}/locations/(?P<loc>[^/]+)/vmSizes/?$", re.I), ("GET",), _h_vm_sizes),
    ]


def size_display_name(name: str) -> str:
    """standard_ds3_v2 → Standard_DS3_v2, standard_nc6s_v3 → Standard_NC6s_v3 (Azure's spelling)."""
    parts = name.split("_")
    head = re.match(r"^([a-z]+)(\d+)([a-z]*)$", parts[1]) if len(parts) > 1 else None
    middle = f"{head.group(1).upper()}{head.group(2)}{head.group(3)}" if head else (parts[1] if len(parts) > 1 else "")
    return "_".join([parts[0].capitalize(), middle, *parts[2:]])


def _not_allowed(req: Request) -> Response:
    return wire.arm_error(405, "MethodNotAllowed", f"The method {req.method} is not allowed on {req.path}.")


def _json_object(req: Request) -> dict[str, Any] | Response:
    try:
        body = req.json()
    except ValueError:
        return wire.arm_error(400, "InvalidRequestContent", "The request content is not valid JSON.")
    if not isinstance(body, dict):
        return wire.arm_error(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


SERVICE = MLService(arm_storage.SERVICE, lro.Operations())

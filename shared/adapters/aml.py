"""One Azure ML workspace, seen through ARM: computes, jobs, usages, sizes — and the writes.

Reads of computes and jobs go through ``ArmClient`` as raw JSON (azure-ai-ml's entities drop
``createdBy`` and node state counts, and cost about 1 ms of CPU per job); usages, VM sizes and
instance stop go through azure-ai-ml's ``MLClient``,
imported lazily because importing it costs about a second of cold start.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import isodate

from shared.adapters.arm import ArmClient
from shared.adapters.azure import client_options, credential, translate
from shared.errors import Gone
from shared.jobs import ALL_JOBS, JobDigest, JobsUnavailable, NewestFirst, of_computes
from shared.model import (
    Cluster,
    ComputeInstance,
    Job,
    OnlineDeployment,
    OnlineEndpoint,
    OtherCompute,
    ResourceId,
    Usage,
    name_key,
    same_name,
)
from shared.names import shown
from shared.settings import Settings

log = logging.getLogger("autopilot.aml")
RUN_HISTORY_PARALLEL = 8  # computes asked at once: a handful of connections, well inside run history's limits

Compute = ComputeInstance | Cluster | OtherCompute


def arm_time(value: Any) -> datetime | None:
    """An ARM time; one without a zone is UTC (ARM's clock), so that it compares with every other time."""
    if not value:
        return None
    if not isinstance(value, datetime):
        try:
            value = isodate.parse_datetime(str(value))
        except (ValueError, isodate.ISO8601Error):
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _seconds(value: Any) -> int | None:
    if not value:
        return None
    try:
        return int(isodate.parse_duration(str(value)).total_seconds())
    except (ValueError, isodate.ISO8601Error):
        return None


def _pick(mapping: Any, *names: str) -> Any:
    """The first present of several spellings (ARM camelCase, SDK snake_case)."""
    if not isinstance(mapping, dict):
        return None
    for name in names:
        if mapping.get(name) not in (None, ""):
            return mapping[name]
    return None


def _count(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def other_compute(workspace: ResourceId, body: dict[str, Any], kind: str) -> OtherCompute:
    """A compute the autopilot lists and leaves alone, with what its type tells of size and nodes
    (fields as azure-rest-api-specs names them: AKS ``agentVmSize``/``agentCount``, VirtualMachine
    ``virtualMachineSize``, SynapseSpark ``nodeSize``/``nodeCount``, Kubernetes ``defaultInstanceType``)."""
    outer = body.get("properties") or {}
    inner = outer.get("properties") if isinstance(outer.get("properties"), dict) else {}
    size = _pick(inner, "agentVmSize", "virtualMachineSize", "vmSize", "nodeSize", "defaultInstanceType") or ""
    nodes = _count(_pick(inner, "agentCount", "nodeCount"))
    return OtherCompute(
        workspace=workspace,
        name=str(body.get("name") or ""),
        compute_type=kind or "Unknown",
        state=str(outer.get("provisioningState") or "Unknown"),
        size=str(size),
        nodes=nodes,
        owner=(body.get("systemData") or {}).get("createdBy"),
        attached=bool(outer.get("isAttachedCompute")),
        created_at=arm_time(outer.get("createdOn")) or arm_time((body.get("systemData") or {}).get("createdAt")),
        tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
    )


def compute_from_arm(workspace: ResourceId, body: dict[str, Any]) -> Compute:
    """A compute resource's ARM JSON as a domain value: an instance, a cluster, or a compute of any other
    type (listed and left alone — never dropped, whatever type ARM adds later)."""
    outer = body.get("properties") or {}
    inner = outer.get("properties") or {}
    kind = str(outer.get("computeType", ""))
    tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
    created = arm_time(outer.get("createdOn")) or arm_time((body.get("systemData") or {}).get("createdAt"))
    name = body.get("name") or ""
    if kind == "ComputeInstance":
        op = inner.get("lastOperation") or {}
        creator = inner.get("createdBy") or {}
        owner = _pick(creator, "userName", "user_name") or (body.get("systemData") or {}).get("createdBy")
        idle = _seconds(inner.get("idleTimeBeforeShutdown"))
        return ComputeInstance(
            workspace=workspace,
            name=name,
            state=str(inner.get("state") or "Unknown"),
            size=str(inner.get("vmSize") or ""),
            owner=owner,
            last_operation=_pick(op, "operationName", "operation_name"),
            last_operation_at=arm_time(_pick(op, "operationTime", "operation_time")),
            idle_shutdown_minutes=None if idle is None else idle // 60,
            created_at=created,
            tags=tags,
        )
    if kind == "AmlCompute":
        scale = inner.get("scaleSettings") or {}
        counts = inner.get("nodeStateCounts") or {}
        return Cluster(
            workspace=workspace,
            name=name,
            size=str(inner.get("vmSize") or ""),
            min_nodes=int(scale.get("minNodeCount") or 0),
            max_nodes=int(scale.get("maxNodeCount") or 0),
            idle_before_scale_down_s=_seconds(scale.get("nodeIdleTimeBeforeScaleDown")),
            current_nodes=int(inner.get("currentNodeCount") or 0),
            unusable_nodes=int(counts.get("unusableNodeCount") or 0),
            busy_nodes=int(counts.get("runningNodeCount") or 0) + int(counts.get("preparingNodeCount") or 0),
            created_at=created,
            tags=tags,
        )
    return other_compute(workspace, body, kind)


def _compute_name(value: Any) -> str | None:
    """A compute as a job names it (a full ARM id, ``azureml:name`` or a bare name) → its name."""
    if not value or not isinstance(value, str):
        return None
    name = value.rstrip("/").rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if name.lower().startswith("azureml:") else name


def job_from_arm(body: Any) -> Job | None:
    """One item of ARM's jobs list (JobBaseResource) as a domain Job: only what policy reads.

    A pipeline job names its default compute in ``computeId``; when its ``jobs`` (the steps) are in
    the body, every compute a step names counts too. A missing status is ``Unknown``: not terminal.
    """
    if not isinstance(body, dict) or not body.get("name"):
        return None
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    system = body.get("systemData") if isinstance(body.get("systemData"), dict) else {}
    steps = props.get("jobs") if isinstance(props.get("jobs"), dict) else {}
    resources = props.get("resources") if isinstance(props.get("resources"), dict) else {}
    tags = props.get("tags") if isinstance(props.get("tags"), dict) else {}
    also = tuple(dict.fromkeys(c for step in steps.values() if isinstance(step, dict)
                               for c in [_compute_name(step.get("computeId") or step.get("compute"))] if c))
    return Job(
        name=str(body["name"]),
        status=str(props.get("status") or "Unknown"),
        compute=_compute_name(props.get("computeId")),
        created_at=arm_time(system.get("createdAt")),
        modified_at=arm_time(system.get("lastModifiedAt")),
        also_on=also,
        owner=str(system.get("createdBy") or "") or None,
        instance_type=resources.get("instanceType") or None,  # serverless jobs: the VM size they asked for
        instance_count=_count(resources.get("instanceCount")) or 1,
        tags={str(k): str(v) for k, v in tags.items()},
    )


def traffic_split(value: Any, what: str, required: bool) -> tuple[dict[str, int], str]:
    """A traffic or mirror traffic map as ARM gives it (deployment name → whole percent), and why it is unreadable.

    Anything but a map of whole numbers from 0 to 100 (a string, a fraction, a negative share, true) is not read
    as 0 %: it is unreadable, and a deployment of an endpoint whose split is unreadable is never deleted.
    A missing ``mirrorTraffic`` is none (older endpoints have no mirror); a missing ``traffic`` is unreadable.
    """
    if value is None and not required:
        return {}, ""
    if not isinstance(value, dict):
        return {}, f"{what} is {type(value).__name__}, expected a map of deployment names to percent"
    split: dict[str, int] = {}
    for key, share in value.items():
        whole = isinstance(share, int | float) and not isinstance(share, bool) and float(share).is_integer()
        if not whole or not 0 <= share <= 100:
            return {}, f"{what} of {shown(str(key))} is {shown(share if isinstance(share, str) else repr(share))}, not a whole percent"
        split[str(key)] = int(share)
    return split, ""


def endpoint_from_arm(body: dict[str, Any]) -> OnlineEndpoint:
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    traffic, bad_traffic = traffic_split(props.get("traffic"), "traffic", required=True)
    mirror, bad_mirror = traffic_split(props.get("mirrorTraffic"), "mirrorTraffic", required=False)
    return OnlineEndpoint(
        name=str(body.get("name") or ""),
        compute_type=str(props.get("endpointComputeType") or "Managed"),
        state=str(props.get("provisioningState") or "Unknown"),
        traffic=traffic,
        mirror_traffic=mirror,
        unreadable="; ".join(b for b in (bad_traffic, bad_mirror) if b),
    )


def _map(value: Any) -> dict[str, Any]:
    """A JSON object read from ARM, or an empty one when the field is of another type."""
    return value if isinstance(value, dict) else {}


def deployment_from_arm(workspace: ResourceId, endpoint: str, body: dict[str, Any]) -> OnlineDeployment:
    """A deployment's ARM JSON as a domain value; a field of the wrong type reads as absent, never raises (the
    owner it names is told by message, so it is text or nobody)."""
    props, sku, system = _map(body.get("properties")), _map(body.get("sku")), _map(body.get("systemData"))
    scale = _map(props.get("scaleSettings"))
    # The instance count is the SKU's capacity (the REST examples); a target-utilization scale reports its minimum.
    count = _count(sku.get("capacity")) or _count(scale.get("minInstances")) or 1
    owner = system.get("createdBy")
    return OnlineDeployment(
        workspace=workspace,
        endpoint=endpoint,
        name=str(body.get("name") or ""),
        compute_type=str(props.get("endpointComputeType") or "Managed"),
        state=str(props.get("provisioningState") or "Unknown"),
        instance_type=str(props.get("instanceType") or ""),
        instance_count=count,
        owner=owner.strip() or None if isinstance(owner, str) else None,
        tags={str(k): str(v) for k, v in _map(body.get("tags")).items()},
    )


_FAMILY_ROW = re.compile(r"(?P<family>.+?)\s+Cluster\s+(?P<priority>Dedicated|Low\s*Priority)\s+vCPUs", re.IGNORECASE)


def quota_family(value: str, label: str) -> str | None:
    """The VM family whose dedicated vCPUs a ``vmFamily/usages`` row counts, as VM sizes name it
    ("standardDSv2Family"); None for a row of low-priority vCPUs, or one that names no family.

    Azure's published example names a row by its label in both fields ("Standard DSv2 Family Cluster
    Dedicated vCPUs", and "… Cluster LowPriority vCPUs" for the same family's low-priority count); a row
    may also carry the family's own name as its value, beside that label. Both are read; the label says
    which count the row is.
    """
    value, label = value.strip(), label.strip()
    for text in (label, value):
        row = _FAMILY_ROW.fullmatch(text)
        if row:
            if row["priority"].lower() != "dedicated":
                return None
            if value and " " not in value:
                return value
            words = "".join(row["family"].split())
            return words[:1].lower() + words[1:]
    return value if value and " " not in value else None


class Workspace:
    """The adapter for one allowed workspace. Every method is one ARM round trip (plus LRO polling)."""

    def __init__(self, settings: Settings, workspace: ResourceId, arm: ArmClient | None = None) -> None:
        self.settings = settings
        self.id = workspace
        self.arm = arm or ArmClient(settings)
        self._ml: Any = None
        self._body: dict[str, Any] | None = None
        self._history: Any = None

    @property
    def ml(self) -> Any:
        """MLClient for this workspace, built on first use (importing azure.ai.ml is slow)."""
        if self._ml is None:
            from azure.ai.ml import MLClient

            endpoint = self.settings.arm_endpoint.rstrip("/") + "/"
            kwargs: dict[str, Any] = dict(client_options(self.settings))
            if endpoint != "https://management.azure.com/":
                # azure-ai-ml caches custom clouds per process by name: one name per endpoint.
                kwargs["cloud"] = "autopilot-" + hashlib.sha1(endpoint.encode()).hexdigest()[:10]
                kwargs["cloud_metadata"] = {
                    "azure_portal": "https://portal.azure.com/",
                    "resource_manager": endpoint,
                    "active_directory": "https://login.microsoftonline.com/",
                    "aml_resource_id": "https://ml.azure.com/",
                    "storage_endpoint": "core.windows.net",
                    "registry_discovery_endpoint": endpoint,
                }
            self._ml = MLClient(credential(), self.id.subscription, self.id.resource_group, self.id.name, **kwargs)
        return self._ml

    def list_computes(self) -> list[Compute]:
        out = []
        for body in self.arm.list(self.id.path("computes"), what=f"list computes of {self.id.name}"):
            compute = compute_from_arm(self.id, body)
            if compute is not None:
                out.append(compute)
        return out

    def get_compute(self, name: str) -> Compute | None:
        """The compute as it is now, or None when it no longer exists."""
        try:
            body = self.arm.get(self.id.path("computes", name), what=f"get compute {name}")
        except Gone:
            return None
        return compute_from_arm(self.id, body)

    # --- jobs and online endpoints (raw ARM) -------------------------------------------------------

    def cancel_job(self, name: str) -> None:
        """Cancel a job (a long-running operation: 202 with Location, polled until it ends)."""
        self.arm.begin("POST", self.id.path("jobs", name, "cancel"), what=f"cancel job {name}")

    def list_endpoints(self) -> list[OnlineEndpoint]:
        return [endpoint_from_arm(b) for b in self.arm.list(self.id.path("onlineEndpoints"), what=f"list online endpoints of {self.id.name}")]

    def get_endpoint(self, name: str) -> OnlineEndpoint | None:
        try:
            return endpoint_from_arm(self.arm.get(self.id.path("onlineEndpoints", name), what=f"get endpoint {name}"))
        except Gone:
            return None

    def list_deployments(self, endpoint: str) -> list[OnlineDeployment]:
        path = self.id.path("onlineEndpoints", endpoint, "deployments")
        return [deployment_from_arm(self.id, endpoint, b) for b in self.arm.list(path, what=f"list deployments of {endpoint}")]

    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment | None:
        try:
            body = self.arm.get(self.id.path("onlineEndpoints", endpoint, "deployments", name), what=f"get deployment {endpoint}/{name}")
        except Gone:
            return None
        return deployment_from_arm(self.id, endpoint, body)

    def deployment_logs(self, endpoint: str, name: str, tail: int) -> str:
        """The last `tail` lines of the deployment's inference server container (getLogs)."""
        body = self.arm.post(self.id.path("onlineEndpoints", endpoint, "deployments", name, "getLogs"),
                             {"containerType": "InferenceServer", "tail": tail}, what=f"get the logs of {endpoint}/{name}")
        return str((body or {}).get("content") or "") if isinstance(body, dict) else ""

    def delete_deployment(self, endpoint: str, name: str) -> None:
        """Delete a deployment: a long-running operation (202 with Azure-AsyncOperation and Location), polled to its end."""
        self.arm.begin("DELETE", self.id.path("onlineEndpoints", endpoint, "deployments", name), what=f"delete deployment {endpoint}/{name}")

    def _workspace(self) -> dict[str, Any]:
        """The workspace's own ARM body, read once per adapter (its region, its discovery URL)."""
        if self._body is None:
            body = self.arm.get(self.id.path(), what=f"get workspace {self.id.name}")
            self._body = body if isinstance(body, dict) else {}
        return self._body

    def location(self) -> str:
        """The workspace's own region (regional endpoints such as metrics follow it)."""
        return str(self._workspace().get("location") or "")

    def _runs(self) -> Any:
        """The workspace's run history (``shared.adapters.runhistory``), or Unavailable when JOBS_SOURCE is arm."""
        from shared.adapters.runhistory import RunHistory, Unavailable

        if self.settings.jobs_source != "run-history":
            raise Unavailable("JOBS_SOURCE is arm")
        if self._history is None:
            props = self._workspace().get("properties")
            self._history = RunHistory(self.settings, self.id, props.get("discoveryUrl") if isinstance(props, dict) else None)
        return self._history

    def jobs_on(self, computes: Sequence[str], ended_since: datetime) -> JobDigest:
        """The jobs on these computes that are not finished or ended since ``ended_since``, from run
        history, one request per compute (a few in parallel); JobsUnavailable when it cannot answer
        for one of them — then ARM's complete list decides (see ``shared.adapters.runhistory``)."""
        history = self._runs()
        names = list(dict.fromkeys(computes))
        if len(names) <= 1:
            found = [history.runs_on(name, ended_since) for name in names]
        else:
            with ThreadPoolExecutor(max_workers=min(RUN_HISTORY_PARALLEL, len(names)), thread_name_prefix="runs") as pool:
                found = list(pool.map(lambda name: history.runs_on(name, ended_since), names))
        return of_computes((job for jobs in found for job in jobs), ended_since=ended_since)

    def _jobs(self, query: Mapping[str, str] = ALL_JOBS, what: str = "jobs") -> Iterator[Job]:
        """ARM's jobs list, newest first, one page at a time, each item reduced to a Job as it arrives."""
        for body in self.arm.list(self.id.path("jobs"), query=query, what=f"list {what} of {self.id.name}"):
            job = job_from_arm(body)
            if job is not None:
                yield job

    def list_jobs(self, known: JobDigest | None = None, now: datetime | None = None) -> JobDigest:
        """Every job of the workspace from ARM's list, digested as the pages stream in (see ``shared.jobs``).

        ARM's list is the complete one, and the one that costs every job: its query parameters
        (``$skipToken``, ``jobType``, ``tag``, ``listViewType``, ``properties``, ``scheduled``,
        ``scheduleId``) filter by neither status nor compute. Sweeps ask run history per compute
        (``jobs_on``) and come here when it cannot answer, when ``JOBS_SOURCE`` is arm, or when every
        job is needed (the plan's inventory, a Not Responding Runs alert). The pages are read as raw
        JSON (azure-ai-ml's entities cost about 20 times more CPU per job).

        With ``known``, the digest of an earlier complete listing (kept in the ledger), only the jobs
        created since its horizon (less ``HORIZON_MARGIN``) are listed — usually one page — and the
        rest is carried over: a job created before the horizon was seen by that listing, a finished
        job never runs again, and each job it knew active is read again by name (404: gone), until
        one per compute is found still active (the others stay active as far as known: they can
        only keep a compute, never free one). The newest-first order is checked as the pages come;
        should it break, the whole list is read and ``known`` is not used — completeness first.
        """
        if known is None or known.horizon is None:
            return self._full(now)
        fresh = JobDigest(full_at=known.full_at, full=False)
        order = NewestFirst(known.horizon)
        listed: set[str] = set()
        for job in self._jobs():
            if not order.goes_on(job.created_at):
                break
            listed.add(name_key(job.name))
            fresh.add(job)
        if order.broken:  # not newest first after all: only the whole list is complete
            log.warning("jobs of %s not listed newest first: the whole list read", self.id.name)
            fresh.full, fresh.full_at = True, now
            return fresh
        self._carry(known, fresh, listed)
        return fresh

    def _full(self, now: datetime | None) -> JobDigest:
        out = JobDigest(full_at=now)
        for job in self._jobs():
            out.add(job)
        return out

    def _carry(self, known: JobDigest, fresh: JobDigest, listed: set[str]) -> None:
        """Carry ``known`` over into ``fresh`` (the newest jobs): its finished jobs as they are, its active
        ones read again by name — but none whose every compute a job confirmed active already keeps."""
        confirmed = {name_key(c) for job in fresh.active.values() for c in job.computes}
        # Oldest first: a job that has run for long is the likeliest to run still, and confirms its computes.
        carried = sorted(known.active.items(), key=lambda kv: kv[1].created_at or datetime.min.replace(tzinfo=UTC))
        for key, job in carried:
            computes = [name_key(c) for c in job.computes]
            if key in listed or not computes:
                continue  # read in the new pages already, or serverless: it keeps no compute
            if all(c in confirmed for c in computes):
                fresh.active[key] = job
                continue
            now_job = self.get_job(job.name)
            fresh.reread += 1
            if now_job is None:
                continue  # gone
            if now_job.active:
                fresh.active[key] = now_job
                confirmed.update(name_key(c) for c in now_job.computes)
            else:
                for compute in now_job.computes:
                    fresh.finished_on(name_key(compute), now_job)
        for compute, job in known.last_finished.items():
            fresh.finished_on(compute, job)
        fresh.saw(known.horizon)

    def _pipelines_on(self, compute: str) -> list[Job]:
        """Every running pipeline job whose steps (or default compute) name `compute`: ARM's list of
        pipeline jobs (``jobType=Pipeline``), the whole of it — a pipeline may have run for weeks."""
        pipelines = self._jobs({**ALL_JOBS, "jobType": "Pipeline"}, "pipeline jobs")
        return [job for job in pipelines if job.active and job.runs_on(compute)]

    def get_job(self, name: str) -> Job | None:
        """One job as it is now (``GET jobs/{name}``), or None when it no longer exists."""
        try:
            return job_from_arm(self.arm.get(self.id.path("jobs", name), what=f"get job {name}"))
        except Gone:
            return None

    def active_jobs(self, compute: str, horizon: datetime | None = None, known: Sequence[Job] = (), *,
                    pipelines: bool = False) -> list[Job]:
        """The jobs in a non-terminal state on one compute now: the re-read just before a write.

        From run history, one request for that compute — and with ``pipelines`` (before a stop) ARM's
        list of pipeline jobs, whose steps name computes before any run of theirs exists there (a
        step starts when the ones before it end, on an instance that must still be running). From
        ARM's whole list when run history cannot answer (it names pipelines' steps anyway), where,
        with the ``horizon`` of this run's complete listing (the newest creation time it saw), only
        jobs created since can be new to it — a finished job never runs again, and a job active at
        the listing is in ``known`` and read again by name. The list comes newest first (as the
        studio and the emulator show it; the REST spec does not say), so the pages are read until a
        job created ``HORIZON_MARGIN`` before the horizon: usually one page. The order is checked as
        the jobs arrive, not assumed: should one come newer than the one before it, the whole list
        is read — completeness first.
        """
        if self.settings.jobs_source == "run-history":
            try:
                busy = [job for job in self._runs().runs_on(compute) if job.active]
                return busy + (self._pipelines_on(compute) if pipelines and not busy else [])
            except JobsUnavailable as exc:
                log.info("run history could not re-read %s (%s): ARM's jobs list decides", compute, exc)
        found: dict[str, Job] = {}
        seen: set[str] = set()
        order = NewestFirst(horizon) if horizon is not None else None
        for job in self._jobs():
            if order is not None and not order.goes_on(job.created_at):
                break
            seen.add(name_key(job.name))
            if job.active and job.runs_on(compute):
                found[name_key(job.name)] = job
        for job in known:
            if name_key(job.name) in seen or name_key(job.name) in found:
                continue
            fresh = self.get_job(job.name)
            if fresh is not None and fresh.active and fresh.runs_on(compute):
                found[name_key(fresh.name)] = fresh
        return list(found.values())

    def list_usages(self, location: str) -> list[Usage]:
        try:
            usages = list(self.ml.compute.list_usage(location=location))
        except Exception as exc:
            raise translate(exc, f"list usages in {location}") from exc
        out = []
        for usage in usages:
            # azure-ai-ml 1.35 leaves `current_value` empty and keeps the wire's `currentValue`: read both.
            fields = vars(usage)
            # The answer also breaks each family down per workspace and per compute: keep the family totals.
            if not str(fields.get("type") or "").lower().endswith("vmfamily/usages"):
                continue
            name = fields.get("name")
            value, label = ((name.get("value"), name.get("localizedValue")) if isinstance(name, dict)
                            else (getattr(name, "value", None), getattr(name, "localized_value", None)))
            family = quota_family(str(value or ""), str(label or ""))
            current = _pick(fields, "current_value", "currentValue")
            if family:
                # A limit below zero is none reported (Azure's -1), not a negative quota.
                out.append(Usage(family, int(current or 0), max(int(fields.get("limit") or 0), 0)))
        return out

    def vm_sizes(self, location: str) -> dict[str, tuple[str, int]]:
        """VM size name (lower case) → (quota family, vCPUs)."""
        try:
            sizes = list(self.ml.compute.list_sizes(location=location))
        except Exception as exc:
            raise translate(exc, f"list VM sizes in {location}") from exc
        out = {}
        for size in sizes:
            fields = vars(size)  # VmSize copies the REST model's fields; the vCPU spelling varies by version
            cores = next((fields[k] for k in ("v_cpus", "v_cp_us", "vCPUs", "vcpus") if fields.get(k)), 0)
            if fields.get("name"):
                out[str(fields["name"]).lower()] = (str(fields.get("family") or ""), int(cores))
        return out

    # --- datastores ----------------------------------------------------------------------------

    def datastores_on(self, account: str) -> list[DatastoreRef]:
        """Every datastore of this workspace on the storage account, with its credential type (one call)."""
        out = []
        for body in self.arm.list(self.id.path("datastores"), what=f"list datastores of {self.id.name}"):
            props = body.get("properties") or {}
            if not same_name(str(props.get("accountName") or ""), account):
                continue
            cred = str((props.get("credentials") or {}).get("credentialsType") or "None")
            out.append(DatastoreRef(self.id.name, str(body.get("name")), cred, dict(props)))
        return out

    def datastore_key(self, name: str) -> str | None:
        """The account key an account-key datastore holds (listSecrets), or None when it holds none."""
        body = self.arm.post(self.id.path("datastores", name, "listSecrets"), {}, what=f"read the secret of datastore {name}")
        if not isinstance(body, dict) or str(body.get("secretsType", "")).lower() != "accountkey":
            return None
        return str(body.get("key") or "") or None

    def set_datastore_key(self, store: DatastoreRef, key: str) -> None:
        """Point an account-key datastore at a new key: its properties as listed, only the credential changed.

        A plain PUT (not azure-ai-ml's, which always skips validation) lets AML check that the datastore
        reaches its storage with the new key before accepting it.
        """
        props = {k: v for k, v in store.properties.items() if k != "credentials"}
        props["credentials"] = {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": key}}
        self.arm.send("PUT", self.id.path("datastores", store.name), {"properties": props}, what=f"update datastore {store.name}")

    def resync_keys(self) -> None:
        """Make the workspace pick up new storage keys now (it otherwise refreshes them after about an hour)."""
        try:
            self.ml.workspaces.begin_sync_keys(self.id.name).result(timeout=self.settings.arm_timeout_seconds * 6)
        except Exception as exc:
            raise translate(exc, f"resync keys of {self.id.name}") from exc

    # --- writes ----------------------------------------------------------------------------

    def stop_instance(self, name: str) -> None:
        try:
            self.ml.compute.begin_stop(name).result(timeout=self.settings.arm_timeout_seconds * 6)
        except Exception as exc:
            raise translate(exc, f"stop {name}") from exc

    def set_scale(self, name: str, min_nodes: int, max_nodes: int, idle_s: int | None) -> None:
        """PATCH only the scale settings (ClusterUpdateParameters); everything else on the cluster stays."""
        scale: dict[str, Any] = {"minNodeCount": min_nodes, "maxNodeCount": max_nodes}
        if idle_s is not None:
            scale["nodeIdleTimeBeforeScaleDown"] = f"PT{idle_s}S"
        body = {"properties": {"properties": {"scaleSettings": scale}}}  # ClusterUpdateParameters
        self.arm.begin("PATCH", self.id.path("computes", name), body, what=f"scale {name}")

    def set_idle_shutdown(self, name: str, minutes: int) -> None:
        body = {"idleTimeBeforeShutdown": f"PT{minutes}M"}
        self.arm.post(self.id.path("computes", name, "updateIdleShutdownSetting"), body, what=f"set idle shutdown on {name}")


@dataclass(frozen=True)
class DatastoreRef:
    """A datastore on a storage account: its name and credential type (never its secret)."""

    workspace: str
    name: str
    credential: str  # AccountKey, Sas, ServicePrincipal, None, …
    properties: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as listed (no secrets)

    @property
    def label(self) -> str:
        return f"{self.workspace}/{self.name}"

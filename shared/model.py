"""The domain: frozen values that flow from adapters through policy to the engine.

Adapters translate SDK objects into these types, so policy never sees an SDK object and tests of
policy need no Azure at all.
"""

from __future__ import annotations

import functools
import re
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import quote

# Only these job states are final; anything else (Queued, Preparing, Paused, NotResponding…) may
# still be using, or about to use, the compute.
TERMINAL_JOB_STATES = frozenset({"completed", "failed", "canceled"})


_Frozen = TypeVar("_Frozen")


def quick_init(cls: type[_Frozen]) -> type[_Frozen]:
    """Give a frozen dataclass an ``__init__`` that fills the new instance's attributes in one step.

    The ``__init__`` dataclasses writes for a frozen class sets each field through ``object.__setattr__``
    (the class refuses plain assignment): a call per field. On the intake's path (an envelope, an event,
    a work item and its intake for every event accepted) that is about 2 µs an event; this way, a third.
    This one takes the same parameters, defaults and default factories; the class stays frozen, its
    equality, hash and repr are untouched. Apply it over ``@dataclass``.
    """
    # What this __init__ does not do, it refuses to be given: a check in __post_init__ would be skipped,
    # slots have no __dict__ to fill, keyword-only fields need a signature of their own.
    if hasattr(cls, "__post_init__") or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__}: quick_init does not run __post_init__ nor fill slots")
    params: list[str] = []
    made: list[str] = []
    scope: dict[str, Any] = {"_MISSING": MISSING}
    for f in fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init fills every field from a positional parameter")
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            made.append(f"    if {f.name} is _MISSING:\n        {f.name} = _factory_{f.name}()\n")
        else:
            params.append(f.name)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    # The instance is `__dataclass_self__`, as in dataclasses' own: no field name can be it.
    source = (f"def __init__(__dataclass_self__, {', '.join(params)}):\n{''.join(made)}"
              f"    __dataclass_self__.__dict__.update({{{', '.join(f'{n!r}: {n}' for n in names)}}})\n")
    exec(source, scope)  # as dataclasses builds its own __init__: from source, once per class
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


# No ARM name holds these (nor is one a dot segment): a "resource id" that does would reach another URL.
_NOT_IN_A_NAME = re.compile(r"[?#%\\\s]")


def _is_text(value: str) -> bool:
    """Valid Unicode text (no lone surrogate), which every ARM name is."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fold(text: str) -> str:
    """`text` in lower case, as ARM compares names (``É`` and ``é`` alike, as the ledger keys them) —
    unless it holds a letter that only looks like an ASCII one and lowers into it (the Kelvin sign
    becomes "k"): such a text is kept as it is, so it never matches an allowed id spelled in ASCII."""
    lowered = text.lower()
    if text.isascii() or not any(not c.isascii() and c.lower().isascii() for c in text):
        return lowered
    return text


def name_key(name: str) -> str:
    """The one identity of an ARM name: ARM compares names case-insensitively, so every comparison of
    compute, job, workspace or vault names goes through this key, never ``==`` on the raw spelling."""
    return fold(name.strip())


def same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and name_key(a) == name_key(b)


def path_segment(value: str) -> str:
    """One URL path segment, quoted so that it can never add a segment, a query or a fragment.

    Dot segments are refused outright: quoting leaves ``..`` as it is and HTTP clients resolve it.
    """
    if value in ("", ".", ".."):
        raise ValueError(f"{value!r} cannot be a resource name")
    return quote(value, safe="")


def subscription_path(subscription: str, *children: str) -> str:
    """The URL path of a subscription or of something under it, every segment quoted (``ResourceId.path``
    builds every resource's path through this)."""
    return "/" + "/".join(path_segment(p) for p in ("subscriptions", subscription, *children))


class Mode(StrEnum):
    OBSERVE = "observe"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class ResourceId:
    """An ARM resource id, kept in its original spelling; compare with ``same_as``."""

    subscription: str
    resource_group: str
    provider: str
    type_name: str
    name: str

    @classmethod
    def parse(cls, value: str) -> ResourceId:
        """Parse ``/subscriptions/S/resourceGroups/G/providers/P/T/N`` (top-level resources only)."""
        parts = [p for p in value.strip().split("/") if p]
        if (
            len(parts) != 8
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[4].lower() != "providers"
        ):
            raise ValueError(f"{value!r} is not an ARM resource id of the form /subscriptions/…/resourceGroups/…/providers/…/…/…")
        bad = next((p for p in parts if p in (".", "..") or _NOT_IN_A_NAME.search(p) or not _is_text(p)), None)
        if bad is not None:
            raise ValueError(f"{value[:200]!a} is not an ARM resource id: {bad[:80]!a} cannot be a segment of one")
        return cls(parts[1], parts[3], parts[5], parts[6], parts[7])

    @property
    def type_path(self) -> str:
        return f"{self.provider}/{self.type_name}"

    # Written once per value (its fields never change): the allowed workspaces' ids are read on every event.
    @functools.cached_property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.provider}/{self.type_name}/{self.name}"
        )

    @functools.cached_property
    def key(self) -> str:
        """The normalised identity (ARM ids are case-insensitive): compare and key ledger rows by this."""
        return fold(self.id)

    def same_as(self, other: str | ResourceId) -> bool:
        other_id = other.id if isinstance(other, ResourceId) else other.strip().rstrip("/")
        return self.key == fold(other_id)

    def path(self, *children: str) -> str:
        """The URL path of this resource or of a child (``path("computes", name)``), every segment quoted.

        The one place resource URLs are built: names from payloads can add neither a segment nor a query.
        """
        return subscription_path(self.subscription, "resourceGroups", self.resource_group, "providers",
                                 *self.provider.split("/"), self.type_name, self.name, *children)

    def __str__(self) -> str:
        return self.id


class _Compute:
    """A compute of a workspace; its key is its ARM id (ledger marks and cooldowns are keyed by it)."""

    workspace: ResourceId
    name: str

    @property
    def key(self) -> str:
        return compute_key(self.workspace, self.name)


def compute_key(workspace: ResourceId, name: str) -> str:
    """The normalised key of a compute (ledger marks, cooldowns and restores are keyed by it)."""
    return f"{workspace.key}/computes/{name_key(name)}"


@dataclass(frozen=True)
class ComputeInstance(_Compute):
    workspace: ResourceId
    name: str
    state: str  # Running, Stopped, Starting, Stopping, …
    size: str
    owner: str | None
    last_operation: str | None  # Start, Stop, Restart, Create, …
    last_operation_at: datetime | None
    idle_shutdown_minutes: int | None
    created_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)



@dataclass(frozen=True)
class Cluster(_Compute):
    workspace: ResourceId
    name: str
    size: str
    min_nodes: int
    max_nodes: int
    idle_before_scale_down_s: int | None
    current_nodes: int
    unusable_nodes: int
    created_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    busy_nodes: int = 0  # nodes running or preparing a job (nodeStateCounts): a job is on them, listed or not



@dataclass(frozen=True)
class OtherCompute(_Compute):
    """A compute the autopilot lists but never changes: AKS, Kubernetes, attached VMs, Databricks, HDInsight,
    Synapse Spark, Data Factory, Data Lake Analytics — and any type ARM adds later (kept, never dropped).

    ``compute_type`` is ``properties.computeType`` as ARM spells it; ``state`` its provisioning state.
    """

    workspace: ResourceId
    name: str
    compute_type: str
    state: str
    size: str = ""  # the VM size or node size, where the type has one
    nodes: int | None = None
    owner: str | None = None
    attached: bool = False
    created_at: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    name: str
    status: str
    compute: str | None  # compute name (not id), None for serverless
    created_at: datetime | None
    modified_at: datetime | None  # for a terminal job, when it ended; else when its status last changed
    owner: str | None = None
    instance_type: str | None = None  # serverless jobs: the VM size they asked for
    instance_count: int = 1
    tags: dict[str, str] = field(default_factory=dict)
    also_on: tuple[str, ...] = ()  # a pipeline's steps may name other computes than its default one

    @property
    def active(self) -> bool:
        return self.status.lower() not in TERMINAL_JOB_STATES

    def runs_on(self, compute: str) -> bool:
        """Whether this job was submitted to the compute of that name, itself or through one of its
        steps (ARM names are case-insensitive)."""
        return same_name(self.compute, compute) or any(same_name(other, compute) for other in self.also_on)

    @property
    def computes(self) -> tuple[str, ...]:
        """Every compute the job may run on, by name."""
        return ((self.compute,) if self.compute else ()) + self.also_on

    @property
    def last_seen_at(self) -> datetime | None:
        """When the job last touched its compute: its end when terminal, else now-ish (caller decides)."""
        return self.modified_at or self.created_at


def studio_link(workspace: ResourceId, job: str) -> str:
    """The job's page in Azure ML studio, as AML's own Studio service endpoint links it."""
    return f"https://ml.azure.com/runs/{quote(job, safe='')}?wsid={quote(workspace.id, safe='/')}"


@dataclass(frozen=True)
class OnlineEndpoint:
    """An online endpoint: how its live traffic and its mirror traffic are split across its deployments (percent)."""

    name: str
    compute_type: str  # endpointComputeType: Managed, Kubernetes, AzureMLCompute
    state: str  # provisioningState
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    # Why its split could not be read ("" when it could): a share that is not a whole percent from 0 to 100, or
    # no traffic map at all. Then nobody can say a deployment receives nothing, so none of them is deleted.
    unreadable: str = ""

    def share(self, deployment: str) -> tuple[int, int]:
        """(traffic, mirror traffic) percent the deployment receives; names compared case-insensitively."""
        def of(split: dict[str, int]) -> int:
            return sum(v for k, v in split.items() if same_name(k, deployment))
        return of(self.traffic), of(self.mirror_traffic)


@dataclass(frozen=True)
class OnlineDeployment:
    """A deployment of an online endpoint. ``target`` is how actions name it: ``endpoint/deployments/name``."""

    workspace: ResourceId
    endpoint: str
    name: str
    compute_type: str  # endpointComputeType: Managed or Kubernetes
    state: str  # provisioningState: Creating, Updating, Succeeded, Failed, Deleting, Scaling, Canceled
    instance_type: str
    instance_count: int
    owner: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return deployment_target(self.endpoint, self.name)

    @property
    def key(self) -> str:
        return f"{self.workspace.key}/onlineendpoints/{deployment_target(self.endpoint, self.name).lower()}"

    @property
    def failed(self) -> bool:
        return self.state.lower() == "failed"

    @property
    def managed(self) -> bool:
        return self.compute_type.lower() == "managed"


@dataclass(frozen=True)
class DeploymentState:
    """A deployment re-read with its endpoint (whose traffic split says whether it may go)."""

    deployment: OnlineDeployment
    endpoint: OnlineEndpoint | None

    @property
    def name(self) -> str:
        return self.deployment.target

    @property
    def tags(self) -> dict[str, str]:
        return self.deployment.tags


def deployment_target(endpoint: str, deployment: str) -> str:
    return f"{endpoint}/deployments/{deployment}"


def split_deployment_target(target: str) -> tuple[str, str]:
    """``endpoint/deployments/name`` → (endpoint, name); ValueError when the target is not of that form."""
    parts = target.split("/")
    if len(parts) != 3 or parts[1] != "deployments" or not parts[0] or not parts[2]:
        raise ValueError(f"{target[:200]!r} is not endpoint/deployments/name")
    return parts[0], parts[2]


@dataclass(frozen=True)
class Usage:
    family: str
    current: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.current / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class CpuActivity:
    """What CPU metrics say about one instance over the look-back window.

    ``available`` is False when the metrics could not be read at all: that is not "no data", and
    never counts as idle whatever NO_METRICS_MEANS says.
    """

    has_data: bool
    last_busy_at: datetime | None  # last minute above the busy threshold
    available: bool = True


NO_CPU_DATA = CpuActivity(False, None)
CPU_UNAVAILABLE = CpuActivity(False, None, available=False)


@dataclass(frozen=True)
class Mark:
    """An instance found idle and its owner warned; stopped after the grace period if still idle.

    ``mode``: the mode it was marked in. Only a mark of the running mode counts: a mark (and a warning)
    made in observe mode never lets the first enforce sweep stop an instance without a fresh warning.
    """

    compute_key: str
    marked_at: datetime
    reason: str
    mode: Mode = Mode.ENFORCE


class ActionKind(StrEnum):
    STOP_INSTANCE = "stop-instance"
    SET_IDLE_SHUTDOWN = "set-idle-shutdown"
    SCALE_CLUSTER = "scale-cluster"
    MARK_IDLE = "mark-idle"
    CLEAR_MARK = "clear-mark"
    NOTIFY = "notify"
    ROTATE_CREDENTIAL = "rotate-credential"
    MARK_FAILED_DEPLOYMENT = "mark-failed-deployment"
    DELETE_DEPLOYMENT = "delete-deployment"
    CANCEL_JOB = "cancel-job"


class Change(Protocol):
    """What the domain knows of an action's change: its kind, parameters and words.

    The kinds themselves — their checks, writes and verifications — are the classes of shared/actions.py.
    """

    kind: ClassVar[ActionKind]
    writes_to_azure: ClassVar[bool]
    announced: ClassVar[bool]
    collection: ClassVar[str]  # what the target is a child of the workspace as: computes, onlineEndpoints, jobs, secrets

    def describe(self, target: str) -> str: ...
    def params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Action:
    """One thing to do, as data, with the human reason behind it.

    ``change`` is one of the typed action kinds of ``shared/actions.py`` (its parameters and its
    behaviour); ``tags`` are the target's tags when it was judged, for the exemption guard.
    """

    change: Change
    workspace: ResourceId
    target: str  # compute name (secret name for rotations)
    reason: str
    owner: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    rule: str = ""  # the rule whose verdict asked for it (the report counts per rule)

    @property
    def kind(self) -> ActionKind:
        return self.change.kind

    @property
    def resource_id(self) -> str:
        """The id of the thing acted on, as Azure spells it: a compute, an online deployment
        (target ``endpoint/deployments/name``) or a job of the workspace, or a secret of the vault."""
        return f"{self.workspace.id}/{self.change.collection}/{self.target}"

    @property
    def key(self) -> str:
        """The normalised id of the thing acted on (claims, marks, cooldowns are keyed by it)."""
        return fold(self.resource_id)


class Decision(StrEnum):
    ACT = "act"
    WAIT = "wait"
    KEEP = "keep"
    SKIP = "skip"


@dataclass(frozen=True)
class Verdict:
    """A rule's judgement on one resource: what it decided, why, and the actions that follow."""

    rule: str
    target: str
    decision: Decision
    reason: str
    actions: tuple[Action, ...] = ()


class Status(StrEnum):
    PLANNED = "planned"  # observe mode: would have acted
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Freed:
    """What a done write released: ``vms`` VMs of ``size`` (a stop frees one; a scale-down the nodes it lets go).

    ``running_since``: when the compute had last been started, as seen just before the write — it
    also tells when an earlier saving on the same compute ended.
    """

    size: str
    vms: int
    running_since: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    detail: str
    at: datetime
    trigger: str = ""
    freed: Freed | None = None  # set on a done write that released VMs
    cores: int | None = None  # freed.vms × the size's vCPUs; None when the sizes could not be read

    def as_log(self) -> dict[str, object]:
        """The structured log / notification form; never carries a secret."""
        return {
            "status": self.status.value,
            "action": self.action.kind.value,
            "workspace": self.action.workspace.name,
            "target": self.action.target,
            "reason": self.action.reason,
            "detail": self.detail,
            "owner": self.action.owner,
            "trigger": self.trigger,
            "rule": self.action.rule,
            "at": self.at.isoformat(),
        }


def human(delta: timedelta) -> str:
    """3h12m, 45m, 2d4h: how long, the way an operator reads it."""
    total = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{mins:02d}m" if mins else f"{hours}h"
    return f"{mins}m"

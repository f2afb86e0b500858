"""The action kinds: one typed class per kind, registered in one table.

Each class is the kind's parameters (a frozen dataclass) and its behaviour:

- ``describe(target)``: what the action does, in the words an operator reads;
- for Azure writes: ``precheck`` (a reason not to write, judged on the state re-read just before
  the write), ``execute`` (the write, through the workspace port), ``verify`` (the state re-read
  after the write: None when it took), and the ledger hooks ``remember`` / ``forget`` that a kind
  needs around its write;
- for bookkeeping (the autopilot's own ledger and channels): ``apply``.

Policy builds actions from these classes; the guard pipeline (``shared/guards.py``) runs them.
Nothing here branches on a kind: each kind's behaviour is in its own class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from shared import names
from shared.model import (
    Action,
    ActionKind,
    Cluster,
    ComputeInstance,
    DeploymentState,
    Freed,
    Job,
    Mark,
    Mode,
    Outcome,
    Status,
    split_deployment_target,
)
from shared.ports import Compute, LedgerPort, NotifierPort, WorkspacePort

ActiveJobs = Callable[[], list[Job]]  # re-reads the jobs on the target, only when a kind needs them
EVIDENCE = {"evidence": True}  # a field holding what the decision saw, checked on the re-read; not a parameter


class Change(ABC):
    """Base of every action kind."""

    kind: ClassVar[ActionKind]
    writes_to_azure: ClassVar[bool] = False
    announced: ClassVar[bool] = True  # sent to the notification channels (bookkeeping may say otherwise)
    collection: ClassVar[str] = "computes"  # the workspace's child collection the target is in
    warning: ClassVar[bool] = False  # a warning before an action: goes to the owner too, with the time left
    # The write would leave a compute unusable to a running pipeline's step not yet started (a stopped
    # instance; a shrunk cluster grows again): its re-read also asks for the pipelines that name it.
    strands_steps: ClassVar[bool] = False

    def grace(self, settings: Any) -> timedelta | None:
        """For a warning, the time left before its action (None: no action follows)."""
        return None

    @abstractmethod
    def describe(self, target: str) -> str: ...

    # --- savings: a kind that frees VMs says how many, and what on the live state ends the saving ---

    def freed(self, before: Compute) -> Freed | None:
        """The VMs this change releases, judged on the state re-read just before it (None: it frees none)."""
        return None

    def resumed(self, live: Compute | None, at: datetime) -> tuple[bool, datetime | None]:
        """Whether the compute holds again what this change (done at `at`) freed, judged on its live state;
        and since when, when Azure says. (False, None): still saving."""
        return False, None

    def params(self) -> dict[str, Any]:
        """The kind's parameters, as recorded with a claim and shown by `autopilot plan`: defaults left out, and
        so is the evidence a decision was taken on (only the re-read before the write uses it)."""
        out = {}
        for name, spec in getattr(self, "__dataclass_fields__", {}).items():
            value = getattr(self, name)
            if not spec.metadata.get("evidence") and (spec.default is MISSING or value != spec.default):
                out[name] = value
        return out


class AzureWrite(Change):
    """A change to an Azure resource: guarded by the whole pipeline."""

    writes_to_azure = True

    def bypasses_cooldown(self) -> bool:
        """Whether the write may follow another within the cooldown (giving back what was taken)."""
        return False

    def target_problem(self, target: str) -> str | None:
        """Why a target (from a ledger record) cannot be one of this kind's, or None."""
        return names.COMPUTE.check(target)

    def read(self, target: str, ws: WorkspacePort) -> Any:
        """The target as it is now (the re-read before the write and after it), or None when it is gone."""
        return ws.get_compute(target)

    @abstractmethod
    def precheck(self, fresh: Any, active_jobs: ActiveJobs) -> str | None:
        """Judged on the state re-read just before the write: a reason not to write, or None."""

    @abstractmethod
    def execute(self, target: str, ws: WorkspacePort) -> None: ...

    @abstractmethod
    def verify(self, fresh: Any) -> str | None:
        """Judged on the state re-read after the write: None when it took, else what is wrong."""

    def remember(self, key: str, ledger: LedgerPort, now: datetime) -> None:
        """Recorded before the write, so that a run dying right after it leaves what the next one needs."""

    def forget(self, key: str, ledger: LedgerPort) -> None:
        """Cleared once the write is verified."""


class Bookkeeping(Change):
    """A change to the autopilot's own ledger (and channels): no Azure write, no guard but the allow-list."""

    @abstractmethod
    def apply(self, action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime,
              mode: Mode = Mode.ENFORCE) -> tuple[Status, str]: ...


def _busy(active_jobs: ActiveJobs) -> str | None:
    busy = active_jobs()
    return f"job {busy[0].name} is {busy[0].status} on it now (re-read)" if busy else None


# --- Azure writes -------------------------------------------------------------------------------


def operation_stamp(instance: ComputeInstance) -> str:
    """When the instance's last operation (start, restart…) happened, as recorded with a decision to stop it."""
    return instance.last_operation_at.isoformat() if instance.last_operation_at else ""


@dataclass(frozen=True)
class StopInstance(AzureWrite):
    """Stop a compute instance: only a running one with no job on it in any non-terminal state, and not
    one started or restarted since it was judged idle (``seen_operation_at``, from ``operation_stamp``)."""

    kind = ActionKind.STOP_INSTANCE
    strands_steps = True
    seen_operation_at: str | None = field(default=None, metadata=EVIDENCE)

    def describe(self, target: str) -> str:
        return f"stop {target}"

    def precheck(self, fresh: Compute, active_jobs: ActiveJobs) -> str | None:
        if not isinstance(fresh, ComputeInstance):
            return "not a compute instance (re-read)"
        if fresh.state.lower() != "running":
            return f"state is now {fresh.state} (re-read)"
        if self.seen_operation_at is not None and operation_stamp(fresh) != self.seen_operation_at:
            when = f"{fresh.last_operation_at:%H:%M}Z" if fresh.last_operation_at else "an unknown time"
            return f"{fresh.last_operation or 'an operation'} at {when}, since it was judged idle (re-read)"
        return _busy(active_jobs)

    def execute(self, target: str, ws: WorkspacePort) -> None:
        ws.stop_instance(target)

    def verify(self, fresh: Compute | None) -> str | None:
        if isinstance(fresh, ComputeInstance) and fresh.state.lower() in ("stopped", "stopping"):
            return None  # the next sweep clears the idle mark of a stopped instance
        return f"verification: state is {_state(fresh)} after stop"

    def freed(self, before: Compute) -> Freed | None:
        if not isinstance(before, ComputeInstance):
            return None
        started = (before.last_operation or "").lower() in _STARTS
        return Freed(before.size, 1, before.last_operation_at if started else None)

    def resumed(self, live: Compute | None, at: datetime) -> tuple[bool, datetime | None]:
        """Started again since the stop: its last operation is a start after it; gone, or stopped again by
        someone else since (an operation well after ours), means it ended at a time Azure does not say."""
        if not isinstance(live, ComputeInstance):
            return True, None
        when = live.last_operation_at
        if live.state.lower() in ("stopped", "stopping"):
            ours = when is None or when <= at + _OWN_OPERATION_SLACK
            return (False, None) if ours else (True, None)
        if when is not None and when > at and (live.last_operation or "").lower() in _STARTS:
            return True, when
        return True, None


@dataclass(frozen=True)
class SetIdleShutdown(AzureWrite):
    """Set AML's own idle shutdown of an instance (15 to 4320 minutes), only when settled."""

    kind = ActionKind.SET_IDLE_SHUTDOWN
    minutes: int

    def describe(self, target: str) -> str:
        return f"set idle shutdown of {target} to {self.minutes}m"

    def precheck(self, fresh: Compute, active_jobs: ActiveJobs) -> str | None:
        if not isinstance(fresh, ComputeInstance):
            return "not a compute instance (re-read)"
        if fresh.state.lower() not in ("running", "stopped"):
            return f"state is now {fresh.state}; settings change only when settled (re-read)"
        if fresh.idle_shutdown_minutes and fresh.idle_shutdown_minutes <= self.minutes:
            return f"native idle shutdown is already {fresh.idle_shutdown_minutes}m (re-read)"
        return None

    def execute(self, target: str, ws: WorkspacePort) -> None:
        ws.set_idle_shutdown(target, self.minutes)

    def verify(self, fresh: Compute | None) -> str | None:
        if isinstance(fresh, ComputeInstance) and fresh.idle_shutdown_minutes == self.minutes:
            return None
        got = fresh.idle_shutdown_minutes if isinstance(fresh, ComputeInstance) else "?"
        return f"verification: idle shutdown is {got}m, wanted {self.minutes}m"


@dataclass(frozen=True)
class ScaleCluster(AzureWrite):
    """Change a cluster's scale settings (a PATCH of scaleSettings only); never shrink it under a job.

    ``restore_max``: a recycle (max 0) that must give max nodes back once drained — remembered in the
    ledger before the write. ``restore``: the write that gives them back (exempt from the cooldown).
    ``seen``: the (min, max) nodes it was decided on; an operator's change since then is never reverted.
    """

    kind = ActionKind.SCALE_CLUSTER
    min_nodes: int
    max_nodes: int
    idle_s: int | None
    restore_max: int | None = None
    restore: bool = False
    seen: tuple[int, int] | None = field(default=None, metadata=EVIDENCE)

    def bypasses_cooldown(self) -> bool:
        return self.restore

    def describe(self, target: str) -> str:
        after = f", scale down after {self.idle_s}s" if self.idle_s is not None else ""
        return f"scale {target} to min {self.min_nodes} max {self.max_nodes}{after}"

    def precheck(self, fresh: Compute, active_jobs: ActiveJobs) -> str | None:
        if not isinstance(fresh, Cluster):
            return "not a cluster (re-read)"
        if (fresh.min_nodes, fresh.max_nodes, fresh.idle_before_scale_down_s) == (self.min_nodes, self.max_nodes, self.idle_s):
            return "already at the wanted scale settings (re-read)"
        if self.seen is not None and (fresh.min_nodes, fresh.max_nodes) != tuple(self.seen):
            return f"scale settings changed since the decision (now min {fresh.min_nodes} max {fresh.max_nodes}) (re-read)"
        if self.min_nodes < fresh.min_nodes or self.max_nodes < fresh.max_nodes:
            if fresh.busy_nodes:
                # Only a job puts a node to work, listed or not (a pipeline's step is not in the jobs list).
                return f"{fresh.busy_nodes} node(s) running or preparing a job now (re-read)"
            return _busy(active_jobs)
        return None

    def execute(self, target: str, ws: WorkspacePort) -> None:
        ws.set_scale(target, self.min_nodes, self.max_nodes, self.idle_s)

    def verify(self, fresh: Compute | None) -> str | None:
        if not isinstance(fresh, Cluster):
            return f"verification: {_state(fresh)} after the scale change"
        idle_ok = self.idle_s is None or fresh.idle_before_scale_down_s == self.idle_s
        if (fresh.min_nodes, fresh.max_nodes) == (self.min_nodes, self.max_nodes) and idle_ok:
            return None
        return (f"verification: scale is min {fresh.min_nodes} max {fresh.max_nodes} idle {fresh.idle_before_scale_down_s}s, "
                f"wanted min {self.min_nodes} max {self.max_nodes} idle {self.idle_s}s")

    def freed(self, before: Compute) -> Freed | None:
        """Nodes held only by the old min nodes, or above the new max (a recycle lets every node go)."""
        if self.restore or not isinstance(before, Cluster):
            return None
        held = min(before.current_nodes, before.min_nodes)
        nodes = max(held - self.min_nodes, before.current_nodes - self.max_nodes, 0)
        return Freed(before.size, nodes) if nodes else None

    def resumed(self, live: Compute | None, at: datetime) -> tuple[bool, datetime | None]:
        """Held again once min nodes is raised above what this change left (ARM keeps no time for that)."""
        if not isinstance(live, Cluster):
            return True, None
        return (live.min_nodes > self.min_nodes), None

    def remember(self, key: str, ledger: LedgerPort, now: datetime) -> None:
        if self.restore_max is not None:
            ledger.put_restore(key, self.restore_max, now)

    def forget(self, key: str, ledger: LedgerPort) -> None:
        if self.restore:
            ledger.clear_restore(key)


@dataclass(frozen=True)
class DeleteDeployment(AzureWrite):
    """Delete a failed online deployment that receives no traffic and no mirror traffic: its reserved VMs'
    quota is released. Managed deployments only (a Kubernetes deployment is reported, never changed).

    Re-read just before the delete: the deployment must still be Failed, and its endpoint must still send
    it 0 % of traffic and 0 % of mirror traffic. The delete is a long-running operation; it is verified by
    reading the deployment back and finding it gone.
    """

    kind = ActionKind.DELETE_DEPLOYMENT
    collection = "onlineEndpoints"
    instance_type: str = ""
    instance_count: int = 0
    vcpus: int = 0  # of one instance, when its size is known

    @property
    def cores_freed(self) -> int:
        """The cores of quota the delete releases: instance type's vCPUs × instance count (0 when unknown)."""
        return self.vcpus * self.instance_count

    def describe(self, target: str) -> str:
        freed = f", freeing {self.cores_freed} cores" if self.cores_freed else ""
        return f"delete failed deployment {target} ({self.instance_count} × {self.instance_type or 'unknown size'}{freed})"

    def target_problem(self, target: str) -> str | None:
        try:
            endpoint, deployment = split_deployment_target(target)
        except ValueError as exc:
            return str(exc)
        return names.ENDPOINT.check(endpoint) or names.DEPLOYMENT.check(deployment)

    def read(self, target: str, ws: WorkspacePort) -> DeploymentState | None:
        endpoint, name = split_deployment_target(target)
        deployment = ws.get_deployment(endpoint, name)
        if deployment is None:
            return None
        # The traffic that protects it is looked up by the name the delete's URL carries, not by whatever name
        # (none, another) the body read back gives: a body without its name must not read as 0 % of traffic.
        return DeploymentState(replace(deployment, name=name), ws.get_endpoint(endpoint))

    def precheck(self, fresh: Any, active_jobs: ActiveJobs) -> str | None:
        if not isinstance(fresh, DeploymentState):
            return "not an online deployment (re-read)"
        deployment, endpoint = fresh.deployment, fresh.endpoint
        if not deployment.managed:
            return f"a {deployment.compute_type} deployment: reported, never changed (re-read)"
        if not deployment.failed:
            return f"state is now {deployment.state}: it recovered (re-read)"
        if endpoint is None:
            return "its endpoint could not be read: traffic unknown, not deleting (re-read)"
        if endpoint.unreadable:
            return f"its endpoint's traffic split is unreadable ({endpoint.unreadable}): not deleting (re-read)"
        traffic, mirror = endpoint.share(deployment.name)
        if traffic or mirror:
            return f"it now receives {traffic} % of traffic and {mirror} % of mirror traffic (re-read)"
        return None

    def execute(self, target: str, ws: WorkspacePort) -> None:
        ws.delete_deployment(*split_deployment_target(target))

    def verify(self, fresh: Any) -> str | None:
        if fresh is None:
            return None
        state = fresh.deployment.state if isinstance(fresh, DeploymentState) else "present"
        return f"verification: the deployment is still there ({state}) after the delete"

    def forget(self, key: str, ledger: LedgerPort) -> None:
        ledger.clear_mark(key)  # gone: its failure mark has nothing left to count down

    def freed(self, before: Any) -> Freed | None:
        """Its instances, as re-read just before the delete: the quota (and VMs) the delete releases."""
        if not isinstance(before, DeploymentState) or not before.deployment.instance_type or before.deployment.instance_count < 1:
            return None
        return Freed(before.deployment.instance_type, before.deployment.instance_count)

    def resumed(self, live: Any, at: datetime) -> tuple[bool, datetime | None]:
        """A deleted deployment stays deleted; its saving ends only should the live state show it again."""
        return (live is not None), None


@dataclass(frozen=True)
class CancelJob(AzureWrite):
    """Cancel a job that has not responded for longer than NOT_RESPONDING_CANCEL_MINUTES (opt-in).

    Re-read just before the cancel: still NotResponding, and still since the time it was judged on
    (``seen_since``) — a job that reported again meanwhile is left alone.
    """

    kind = ActionKind.CANCEL_JOB
    collection = "jobs"
    seen_since: str | None = field(default=None, metadata=EVIDENCE)

    def describe(self, target: str) -> str:
        return f"cancel not-responding job {target}"

    def target_problem(self, target: str) -> str | None:
        return names.JOB.check(target)

    def read(self, target: str, ws: WorkspacePort) -> Job | None:
        return ws.get_job(target)

    def precheck(self, fresh: Any, active_jobs: ActiveJobs) -> str | None:
        if not isinstance(fresh, Job):
            return "not a job (re-read)"
        if fresh.status.lower() != "notresponding":
            return f"status is now {fresh.status} (re-read)"
        since = fresh.modified_at.isoformat() if fresh.modified_at else ""
        if self.seen_since is not None and since != self.seen_since:
            return "its status changed since it was judged (re-read)"
        return None

    def execute(self, target: str, ws: WorkspacePort) -> None:
        ws.cancel_job(target)

    def verify(self, fresh: Any) -> str | None:
        if fresh is None or (isinstance(fresh, Job) and fresh.status.lower() in ("cancelrequested", "canceled")):
            return None
        return f"verification: status is {fresh.status if isinstance(fresh, Job) else '?'} after the cancel"


_STARTS = ("start", "restart", "create")
# Our own stop shows on the instance as a Stop operation a little after the run's time (the write and its
# polling); one much later is somebody else's.
_OWN_OPERATION_SLACK = timedelta(minutes=30)


def _state(fresh: Compute | None) -> str:
    if fresh is None:
        return "gone"
    return fresh.state if isinstance(fresh, ComputeInstance) else "a cluster"



# --- bookkeeping --------------------------------------------------------------------------------


def _mark_and_tell(action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime, mode: Mode, *, state: str,
                   message: str, told: str, noun: str, recorded: str = "") -> tuple[Status, str]:
    """Place a mark once a channel has taken its message (`told`: how the owner was reached, `noun`: what
    was sent; `recorded`: a prefix of the mark's reason). The outcome says truthfully whether the owner
    was reached on their own webhook (NOTIFY_OWNER_WEBHOOKS). With no channel at all the mark is placed
    and says plainly that nobody was told."""
    mark = Mark(action.key, now, recorded + action.reason, mode)
    routed = notifier.reaches(action.owner)
    if not notifier.channels and not routed:
        ledger.put_mark(mark)
        who = f"owner {action.owner} not {told}" if action.owner else f"nobody {told}"
        return Status.DONE, f"marked {state}; {who}: no notification channel is configured"
    sent = notifier.send(Outcome(action, Status.DONE, message, now))
    if not sent:
        tried = ", ".join([*notifier.channels, *([OWNER_CHANNEL] if routed else [])])
        return Status.FAILED, f"the {noun} reached no channel ({tried}): not marked; tried again at the next sweep"
    ledger.put_mark(mark)
    return Status.DONE, f"marked {state}; {_reach(action.owner, routed, sent, told, noun)}"


@dataclass(frozen=True)
class MarkIdle(Bookkeeping):
    """Mark an instance idle and warn: the grace period before a stop starts when the warning is out.

    With channels configured, the mark is placed only once a channel has taken the warning (a
    failed warning is tried again at the next sweep, so nobody is stopped unwarned). With no channel
    configured the mark is placed and says plainly that nobody was warned.
    """

    kind = ActionKind.MARK_IDLE
    announced = False  # the warning is sent by `apply` itself
    warning = True

    def grace(self, settings: Any) -> timedelta | None:
        """The time left before the stop."""
        return timedelta(minutes=settings.idle_grace_minutes)

    def describe(self, target: str) -> str:
        return f"mark {target} idle"

    def apply(self, action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime,
              mode: Mode = Mode.ENFORCE) -> tuple[Status, str]:
        owner = f"owner {action.owner}" if action.owner else "no owner on record;"
        then = ("stops after the grace period unless used" if mode is Mode.ENFORCE
                else "would be stopped after the grace period (observe mode: nothing is stopped)")
        return _mark_and_tell(action, ledger, notifier, now, mode, state="idle", message=f"idle: {owner} {then}",
                              told="warned", noun="warning")


# How the mark of a failed deployment that was told it is not deleted begins: should its traffic drop to
# 0 %, it is marked afresh (told it will be deleted, and a new grace period starts) before any delete.
REPORTED_ONLY = "reported only: "


@dataclass(frozen=True)
class MarkFailedDeployment(Bookkeeping):
    """Mark a failed deployment and tell its owner why it failed (the reason): for one that receives no traffic
    (``deletable``) the grace period before its delete starts when a channel has taken the message, as for
    idle instances; one that receives traffic, or runs on Kubernetes, is marked only so it is told once."""

    kind = ActionKind.MARK_FAILED_DEPLOYMENT
    collection = "onlineEndpoints"
    announced = False  # the message is sent by `apply` itself
    warning = True  # the owner is told too
    deletable: bool = True

    def grace(self, settings: Any) -> timedelta | None:
        """The time left before the delete; none for a deployment that is never deleted."""
        return timedelta(minutes=settings.failed_deployment_grace_minutes) if self.deletable else None

    def describe(self, target: str) -> str:
        return f"mark failed deployment {target}"

    def apply(self, action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime,
              mode: Mode = Mode.ENFORCE) -> tuple[Status, str]:
        if not self.deletable:
            then = "reported only: it is never deleted while it receives traffic or runs on Kubernetes"
        elif mode is Mode.ENFORCE:
            then = "deleted after the grace period if still failed with no traffic"
        else:
            then = "would be deleted after the grace period (observe mode: nothing is deleted)"
        return _mark_and_tell(action, ledger, notifier, now, mode, state="failed", message=f"failed deployment: {then}",
                              told="told", noun="message", recorded="" if self.deletable else REPORTED_ONLY)


OWNER_CHANNEL = "owner webhook"  # the name the notifier gives an owner's own webhook


def _reach(owner: str | None, routed: bool, sent: list[str], told: str = "warned", noun: str = "warning") -> str:
    """Who a message reached, truthfully: the owner directly (delivered, no route, failed) and the channels."""
    channels = ", ".join(c for c in sent if c != OWNER_CHANNEL)
    if not owner:
        return f"{told} via {channels} (no owner on record)"
    if OWNER_CHANNEL in sent:
        return f"owner {owner} reached on their own webhook" + (f"; also sent via {channels}" if channels else "")
    missed = "their webhook failed" if routed else "no route for them in NOTIFY_OWNER_WEBHOOKS"
    return f"{noun} for owner {owner} sent via {channels}; owner not reached directly: {missed}"


@dataclass(frozen=True)
class ClearMark(Bookkeeping):
    kind = ActionKind.CLEAR_MARK
    announced = False  # housekeeping: recorded, not announced
    of: str = "computes"  # the collection of the marked target (a compute, or an online deployment)

    @property
    def collection(self) -> str:  # type: ignore[override]
        return self.of

    def describe(self, target: str) -> str:
        return f"clear the {'idle' if self.of == 'computes' else 'failure'} mark of {target}"

    def apply(self, action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime,
              mode: Mode = Mode.ENFORCE) -> tuple[Status, str]:
        ledger.clear_mark(action.key)
        return Status.DONE, "idle mark cleared"


@dataclass(frozen=True)
class Notify(Bookkeeping):
    """Tell the operator something the autopilot will not change on its own (``of``: the target's collection)."""

    kind = ActionKind.NOTIFY
    of: str = "computes"

    @property
    def collection(self) -> str:  # type: ignore[override]
        return self.of

    def describe(self, target: str) -> str:
        return f"notify about {target}"

    def apply(self, action: Action, ledger: LedgerPort, notifier: NotifierPort, now: datetime,
              mode: Mode = Mode.ENFORCE) -> tuple[Status, str]:
        return Status.DONE, "notified" if notifier.channels else "logged (no notification channel is configured)"


@dataclass(frozen=True)
class RotateCredential(Change):
    """A credential rotation's outcome (the rotation itself is the state machine of shared/rotation.py)."""

    kind = ActionKind.ROTATE_CREDENTIAL
    collection = "secrets"

    def describe(self, target: str) -> str:
        return f"rotate {target}"


REGISTRY: Mapping[ActionKind, type[Change]] = {
    cls.kind: cls for cls in (StopInstance, SetIdleShutdown, ScaleCluster, MarkIdle, ClearMark, Notify, RotateCredential,
                              MarkFailedDeployment, DeleteDeployment, CancelJob)
}


def change_from(kind: str, params: Mapping[str, Any]) -> Change:
    """Rebuild an action kind from its ledger record (kind and parameters); ValueError when it is not one."""
    try:
        cls = REGISTRY[ActionKind(kind)]
    except ValueError:
        raise ValueError(f"unknown action kind {kind!r}") from None
    names = set(getattr(cls, "__dataclass_fields__", {}))
    try:
        return cls(**{k: v for k, v in params.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from None

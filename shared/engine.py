"""The imperative shell: gather the live state, ask policy, apply the actions under guards.

Guards on every Azure write, in order: blast-radius caps (per run, per rolling hour), a cooldown
per resource, a ledger claim (idempotency under duplicate and concurrent deliveries), a re-read
of the resource just before the write (its state, exemption and jobs may have changed), the
write itself only in enforce mode, a check that it took, and one outcome record.

One resource's failure never aborts the batch. Transient failures (throttling, 5xx, timeouts)
are recorded, their claims released for retry, and raised after the batch so the platform
retries the work item; permanent failures are recorded and acknowledged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.model import (
    Action,
    ActionKind,
    Cluster,
    ComputeInstance,
    CpuActivity,
    Decision,
    Job,
    Mark,
    Mode,
    Outcome,
    ResourceId,
    Status,
    Usage,
    Verdict,
    human,
)
from shared.outcome_log import tell
from shared.policy.clusters import ClusterRules, judge_cluster, judge_unusable
from shared.policy.common import Exemptions, exemption_reason
from shared.policy.idle import IdleRules, judge_idle_shutdown, judge_instance, threshold_for
from shared.policy.quota import cluster_candidate, family_of, instance_candidate, relieve
from shared.settings import Settings
from shared.work import Kind, WorkItem

log = logging.getLogger("autopilot.engine")


# --- ports -------------------------------------------------------------------------------------


class WorkspacePort(Protocol):
    id: ResourceId

    def list_computes(self) -> list[ComputeInstance | Cluster]: ...
    def get_compute(self, name: str) -> ComputeInstance | Cluster | None: ...
    def list_jobs(self) -> list[Job]: ...
    def location(self) -> str: ...
    def list_usages(self, location: str) -> list[Usage]: ...
    def vm_sizes(self, location: str) -> dict[str, tuple[str, int]]: ...
    def stop_instance(self, name: str) -> None: ...
    def set_scale(self, name: str, min_nodes: int, max_nodes: int, idle_s: int | None) -> None: ...
    def set_idle_shutdown(self, name: str, minutes: int) -> None: ...


class MetricsPort(Protocol):
    def cpu_activity(self, workspace: ResourceId, region: str, names: Iterable[str], now: datetime,
                     lookback: timedelta, busy_percent: float) -> dict[str, CpuActivity]: ...


class LedgerPort(Protocol):
    def claim(self, key: str, now: datetime, **fields: Any) -> Any: ...
    def settle(self, claim: Any, status: Status | str, detail: str, *, retry: bool = False) -> None: ...
    def marks(self) -> dict[str, Mark]: ...
    def put_mark(self, mark: Mark) -> None: ...
    def clear_mark(self, compute_key: str) -> None: ...
    def last_write(self, resource_key: str) -> datetime | None: ...
    def note_write(self, resource_key: str, at: datetime) -> None: ...
    def writes_since(self, since: datetime) -> int: ...
    def restores(self) -> dict[str, tuple[int, datetime]]: ...
    def put_restore(self, cluster_key: str, max_nodes: int, at: datetime) -> None: ...
    def clear_restore(self, cluster_key: str) -> None: ...
    def record(self, outcome: Outcome) -> None: ...


class NotifierPort(Protocol):
    def send(self, outcome: Outcome) -> None: ...


class TransientFailure(Exception):
    """Some writes failed transiently; raised after the batch so the platform retries the work item."""


# --- reports -------------------------------------------------------------------------------------


@dataclass
class Report:
    item: WorkItem
    verdicts: list[Verdict] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: outcome counts, or — when nothing was done — what each rule concluded and why."""
        counts = Counter(o.status.value for o in self.outcomes)
        head = f"{self.item.kind.value} {ResourceId.parse(self.item.target).name}: "
        if counts:
            body = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            said = list(self.notes)
        else:
            body = "no actions"
            said = [f"{v.target} {v.decision.value} ({v.reason})" for v in self.verdicts] + self.notes
        return head + body + (": " + "; ".join(said) if said else "")


@dataclass(frozen=True)
class Rules:
    idle: IdleRules
    clusters: ClusterRules

    @classmethod
    def from_settings(cls, s: Settings) -> Rules:
        exemptions = Exemptions(s.exempt_tag, s.exempt_name_pattern)
        return cls(
            IdleRules(timedelta(minutes=s.idle_threshold_minutes), timedelta(minutes=s.idle_grace_minutes),
                      timedelta(minutes=s.min_uptime_minutes), s.no_metrics_means_idle, s.idle_threshold_tag,
                      s.idle_shutdown_minutes, exemptions),
            ClusterRules(timedelta(minutes=s.cluster_idle_minutes), s.cluster_max_scale_down_seconds, exemptions),
        )


@dataclass
class _Snapshot:
    """The live state a work item gathered."""

    instances: list[ComputeInstance]
    clusters: list[Cluster]
    jobs: list[Job]
    location: str


class Engine:
    def __init__(self, settings: Settings, workspace: Callable[[ResourceId], WorkspacePort], metrics: MetricsPort,
                 ledger: LedgerPort, notifier: NotifierPort) -> None:
        self.settings = settings
        self.rules = Rules.from_settings(settings)
        self.workspace = workspace
        self.metrics = metrics
        self.ledger = ledger
        self.notifier = notifier

    # --- gather ------------------------------------------------------------------------------

    def _snapshot(self, ws: WorkspacePort) -> _Snapshot:
        computes = ws.list_computes()
        instances = [c for c in computes if isinstance(c, ComputeInstance)]
        clusters = [c for c in computes if isinstance(c, Cluster)]
        jobs = ws.list_jobs() if computes else []
        location = ws.location() if instances else ""  # the metrics endpoint is regional
        return _Snapshot(instances, clusters, jobs, location)

    def _cpu(self, ws: WorkspacePort, snap: _Snapshot, now: datetime, notes: list[str]) -> dict[str, CpuActivity]:
        running = [i for i in snap.instances if i.state.lower() == "running"]
        if not running:
            return {}
        lookback = max(threshold_for(i, self.rules.idle)[0] for i in running) + timedelta(hours=1)
        try:
            return self.metrics.cpu_activity(ws.id, snap.location, [i.name for i in running], now, lookback,
                                             self.settings.cpu_busy_percent)
        except Exception as exc:
            # Without metrics the policy falls back to NO_METRICS_MEANS (busy by default): safe.
            notes.append(f"CPU metrics unavailable ({exc}); instances judged as having no metric data")
            return {}

    def _idle_verdicts(self, snap: _Snapshot, cpu: dict[str, CpuActivity], marks: dict[str, Mark], now: datetime) -> list[Verdict]:
        verdicts = []
        for inst in snap.instances:
            verdicts.append(judge_instance(inst, snap.jobs, cpu.get(inst.name, CpuActivity(False, None)), marks.get(inst.key),
                                           self.rules.idle, now))
        return verdicts

    def plan(self, workspace: ResourceId, now: datetime, marks: dict[str, Mark] | None = None,
             restores: dict[str, int] | None = None) -> tuple[list[Verdict], list[str]]:
        """Every rule's verdict on a workspace, read-only: what a sweep would do now."""
        ws = self.workspace(workspace)
        notes: list[str] = []
        snap = self._snapshot(ws)
        cpu = self._cpu(ws, snap, now, notes)
        verdicts = self._idle_verdicts(snap, cpu, marks or {}, now)
        verdicts += [judge_idle_shutdown(i, self.rules.idle) for i in snap.instances]
        verdicts += [judge_cluster(c, snap.jobs, self.rules.clusters, now, (restores or {}).get(c.key)) for c in snap.clusters]
        return verdicts, notes

    # --- run ---------------------------------------------------------------------------------

    def run(self, item: WorkItem, now: datetime) -> Report:
        """Gather → decide → apply for one work item."""
        workspace = ResourceId.parse(item.target)
        ws = self.workspace(workspace)
        report = Report(item)
        handler = {
            Kind.IDLE_SWEEP: self._idle_sweep,
            Kind.CLUSTER_SWEEP: self._cluster_sweep,
            Kind.RUN_ENDED: self._run_ended,
            Kind.UNUSABLE_NODES: self._unusable,
            Kind.QUOTA: self._quota,
        }.get(item.kind)
        if handler is None:
            raise ValueError(f"work item kind {item.kind.value} is not a compute remediation")
        handler(ws, item, now, report)
        transient = self._apply(ws, report, now)
        if transient:
            raise TransientFailure(f"{transient} action(s) failed transiently; the work item will be retried")
        return report

    def _idle_sweep(self, ws: WorkspacePort, item: WorkItem, now: datetime, report: Report) -> None:
        snap = self._snapshot(ws)
        cpu = self._cpu(ws, snap, now, report.notes)
        verdicts = self._idle_verdicts(snap, cpu, self.ledger.marks(), now)
        report.verdicts += verdicts + [judge_idle_shutdown(i, self.rules.idle) for i in snap.instances]
        running = [v for v, i in zip(verdicts, snap.instances, strict=True) if i.state.lower() == "running"]
        if running and not any(v.decision in (Decision.WAIT, Decision.ACT) for v in running):
            # The inventory has running instances but none qualifies: say why, so an operator can tell
            # "all busy" from "no CPU metrics reach us".
            report.notes.append(f"{len(running)} running instance(s), none idle: " + "; ".join(f"{v.target}: {v.reason}" for v in running))

    def _restores(self, clusters: Iterable[Cluster], now: datetime, notes: list[str]) -> dict[str, int]:
        """Pending max-node restores of recycled clusters.

        One whose cluster no longer sits at max 0 is dropped (the recycle failed, or an operator has
        changed the cluster since) — but only once it is older than a claim's lease, so a recycle
        whose PATCH is in flight right now is never forgotten.
        """
        from shared.ledger import LEASE

        pending = self.ledger.restores()
        for cluster in clusters:
            entry = pending.get(cluster.key)
            if entry and cluster.max_nodes > 0 and now - entry[1] > LEASE:
                self.ledger.clear_restore(cluster.key)
                notes.append(f"{cluster.name}: recycle no longer in effect (max nodes {cluster.max_nodes}); restore dropped")
                del pending[cluster.key]
        return {key: max_nodes for key, (max_nodes, _) in pending.items() if key in {c.key for c in clusters}}

    def _cluster_sweep(self, ws: WorkspacePort, item: WorkItem, now: datetime, report: Report) -> None:
        snap = self._snapshot(ws)
        restores = self._restores(snap.clusters, now, report.notes)
        report.verdicts += [judge_cluster(c, snap.jobs, self.rules.clusters, now, restores.get(c.key)) for c in snap.clusters]
        with_min = [c for c in snap.clusters if c.min_nodes > 0]
        if with_min and not any(a.kind is ActionKind.SCALE_CLUSTER for v in report.verdicts for a in v.actions):
            report.notes.append(f"{len(with_min)} cluster(s) hold nodes at min > 0, none selected: " +
                                "; ".join(f"{v.target}: {v.reason}" for v in report.verdicts if v.target in {c.name for c in with_min}))

    def _run_ended(self, ws: WorkspacePort, item: WorkItem, now: datetime, report: Report) -> None:
        run = str(item.params.get("run", ""))
        jobs = ws.list_jobs()
        job = next((j for j in jobs if j.name == run), None)
        if job is None:
            report.notes.append(f"run {run} not found in {ws.id.name}: skipped (already gone or archived)")
            return
        if job.compute is None:
            report.notes.append(f"run {run} ran on serverless compute: nothing to check")
            return
        compute = ws.get_compute(job.compute)
        if compute is None:
            report.notes.append(f"run {run} ran on {job.compute}, which no longer exists: skipped, already gone")
            return
        if isinstance(compute, ComputeInstance):
            report.notes.append(f"run {run} ran on instance {compute.name}: the idle sweep judges instances")
            return
        restore = self._restores([compute], now, report.notes).get(compute.key)
        report.verdicts.append(judge_cluster(compute, jobs, self.rules.clusters, now, restore))

    def _unusable(self, ws: WorkspacePort, item: WorkItem, now: datetime, report: Report) -> None:
        name = item.params.get("cluster")
        jobs = ws.list_jobs()
        if name:
            compute = ws.get_compute(str(name))
            if compute is None:
                report.notes.append(f"cluster {name} no longer exists: skipped, already gone")
                return
            if not isinstance(compute, Cluster):
                report.notes.append(f"{name} is not a cluster: unusable-nodes alert ignored")
                return
            clusters = [compute]
        else:
            clusters = [c for c in ws.list_computes() if isinstance(c, Cluster) and c.unusable_nodes > 0]
            if not clusters:
                report.notes.append("alert without ClusterName and no cluster has unusable nodes now")
        report.verdicts += [judge_unusable(c, jobs, self.rules.clusters) for c in clusters]

    def _quota(self, ws: WorkspacePort, item: WorkItem, now: datetime, report: Report) -> None:
        family = str(item.params.get("family") or "")
        if not family:
            report.notes.append("quota alert without VmFamilyName: cannot tell which cores to free")
            return
        snap = self._snapshot(ws)
        location = snap.location or ws.location()
        usage = next((u for u in ws.list_usages(location) if u.family.lower() == family.lower()), None)
        if usage is None:
            report.notes.append(f"no usage reported for family {family} in {location}: skipped")
            return
        sizes = ws.vm_sizes(location)
        cpu = self._cpu(ws, snap, now, report.notes)
        marks = self.ledger.marks()
        candidates = []
        def of_family(size: str) -> bool:
            return (family_of(size, sizes) or "").lower() == family.lower()

        for cluster in snap.clusters:
            if of_family(cluster.size) and not exemption_reason(cluster.name, cluster.tags, self.rules.clusters.exemptions):
                seen = [j.last_seen_at for j in snap.jobs if j.compute == cluster.name and j.last_seen_at]
                idle_for = now - max(seen) if seen else timedelta(days=365)
                cand = cluster_candidate(cluster, snap.jobs, sizes, int(idle_for.total_seconds() // 60),
                                         self.rules.clusters.max_scale_down_s)
                if cand:
                    candidates.append(cand)
        for inst in snap.instances:
            if of_family(inst.size):
                verdict = judge_instance(inst, snap.jobs, cpu.get(inst.name, CpuActivity(False, None)), marks.get(inst.key),
                                         self.rules.idle, now)
                cand = instance_candidate(inst, verdict, sizes, 0)
                if cand:
                    candidates.append(cand)
        report.verdicts.append(relieve(usage, self.settings.quota_target_percent, candidates))

    # --- apply -------------------------------------------------------------------------------

    def _apply(self, ws: WorkspacePort, report: Report, now: datetime) -> int:
        """Carry out every verdict's actions; return how many failed transiently."""
        writes = 0
        transient = 0
        trigger = report.item.trigger
        for verdict in report.verdicts:
            for action in verdict.actions:
                if action.kind.writes_to_azure:
                    outcome, wrote, retry = self._guarded_write(ws, action, trigger, writes, now)
                    writes += wrote
                    transient += retry
                else:
                    outcome = self._ledger_action(action, trigger, now)
                self._tell(outcome, report)
        return transient

    def _tell(self, outcome: Outcome, report: Report) -> None:
        # Clearing a mark is housekeeping: recorded, not announced.
        quiet = outcome.action.kind is ActionKind.CLEAR_MARK
        tell(outcome, report.outcomes, self.ledger, None if quiet else self.notifier)

    def _ledger_action(self, action: Action, trigger: str, now: datetime) -> Outcome:
        if action.kind is ActionKind.MARK_IDLE:
            self.ledger.put_mark(Mark(action.key, now, action.reason))
            owner = f"owner {action.owner} warned" if action.owner else "no owner on record to warn"
            return Outcome(action, Status.DONE, f"marked idle; {owner}", now, trigger)
        if action.kind is ActionKind.CLEAR_MARK:
            self.ledger.clear_mark(action.key)
            return Outcome(action, Status.DONE, "idle mark cleared", now, trigger)
        return Outcome(action, Status.DONE, "notified", now, trigger)

    def _guarded_write(self, ws: WorkspacePort, action: Action, trigger: str, writes: int, now: datetime) -> tuple[Outcome, int, int]:
        """(outcome, 1 if it counts against the per-run cap, 1 if it failed transiently)."""
        from shared.adapters.azure import AzureError, Conflict, Gone

        s = self.settings
        enforce = s.mode is Mode.ENFORCE

        def out(status: Status, detail: str) -> Outcome:
            return Outcome(action, status, detail, now, trigger)

        # In observe mode a would-be write is reported once a day, not at every sweep that still finds it.
        scope = trigger if enforce else f"{now:%Y-%m-%d}"
        claim = self.ledger.claim(f"{s.mode.value}|{scope}|{action.kind.value}|{action.key}", now,
                                  Action=action.kind.value, Target=action.key, Trigger=trigger)
        if isinstance(claim, str):
            return out(Status.SKIPPED, f"duplicate: {claim}"), 0, 0
        capped = self._capped(action, writes, now)
        if capped:
            self.ledger.settle(claim, Status.SKIPPED, capped)
            return out(Status.SKIPPED, capped), 0, 0
        try:
            fresh = ws.get_compute(action.target)
            skip = self._precheck(ws, action, fresh)
            if skip:
                self.ledger.settle(claim, Status.SKIPPED, skip)
                return out(Status.SKIPPED, skip), 0, 0
            if not enforce:
                detail = f"observe mode: would {_verb(action)}"
                self.ledger.settle(claim, Status.PLANNED, detail)
                return out(Status.PLANNED, detail), 1, 0
            if action.param("restore_max") is not None:
                # Remembered before the write: even if this run dies right after it, the cluster
                # sweep knows the max nodes to give back.
                self.ledger.put_restore(action.key, int(action.param("restore_max")), now)  # type: ignore[arg-type]
            self._write(ws, action)
            self.ledger.note_write(f"{action.kind.value}|{action.key}", now)
            problem = self._verify(ws, action)
            if not problem and action.param("restore"):
                self.ledger.clear_restore(action.key)
            status = Status.FAILED if problem else Status.DONE
            detail = problem or f"{_verb(action)}: verified"
            self.ledger.settle(claim, status, detail)
            return out(status, detail), 1, 0
        except Gone:
            self.ledger.settle(claim, Status.SKIPPED, "already gone")
            return out(Status.SKIPPED, "skipped: already gone"), 0, 0
        except Conflict as exc:
            self.ledger.settle(claim, Status.SKIPPED, str(exc))
            return out(Status.SKIPPED, f"another operation is in progress: {exc}"), 0, 0
        except AzureError as exc:
            self.ledger.settle(claim, Status.FAILED, str(exc), retry=exc.transient)
            kind = "transient, will retry" if exc.transient else "permanent"
            return out(Status.FAILED, f"{kind}: {exc}"), 1, int(exc.transient)

    def _capped(self, action: Action, writes: int, now: datetime) -> str | None:
        """Why the blast-radius caps or the cooldown hold this write back, or None."""
        s = self.settings
        enforce = s.mode is Mode.ENFORCE
        if writes >= s.max_actions_per_run:
            return f"cap: MAX_ACTIONS_PER_RUN={s.max_actions_per_run} reached"
        if enforce and self.ledger.writes_since(now - timedelta(hours=1)) >= s.max_actions_per_hour:
            return f"cap: MAX_ACTIONS_PER_HOUR={s.max_actions_per_hour} reached"
        # Cooldown is per resource and kind of change: setting idle shutdown must not delay a due stop.
        last = self.ledger.last_write(f"{action.kind.value}|{action.key}")
        if enforce and last and now - last < timedelta(minutes=s.cooldown_minutes) and not action.param("restore"):
            return f"cooldown: last write {human(now - last)} ago (COOLDOWN_MINUTES={s.cooldown_minutes})"
        return None

    def _precheck(self, ws: WorkspacePort, action: Action, fresh: ComputeInstance | Cluster | None) -> str | None:
        """Re-read just before the write: a reason not to write, or None."""
        from shared.adapters.azure import Gone

        if fresh is None:
            raise Gone(f"{action.target}: not found")
        exempt = exemption_reason(fresh.name, fresh.tags, self.rules.idle.exemptions)
        if exempt:
            return f"{exempt} (re-read)"
        if action.kind is ActionKind.STOP_INSTANCE:
            if not isinstance(fresh, ComputeInstance):
                return "not a compute instance (re-read)"
            if fresh.state.lower() != "running":
                return f"state is now {fresh.state} (re-read)"
            busy = [j for j in ws.list_jobs() if j.compute == fresh.name and j.active]
            if busy:
                return f"job {busy[0].name} is {busy[0].status} on it now (re-read)"
            return None
        if action.kind is ActionKind.SET_IDLE_SHUTDOWN:
            if not isinstance(fresh, ComputeInstance):
                return "not a compute instance (re-read)"
            wanted = int(action.param("minutes"))  # type: ignore[arg-type]
            if fresh.state.lower() not in ("running", "stopped"):
                return f"state is now {fresh.state}; settings change only when settled (re-read)"
            if fresh.idle_shutdown_minutes and fresh.idle_shutdown_minutes <= wanted:
                return f"native idle shutdown is already {fresh.idle_shutdown_minutes}m (re-read)"
            return None
        if not isinstance(fresh, Cluster):
            return "not a cluster (re-read)"
        want = (action.param("min_nodes"), action.param("max_nodes"), action.param("idle_s"))
        if (fresh.min_nodes, fresh.max_nodes, fresh.idle_before_scale_down_s) == want:
            return "already at the wanted scale settings (re-read)"
        shrinking = int(want[0]) < fresh.min_nodes or int(want[1]) < fresh.max_nodes  # type: ignore[arg-type]
        if shrinking:
            busy = [j for j in ws.list_jobs() if j.compute == fresh.name and j.active]
            if busy:
                return f"job {busy[0].name} is {busy[0].status} on it now (re-read)"
        return None

    def _write(self, ws: WorkspacePort, action: Action) -> None:
        if action.kind is ActionKind.STOP_INSTANCE:
            ws.stop_instance(action.target)
        elif action.kind is ActionKind.SET_IDLE_SHUTDOWN:
            ws.set_idle_shutdown(action.target, int(action.param("minutes")))  # type: ignore[arg-type]
        else:
            idle = action.param("idle_s")
            ws.set_scale(action.target, int(action.param("min_nodes")), int(action.param("max_nodes")),  # type: ignore[arg-type]
                         None if idle is None else int(idle))  # type: ignore[arg-type]

    def _verify(self, ws: WorkspacePort, action: Action) -> str | None:
        """Re-read after the write: None when it took, else what is wrong."""
        fresh = ws.get_compute(action.target)
        if fresh is None:
            return "verification: the compute vanished after the write"
        if action.kind is ActionKind.STOP_INSTANCE:
            if isinstance(fresh, ComputeInstance) and fresh.state.lower() in ("stopped", "stopping"):
                return None  # the next sweep clears the idle mark of a stopped instance
            return f"verification: state is {getattr(fresh, 'state', '?')} after stop"
        if action.kind is ActionKind.SET_IDLE_SHUTDOWN:
            wanted = int(action.param("minutes"))  # type: ignore[arg-type]
            if isinstance(fresh, ComputeInstance) and fresh.idle_shutdown_minutes == wanted:
                return None
            return f"verification: idle shutdown is {getattr(fresh, 'idle_shutdown_minutes', '?')}m, wanted {wanted}m"
        want = (action.param("min_nodes"), action.param("max_nodes"))
        if isinstance(fresh, Cluster) and (fresh.min_nodes, fresh.max_nodes) == want:
            return None
        got = (getattr(fresh, "min_nodes", "?"), getattr(fresh, "max_nodes", "?"))
        return f"verification: scale is min {got[0]} max {got[1]}, wanted min {want[0]} max {want[1]}"


def _verb(action: Action) -> str:
    if action.kind is ActionKind.STOP_INSTANCE:
        return f"stop {action.target}"
    if action.kind is ActionKind.SET_IDLE_SHUTDOWN:
        return f"set idle shutdown of {action.target} to {action.param('minutes')}m"
    idle = action.param("idle_s")
    return (f"scale {action.target} to min {action.param('min_nodes')} max {action.param('max_nodes')}"
            + (f", scale down after {idle}s" if idle is not None else ""))

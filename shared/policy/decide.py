"""The one decision function: a work item's kind, its parameters and the gathered state → verdicts.

The worker, ``autopilot plan`` and the benchmarks all call ``decide``; the engine only gathers
what ``NEEDS`` says a kind reads and applies what comes back. Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.actions import ClearMark
from shared.model import (
    CPU_UNAVAILABLE,
    NO_CPU_DATA,
    Action,
    Cluster,
    ComputeInstance,
    CpuActivity,
    Decision,
    Job,
    Mark,
    OnlineDeployment,
    OnlineEndpoint,
    OtherCompute,
    ResourceId,
    Usage,
    Verdict,
    name_key,
    same_name,
)
from shared.policy.clusters import RULE as CLUSTER_RULE
from shared.policy.clusters import ClusterRules, judge_cluster, judge_unusable
from shared.policy.common import Exemptions, exemption_reason
from shared.policy.deployments import RULE as DEPLOYMENT_RULE
from shared.policy.deployments import DeploymentRules, judge_deployment
from shared.policy.idle import RULE as IDLE_RULE
from shared.policy.idle import IdleRules, judge_idle_shutdown, judge_instance, threshold_for
from shared.policy.inventory import Row, inventory
from shared.policy.quota import cluster_candidate, family_of, instance_candidate, relieve
from shared.policy.runs import judge_not_responding, not_responding
from shared.settings import Settings


class Purpose(StrEnum):
    """Why the state is gathered: the work item kinds of the compute engine, and a read-only plan."""

    IDLE_SWEEP = "idle-sweep"
    CLUSTER_SWEEP = "cluster-sweep"
    RUN_ENDED = "run-ended"
    UNUSABLE_NODES = "unusable-nodes"
    QUOTA = "quota"
    DEPLOYMENT_SWEEP = "deployment-sweep"
    NOT_RESPONDING = "not-responding"
    PLAN = "plan"


@dataclass(frozen=True)
class Needs:
    """What a purpose reads besides the computes and their jobs (the engine gathers exactly this)."""

    cpu: bool = False
    marks: bool = False
    restores: bool = False
    quota: bool = False
    deployments: bool = False  # online endpoints and their deployments (not computes, not jobs)
    logs: bool = False  # the log tail of each failed deployment not yet marked (to say why it failed)


NEEDS: Mapping[Purpose, Needs] = {
    Purpose.IDLE_SWEEP: Needs(cpu=True, marks=True),
    Purpose.CLUSTER_SWEEP: Needs(restores=True),
    Purpose.RUN_ENDED: Needs(restores=True),
    Purpose.UNUSABLE_NODES: Needs(),
    Purpose.QUOTA: Needs(cpu=True, marks=True, quota=True),
    Purpose.DEPLOYMENT_SWEEP: Needs(marks=True, deployments=True, logs=True),
    Purpose.NOT_RESPONDING: Needs(),
    Purpose.PLAN: Needs(cpu=True, marks=True, restores=True, quota=True, deployments=True),
}


@dataclass(frozen=True)
class Rules:
    idle: IdleRules
    clusters: ClusterRules
    quota_target_percent: int = 80
    deployments: DeploymentRules = field(default_factory=lambda: DeploymentRules(timedelta(hours=2), Exemptions("autopilot-exempt")))
    cancel_not_responding_after: timedelta | None = None  # None: never cancel (the opt-in is off)

    @classmethod
    def from_settings(cls, s: Settings) -> Rules:
        exemptions = Exemptions(s.exempt_tag, s.exempt_name_pattern)
        return cls(
            IdleRules(timedelta(minutes=s.idle_threshold_minutes), timedelta(minutes=s.idle_grace_minutes),
                      timedelta(minutes=s.min_uptime_minutes), s.no_metrics_means_idle, s.idle_threshold_tag,
                      s.idle_shutdown_minutes, exemptions),
            ClusterRules(timedelta(minutes=s.cluster_idle_minutes), s.cluster_max_scale_down_seconds, exemptions),
            s.quota_target_percent,
            DeploymentRules(timedelta(minutes=s.failed_deployment_grace_minutes), exemptions),
            timedelta(minutes=s.not_responding_cancel_minutes) if s.not_responding_cancel_minutes else None,
        )


# Whose jobs each purpose judges: a sweep of instances reads the jobs of the running ones only
# (a stopped instance is never acted on), a sweep of clusters those of the clusters.
_JUDGES: dict[Purpose, tuple[bool, bool]] = {  # purpose → (running instances, clusters)
    Purpose.IDLE_SWEEP: (True, False),
    Purpose.CLUSTER_SWEEP: (False, True),
    Purpose.RUN_ENDED: (False, True),
    Purpose.UNUSABLE_NODES: (False, True),
    Purpose.QUOTA: (True, True),
}
# A job that ended this long before a threshold's start is still read: a clock apart, a run
# finalised late, never decide on the edge.
LOOKBACK_MARGIN = timedelta(minutes=15)


def judged_by(purpose: Purpose, params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime) -> list[str] | None:
    """The computes whose jobs `purpose` must read, judged on `snap` gathered without jobs; None when
    it needs the workspace's every job (the plan's inventory shows serverless jobs; a not-responding
    alert reads every job).

    A job can only keep a compute: an active one keeps it outright, a finished one moves the start of
    idleness later. So a compute the rules that read jobs (idle instances, cluster size) keep or skip
    without its jobs is kept or skipped with them, and only the others are read — for the sweeps, whose verdicts name their compute; every judged
    compute for the purposes whose verdicts do not (quota relief: those of the alert's VM family) or
    that name one (a run's end, a cluster's unusable nodes).
    """
    judges = _JUDGES.get(purpose)
    if judges is None:
        return None
    instances, clusters = judges
    names = [c.name for c in snap.computes
             if (instances and isinstance(c, ComputeInstance) and c.state.lower() == "running")
             or (clusters and isinstance(c, Cluster))]
    if purpose is Purpose.QUOTA:
        # Quota relief frees cores of the alert's VM family only: the other computes' jobs cannot matter.
        family = str(params.get("family") or "")
        sized = {name_key(c.name): c.size for c in snap.computes if isinstance(c, ComputeInstance | Cluster)}
        names = [name for name in names if same_name(family_of(sized[name_key(name)], snap.sizes) or "", family)]
    if purpose in (Purpose.IDLE_SWEEP, Purpose.CLUSTER_SWEEP):
        moving = {name_key(v.target) for v in decide(purpose, params, replace(snap, jobs=()), rules, now).verdicts
                  if v.rule in (IDLE_RULE, CLUSTER_RULE) and v.decision not in (Decision.KEEP, Decision.SKIP)}
        names = [name for name in names if name_key(name) in moving]
    return names


def lookback(snap: Snapshot, rules: Rules, now: datetime) -> timedelta:
    """How long ago a job may have ended and still change a verdict: the longest idle threshold in
    force on these computes (an instance's own tag included), or back to the oldest idle mark among
    them (a job that ran after the mark clears it), and a margin. A job that ended earlier cannot
    keep anything: every rule that reads job ends compares them with a threshold or a mark."""
    spans = [rules.idle.threshold, rules.clusters.idle]
    spans += [threshold_for(c, rules.idle)[0] for c in snap.computes if isinstance(c, ComputeInstance)]
    spans += [now - m.marked_at for c in snap.computes if (m := snap.marks.get(c.key)) is not None]
    return max(spans) + LOOKBACK_MARGIN


@dataclass(frozen=True)
class Snapshot:
    """The live state one work item gathered. ``cpu`` is None when the metrics could not be read."""

    workspace: ResourceId
    computes: tuple[ComputeInstance | Cluster | OtherCompute, ...] = ()
    jobs: tuple[Job, ...] = ()
    cpu: Mapping[str, CpuActivity] | None = field(default_factory=dict)  # name key → activity
    marks: Mapping[str, Mark] = field(default_factory=dict)  # compute or deployment key → mark
    restores: Mapping[str, int] = field(default_factory=dict)  # cluster key → max nodes to give back
    usages: tuple[Usage, ...] = ()
    sizes: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    found: str = ""  # what gathering could not find, said once (a vanished run or compute)
    job_horizon: datetime | None = None  # the newest job creation time the listing saw (for the re-read)
    jobs_since: datetime | None = None  # finished jobs are known only back to this time (None: all of them)
    endpoints: tuple[OnlineEndpoint, ...] = ()
    deployments: tuple[OnlineDeployment, ...] = ()
    logs: Mapping[str, str] = field(default_factory=dict)  # deployment key → its log tail, when read

    @property
    def instances(self) -> list[ComputeInstance]:
        return [c for c in self.computes if isinstance(c, ComputeInstance)]

    @property
    def clusters(self) -> list[Cluster]:
        return [c for c in self.computes if isinstance(c, Cluster)]

    def activity(self, instance: ComputeInstance) -> CpuActivity:
        if self.cpu is None:
            return CPU_UNAVAILABLE
        return self.cpu.get(name_key(instance.name), NO_CPU_DATA)


@dataclass
class Decided:
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inventory: list[Row] = field(default_factory=list)  # the plan's: every compute, serverless job and deployment


def decide(purpose: Purpose, params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime) -> Decided:
    """Every rule's verdict for this purpose on this state, with notes an operator needs to read them."""
    out = Decided()
    if snap.found:
        out.notes.append(snap.found)
        return out
    if snap.cpu is None and snap.instances:
        out.notes.append("CPU metrics could not be read: no instance is judged idle in this run")
    DECIDERS[purpose](params, snap, rules, now, out)
    return out


def _idle_verdicts(snap: Snapshot, rules: Rules, now: datetime) -> list[Verdict]:
    return [judge_instance(i, snap.jobs, snap.activity(i), snap.marks.get(i.key), rules.idle, now) for i in snap.instances]


def _idle_sweep(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    verdicts = _idle_verdicts(snap, rules, now)
    out.verdicts += verdicts + [judge_idle_shutdown(i, rules.idle) for i in snap.instances]
    running = [v for v, i in zip(verdicts, snap.instances, strict=True) if i.state.lower() == "running"]
    if running and not any(v.decision in (Decision.WAIT, Decision.ACT) for v in running):
        # Running instances but none qualifies: say why, so an operator can tell "all busy" from
        # "no CPU metrics reach us".
        out.notes.append(f"{len(running)} running instance(s), none idle: " + "; ".join(f"{v.target}: {v.reason}" for v in running))


def _cluster_sweep(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    out.verdicts += [judge_cluster(c, snap.jobs, rules.clusters, now, snap.restores.get(c.key), snap.jobs_since) for c in snap.clusters]
    with_min = [c for c in snap.clusters if c.min_nodes > 0]
    if with_min and not any(v.actions for v in out.verdicts):
        held = {name_key(c.name) for c in with_min}
        out.notes.append(f"{len(with_min)} cluster(s) hold nodes at min > 0, none selected: " +
                         "; ".join(f"{v.target}: {v.reason}" for v in out.verdicts if name_key(v.target) in held))


def _run_ended(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    run = str(params.get("run", ""))
    compute = snap.computes[0] if snap.computes else None
    if isinstance(compute, ComputeInstance):
        out.notes.append(f"run {run} ran on instance {compute.name}: the idle sweep judges instances")
    elif isinstance(compute, Cluster):
        out.verdicts.append(judge_cluster(compute, snap.jobs, rules.clusters, now, snap.restores.get(compute.key), snap.jobs_since))
    elif isinstance(compute, OtherCompute):
        out.notes.append(f"run {run} ran on {compute.compute_type} compute {compute.name}: left alone")


def _unusable(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    name = params.get("cluster")
    if name:
        target = next((c for c in snap.computes if same_name(c.name, str(name))), None)
        if not isinstance(target, Cluster):
            out.notes.append(f"{name} is not a cluster: unusable-nodes alert ignored")
            return
        clusters = [target]
    else:
        clusters = [c for c in snap.clusters if c.unusable_nodes > 0]
        if not clusters:
            out.notes.append("alert without ClusterName and no cluster has unusable nodes now")
    out.verdicts += [judge_unusable(c, snap.jobs, rules.clusters) for c in clusters]


def _quota(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    family = str(params.get("family") or "")
    if not family:
        out.notes.append("quota alert without VmFamilyName: cannot tell which cores to free")
        return
    usage = next((u for u in snap.usages if same_name(u.family, family)), None)
    if usage is None:
        out.notes.append(f"no usage reported for family {family}: skipped")
        return

    def of_family(size: str) -> bool:
        return same_name(family_of(size, snap.sizes) or "", family)

    candidates = []
    for cluster in snap.clusters:
        if of_family(cluster.size) and not exemption_reason(cluster.name, cluster.tags, rules.clusters.exemptions):
            seen = [j.last_seen_at for j in snap.jobs if j.runs_on(cluster.name) and j.last_seen_at]
            idle_for = now - max(seen) if seen else timedelta(days=365)
            cand = cluster_candidate(cluster, snap.jobs, snap.sizes, int(idle_for.total_seconds() // 60), rules.clusters.max_scale_down_s)
            if cand:
                candidates.append(cand)
    for inst in snap.instances:
        if of_family(inst.size):
            verdict = judge_instance(inst, snap.jobs, snap.activity(inst), snap.marks.get(inst.key), rules.idle, now)
            cand = instance_candidate(inst, verdict, snap.sizes, 0)
            if cand:
                candidates.append(cand)
    out.verdicts.append(relieve(usage, rules.quota_target_percent, candidates))


def _deployment_verdicts(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime) -> list[Verdict]:
    endpoints = {name_key(e.name): e for e in snap.endpoints}
    status_code = str(params.get("status_code") or "") or None
    verdicts = []
    for d in snap.deployments:
        siblings = [o for o in snap.deployments if same_name(o.endpoint, d.endpoint)]
        verdicts.append(judge_deployment(d, endpoints.get(name_key(d.endpoint)), siblings, snap.marks.get(d.key),
                                         snap.logs.get(d.key), status_code, snap.sizes, rules.deployments, now))
    return verdicts


def _deployment_sweep(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    out.verdicts += _deployment_verdicts(params, snap, rules, now)
    # A mark whose deployment is gone (deleted by someone, or by us before the mark was cleared) is cleared.
    prefix = f"{snap.workspace.key}/onlineendpoints/"
    present = {d.key for d in snap.deployments}
    for key in sorted(k for k in snap.marks if k.startswith(prefix) and k not in present):
        target = key[len(prefix):]
        reason = "the deployment is gone"
        clear = Action(ClearMark(of="onlineEndpoints"), snap.workspace, target, reason)
        out.verdicts.append(Verdict(DEPLOYMENT_RULE, target, Decision.SKIP, reason, (clear,)))
    if params.get("scenario") or params.get("status_code"):
        failed = [d.target for d in snap.deployments if d.failed]
        out.notes.append(f"Model Deploy Failed alert (Scenario={params.get('scenario') or '-'}, StatusCode="
                         f"{params.get('status_code') or '-'}): {len(failed)} failed deployment(s) now"
                         + (f": {', '.join(failed)}" if failed else " (it failed at creation and left nothing, or recovered)"))


def _not_responding(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    silent = [j for j in snap.jobs if not_responding(j)]
    run = str(params.get("run") or "")
    if run and not silent:
        job = next((j for j in snap.jobs if same_name(j.name, run)), None)
        out.notes.append(f"run {run} is {job.status} now: nothing to do" if job else f"run {run} not found: skipped (already gone)")
    elif not silent:
        out.notes.append("Not Responding Runs alert: no job is NotResponding now")
    out.verdicts += [judge_not_responding(snap.workspace, j, rules.cancel_not_responding_after, now) for j in silent]


def _plan(params: Mapping[str, Any], snap: Snapshot, rules: Rules, now: datetime, out: Decided) -> None:
    out.verdicts += _idle_verdicts(snap, rules, now)
    out.verdicts += [judge_idle_shutdown(i, rules.idle) for i in snap.instances]
    out.verdicts += [judge_cluster(c, snap.jobs, rules.clusters, now, snap.restores.get(c.key), snap.jobs_since) for c in snap.clusters]
    out.verdicts += _deployment_verdicts(params, snap, rules, now)
    out.inventory = inventory(snap.computes, snap.jobs, snap.deployments, out.verdicts, snap.sizes, snap.usages)


DECIDERS: Mapping[Purpose, Callable[[Mapping[str, Any], Snapshot, Rules, datetime, Decided], None]] = {
    Purpose.IDLE_SWEEP: _idle_sweep,
    Purpose.CLUSTER_SWEEP: _cluster_sweep,
    Purpose.RUN_ENDED: _run_ended,
    Purpose.UNUSABLE_NODES: _unusable,
    Purpose.QUOTA: _quota,
    Purpose.DEPLOYMENT_SWEEP: _deployment_sweep,
    Purpose.NOT_RESPONDING: _not_responding,
    Purpose.PLAN: _plan,
}

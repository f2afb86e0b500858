"""Compute clusters: scale to zero when unused, cap the idle time before scale down, recycle unusable nodes.

Only scale settings ever change (a PATCH of ``scaleSettings``): a full-entity PUT could drop the
subnet, identity or other fields set outside the autopilot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.actions import Notify, ScaleCluster
from shared.model import Action, Cluster, Decision, Job, Verdict, human
from shared.policy.common import Exemptions, exemption_reason

RULE = "cluster-size"
UNUSABLE_RULE = "unusable-nodes"


@dataclass(frozen=True)
class ClusterRules:
    idle: timedelta
    max_scale_down_s: int
    exemptions: Exemptions


def scale_action(cluster: Cluster, reason: str, change: ScaleCluster) -> Action:
    return Action(change, cluster.workspace, cluster.name, reason, tags=tuple(cluster.tags.items()))


def _jobs_on(cluster: Cluster, jobs: Iterable[Job]) -> list[Job]:
    return [job for job in jobs if job.runs_on(cluster.name)]


def judge_cluster(
    cluster: Cluster, jobs: Iterable[Job], rules: ClusterRules, now: datetime, pending_restore: int | None = None,
    jobs_since: datetime | None = None,
) -> Verdict:
    """Right-size one cluster.

    - exempt clusters are skipped;
    - a cluster recycled for unusable nodes gets its max nodes back once it has drained to zero;
    - min nodes above 0 with no active or queued job for the idle threshold → min 0
      (the last job's end, or the cluster's creation if later, marks the start of idleness; when finished
      jobs are known only since `jobs_since` and none ended since, idleness is said from then, no further);
    - an idle time before scale down above the cap → the cap (whatever the jobs).
    """
    exempt = exemption_reason(cluster.name, cluster.tags, rules.exemptions)
    if exempt:
        if pending_restore is not None and cluster.max_nodes == 0:
            # Hands off means hands off, even to give back; the operator is told what is left to do.
            exempt += f"; a recycle left max nodes at 0: set it back to {pending_restore} by hand"
        return Verdict(RULE, cluster.name, Decision.SKIP, exempt)
    if pending_restore is not None:
        if cluster.current_nodes == 0:
            reason = f"recycled for unusable nodes and drained; max nodes restored to {pending_restore}"
            action = scale_action(cluster, reason, ScaleCluster(0, pending_restore, cluster.idle_before_scale_down_s, restore=True, seen=(cluster.min_nodes, cluster.max_nodes)))
            return Verdict(RULE, cluster.name, Decision.ACT, reason, (action,))
        return Verdict(RULE, cluster.name, Decision.WAIT, f"recycling: {cluster.current_nodes} node(s) still draining; max {pending_restore} restored after")

    mine = _jobs_on(cluster, jobs)
    active = [job for job in mine if job.active]
    reasons: list[str] = []
    new_min, new_idle = cluster.min_nodes, cluster.idle_before_scale_down_s
    if cluster.min_nodes > 0:
        if active:
            reasons_keep = f"min nodes {cluster.min_nodes} kept: job {active[0].name} is {active[0].status}"
        else:
            # Idleness starts at the last job's end, never before the cluster itself was created (a job
            # of an earlier cluster of the same name says nothing about this one).
            seen = [job.last_seen_at for job in mine if job.last_seen_at]
            since = max([*seen, *([cluster.created_at] if cluster.created_at else [])], default=None)
            if not seen and jobs_since is not None and (since is None or since < jobs_since):
                # Jobs that ended before then were not read: what is known is the quiet since then, not since creation.
                since, quiet = jobs_since, f"no active or queued job in the last {human(now - jobs_since)}"
            else:
                quiet = "no job on record" if since is None else f"no active or queued job for {human(now - since)}"
            if since is None or now - since >= rules.idle:
                reasons.append(f"min nodes {cluster.min_nodes} → 0 ({quiet}, threshold {human(rules.idle)})")
                new_min = 0
                reasons_keep = ""
            else:
                reasons_keep = f"min nodes {cluster.min_nodes} kept: last job {human(now - since)} ago, threshold {human(rules.idle)}"
    else:
        reasons_keep = "min nodes already 0"
    if new_idle is None or new_idle > rules.max_scale_down_s:
        was = "unset" if new_idle is None else f"{new_idle}s"
        reasons.append(f"idle time before scale down {was} → {rules.max_scale_down_s}s (cap)")
        new_idle = rules.max_scale_down_s
    if not reasons:
        return Verdict(RULE, cluster.name, Decision.KEEP, f"{reasons_keep}; idle time before scale down {cluster.idle_before_scale_down_s}s within cap")
    reason = "; ".join(reasons + ([reasons_keep] if reasons_keep else []))
    action = scale_action(cluster, reason, ScaleCluster(new_min, cluster.max_nodes, new_idle, seen=(cluster.min_nodes, cluster.max_nodes)))
    return Verdict(RULE, cluster.name, Decision.ACT, reason, (action,))


def judge_unusable(cluster: Cluster, jobs: Iterable[Job], rules: ClusterRules) -> Verdict:
    """Unusable nodes: with no active job, scale the cluster to zero so the nodes are recycled
    (max nodes is restored by the next cluster sweep once it has drained); with active jobs,
    notify only — recycling would kill them.
    """
    exempt = exemption_reason(cluster.name, cluster.tags, rules.exemptions)
    if exempt:
        return Verdict(UNUSABLE_RULE, cluster.name, Decision.SKIP, exempt)
    if cluster.unusable_nodes == 0:
        return Verdict(UNUSABLE_RULE, cluster.name, Decision.SKIP, "no unusable nodes now (re-read); nothing to recycle")
    active = [job for job in _jobs_on(cluster, jobs) if job.active]
    if active:
        reason = f"{cluster.unusable_nodes} unusable node(s) but job {active[0].name} is {active[0].status}: notify only"
        action = Action(Notify(), cluster.workspace, cluster.name, reason, tags=tuple(cluster.tags.items()))
        return Verdict(UNUSABLE_RULE, cluster.name, Decision.KEEP, reason, (action,))
    if cluster.max_nodes == 0:
        return Verdict(UNUSABLE_RULE, cluster.name, Decision.SKIP, "max nodes already 0: already recycling")
    reason = f"{cluster.unusable_nodes} unusable node(s), no active job: scale to 0 to recycle, then restore max {cluster.max_nodes}"
    action = scale_action(cluster, reason, ScaleCluster(0, 0, cluster.idle_before_scale_down_s, restore_max=cluster.max_nodes,
                                                        seen=(cluster.min_nodes, cluster.max_nodes)))
    return Verdict(UNUSABLE_RULE, cluster.name, Decision.ACT, reason, (action,))

"""Quota relief: when a VM family nears its core quota, free cores held by idle compute.

Only compute that is already idle by the other rules is a candidate: a cluster with no active or
queued job (scaled to min 0), an instance idle past its threshold (stopped without waiting for the
grace period — quota pressure is the reason). Most cores first, until the projected utilization is
under the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.actions import ScaleCluster, StopInstance, operation_stamp
from shared.model import Action, Cluster, ComputeInstance, Decision, Job, Usage, Verdict
from shared.policy.clusters import scale_action
from shared.policy.idle import action_on

RULE = "quota-relief"


@dataclass(frozen=True)
class Candidate:
    action: Action
    cores: int
    idle_minutes: int


def family_of(size: str, sizes: Mapping[str, tuple[str, int]]) -> str | None:
    entry = sizes.get(size.lower())
    return entry[0] if entry else None


def cluster_candidate(cluster: Cluster, jobs: Iterable[Job], sizes: Mapping[str, tuple[str, int]], idle_minutes: int,
                      max_scale_down_s: int | None = None) -> Candidate | None:
    """A cluster frees its current nodes' cores when it has no active job and nodes above zero.

    The same write also caps the idle time before scale down, so the cluster rule has nothing left to change.
    """
    if any(job.runs_on(cluster.name) and job.active for job in jobs):
        return None
    size = sizes.get(cluster.size.lower())
    if size is None or cluster.current_nodes == 0:
        return None
    cores = cluster.current_nodes * size[1]
    reason = f"quota relief: {cluster.current_nodes} idle node(s), {cores} cores; min nodes → 0"
    idle_s = cluster.idle_before_scale_down_s
    if max_scale_down_s is not None and (idle_s is None or idle_s > max_scale_down_s):
        idle_s = max_scale_down_s
    action = scale_action(cluster, reason, ScaleCluster(0, cluster.max_nodes, idle_s, seen=(cluster.min_nodes, cluster.max_nodes)))
    return Candidate(action, cores, idle_minutes)


def instance_candidate(instance: ComputeInstance, idle_verdict: Verdict, sizes: Mapping[str, tuple[str, int]], idle_minutes: int) -> Candidate | None:
    """An instance frees its cores when the idle rule found it idle past its threshold (marked or due)."""
    if idle_verdict.decision not in (Decision.WAIT, Decision.ACT):
        return None
    size = sizes.get(instance.size.lower())
    if size is None:
        return None
    reason = f"quota relief: idle instance, {size[1]} cores ({idle_verdict.reason})"
    action = action_on(instance, StopInstance(operation_stamp(instance)), reason)
    return Candidate(action, size[1], idle_minutes)


def relieve(usage: Usage, target_percent: int, candidates: Iterable[Candidate]) -> Verdict:
    """Pick candidates, most cores first (then longest idle), until projected use is under the target."""
    if usage.limit <= 0:
        return Verdict(RULE, usage.family, Decision.SKIP, f"{usage.family}: no quota limit reported")
    if usage.percent < target_percent:
        return Verdict(RULE, usage.family, Decision.SKIP, f"{usage.family} at {usage.percent:.0f}% ({usage.current}/{usage.limit}), under {target_percent}% (re-read)")
    chosen: list[Action] = []
    projected = usage.current
    for cand in sorted(candidates, key=lambda c: (-c.cores, -c.idle_minutes, c.action.target)):
        if 100.0 * projected / usage.limit < target_percent:
            break
        chosen.append(cand.action)
        projected -= cand.cores
    after = 100.0 * max(projected, 0) / usage.limit
    head = f"{usage.family} at {usage.percent:.0f}% ({usage.current}/{usage.limit} cores), target {target_percent}%"
    if not chosen:
        return Verdict(RULE, usage.family, Decision.KEEP, f"{head}: no idle compute of this family to free")
    short = "" if after < target_percent else "; still above target: nothing more is idle"
    reason = f"{head}: free {usage.current - max(projected, 0)} cores → {after:.0f}%{short}"
    return Verdict(RULE, usage.family, Decision.ACT, reason, tuple(chosen))

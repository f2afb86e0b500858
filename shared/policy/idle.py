"""Idle compute instances: mark, warn, then stop — and make AML's own idle shutdown do the rest.

A compute instance has no "last activity" field. Its last activity is the latest of: its last
operation (start, restart…), the end of the last job that ran on it, and the last minute its CPU
was busy. ARM cannot see notebook kernels or terminals; AML's native idle shutdown can, which is
why enforcing it is part of the remedy and not an alternative to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.actions import Change, ClearMark, MarkIdle, SetIdleShutdown, StopInstance, operation_stamp
from shared.model import Action, ComputeInstance, CpuActivity, Decision, Job, Mark, Verdict, human
from shared.policy.common import Exemptions, exemption_reason

RULE = "idle-instance"
SHUTDOWN_RULE = "native-idle-shutdown"


@dataclass(frozen=True)
class IdleRules:
    threshold: timedelta
    grace: timedelta
    min_uptime: timedelta
    no_metrics_means_idle: bool
    threshold_tag: str
    idle_shutdown_minutes: int  # 0: do not enforce
    exemptions: Exemptions


def action_on(instance: ComputeInstance, change: Change, reason: str) -> Action:
    """An action on an instance, carrying what the guards need: its owner and its tags as judged."""
    return Action(change, instance.workspace, instance.name, reason, owner=instance.owner, tags=tuple(instance.tags.items()))


MAX_TAG_MINUTES = 10080  # a week, as IDLE_THRESHOLD_MINUTES allows


def threshold_for(instance: ComputeInstance, rules: IdleRules) -> tuple[timedelta, str]:
    """The idle threshold for this instance: its tag (the key in any case, as Azure compares tag names) when it
    holds a whole number of minutes from 1 to a week; anything else in the tag is ignored for the setting."""
    raw = next((str(v).strip() for k, v in instance.tags.items() if k.strip().lower() == rules.threshold_tag.lower()), "")
    if re.fullmatch(r"[0-9]{1,6}", raw) and 0 < int(raw) <= MAX_TAG_MINUTES:
        return timedelta(minutes=int(raw)), f" (tag {rules.threshold_tag}={raw})"
    return rules.threshold, ""


def last_activity(
    instance: ComputeInstance, jobs: Iterable[Job], cpu: CpuActivity
) -> tuple[datetime | None, str]:
    """The latest evidence of use, and what it was."""
    evidence: list[tuple[datetime, str]] = []
    if instance.last_operation_at:
        evidence.append((instance.last_operation_at, f"last operation {instance.last_operation or 'unknown'}"))
    for job in jobs:
        if job.last_seen_at:
            evidence.append((job.last_seen_at, f"job {job.name} {job.status.lower()}"))
    if cpu.last_busy_at:
        evidence.append((cpu.last_busy_at, "CPU busy"))
    if not evidence:
        return None, "no activity on record"
    when, what = max(evidence, key=lambda item: item[0])
    return when, what


def judge_instance(
    instance: ComputeInstance,
    jobs: Iterable[Job],
    cpu: CpuActivity,
    mark: Mark | None,
    rules: IdleRules,
    now: datetime,
) -> Verdict:
    """Decide what to do with one compute instance.

    Rules, in order: only Running instances; exempt ones are skipped; any non-terminal job on it
    keeps it; minimum uptime keeps it; no CPU data keeps it unless NO_METRICS_MEANS=idle; idle
    below the threshold keeps it (and clears a mark); idle past the threshold marks it and warns
    the owner; still idle when the grace period after the mark has passed stops it.
    """
    jobs = [job for job in jobs if job.runs_on(instance.name)]
    name = instance.name

    def verdict(decision: Decision, reason: str, *changes: Change) -> Verdict:
        return Verdict(RULE, name, decision, reason, tuple(action_on(instance, change, reason) for change in changes))

    clear = (ClearMark(),) if mark else ()
    if instance.state.lower() != "running":
        return verdict(Decision.SKIP, f"state is {instance.state}", *clear)
    exempt = exemption_reason(name, instance.tags, rules.exemptions)
    if exempt:
        return verdict(Decision.SKIP, exempt, *clear)
    active = [job for job in jobs if job.active]
    if active:
        job = active[0]
        return verdict(Decision.KEEP, f"job {job.name} is {job.status} on it", *clear)

    if instance.last_operation and instance.last_operation.lower() in {"start", "restart", "create"} and instance.last_operation_at:
        uptime = now - instance.last_operation_at
        if uptime < rules.min_uptime:
            return verdict(Decision.KEEP, f"up {human(uptime)}, minimum uptime {human(rules.min_uptime)}", *clear)

    if not cpu.available:
        # A metrics outage is not evidence of idleness, whatever NO_METRICS_MEANS says.
        return verdict(Decision.KEEP, "CPU metrics could not be read; not judged idle", *clear)
    if not cpu.has_data and not rules.no_metrics_means_idle:
        return verdict(Decision.KEEP, "no CPU metric data; treated as busy (NO_METRICS_MEANS=busy)", *clear)

    threshold, source = threshold_for(instance, rules)
    since, what = last_activity(instance, jobs, cpu)
    if instance.created_at and (since is None or instance.created_at > since):
        # The creation time is the floor: nothing says it was used, or what does predates this instance
        # (a job of an earlier instance of the same name).
        since, what = instance.created_at, "created"
    if since is None:
        return verdict(Decision.KEEP, "no activity or creation time on record; cannot judge idleness", *clear)
    idle = now - since
    since_txt = f"{what} at {since:%Y-%m-%d %H:%M}Z"
    if mark and since > mark.marked_at:
        return verdict(Decision.KEEP, f"activity returned ({since_txt}) after it was marked idle", ClearMark())
    if idle < threshold:
        return verdict(Decision.KEEP, f"idle {human(idle)} of {human(threshold)}{source}; {since_txt}", *clear)
    if mark is None:
        return verdict(
            Decision.WAIT,
            f"idle {human(idle)} (threshold {human(threshold)}{source}; {since_txt}); owner warned, {_stops(rules.grace)}",
            MarkIdle(),
        )
    waited = now - mark.marked_at
    if waited < rules.grace:
        return verdict(Decision.WAIT, f"idle {human(idle)}; marked {human(waited)} ago, {_stops(rules.grace)}")
    return verdict(
        Decision.ACT,
        f"idle {human(idle)} ({since_txt}), marked {human(waited)} ago and "
        + (f"grace {human(rules.grace)} passed" if rules.grace > timedelta(0) else "no grace period set"),
        StopInstance(operation_stamp(instance)),
    )


def _stops(grace: timedelta) -> str:
    """When a marked instance will be stopped, said truthfully for a zero grace period too."""
    return f"stops after {human(grace)} grace" if grace > timedelta(0) else "stops at the next sweep"


def judge_idle_shutdown(instance: ComputeInstance, rules: IdleRules) -> Verdict:
    """AML's own idle shutdown must be on, and no longer than the policy's, on every instance not exempt.

    It is set only on Running or Stopped instances: AML rejects setting changes during transitions.
    """
    name = instance.name
    wanted = rules.idle_shutdown_minutes
    if wanted <= 0:
        return Verdict(SHUTDOWN_RULE, name, Decision.SKIP, "IDLE_SHUTDOWN_MINUTES=0: not enforced")
    exempt = exemption_reason(name, instance.tags, rules.exemptions)
    if exempt:
        return Verdict(SHUTDOWN_RULE, name, Decision.SKIP, exempt)
    if instance.state.lower() not in {"running", "stopped"}:
        return Verdict(SHUTDOWN_RULE, name, Decision.SKIP, f"state is {instance.state}; settings change only when settled")
    current = instance.idle_shutdown_minutes
    if current is not None and 0 < current <= wanted:
        return Verdict(SHUTDOWN_RULE, name, Decision.KEEP, f"native idle shutdown is {current}m (policy {wanted}m)")
    why = "no native idle shutdown" if not current else f"native idle shutdown {current}m is longer than {wanted}m"
    reason = f"{why}; set to {wanted}m so AML stops it when kernels and terminals are idle"
    action = action_on(instance, SetIdleShutdown(wanted), reason)
    return Verdict(SHUTDOWN_RULE, name, Decision.ACT, reason, (action,))

"""The imperative shell: gather the live state, ask policy, apply the actions through the guards.

    gather (NEEDS[purpose]: exactly what the kind reads) → decide (pure, shared/policy/decide.py)
    → the guard pipeline for each action (shared/guards.py) → one outcome per action

Before gathering, a run finishes the story of any claim a dead run left behind in this workspace
(an enforce-mode write claimed but never settled): the change is re-read, and recorded as done
if it took, or as interrupted if it did not.

One action's failure never aborts the batch: the guards end it as failed and the run goes on.
Transient failures are counted and raised after the batch (``TransientFailure``) so the platform
retries the work item; their claims are released so the retry can act.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared import job_cache, names
from shared.actions import AzureWrite, change_from
from shared.errors import AzureError, Gone, TransientFailure
from shared.guards import Pipeline, Run, claim_fields, pipeline
from shared.jobs import JobDigest, JobsUnavailable, of_computes
from shared.model import (
    Action,
    Cluster,
    CpuActivity,
    Mark,
    Mode,
    OnlineDeployment,
    Outcome,
    ResourceId,
    Status,
    Verdict,
    name_key,
)
from shared.names import shown
from shared.outcome_log import tell
from shared.policy.common import Exemptions
from shared.policy.decide import NEEDS, Needs, Purpose, Rules, Snapshot, decide, judged_by, lookback
from shared.policy.idle import threshold_for
from shared.policy.inventory import Row
from shared.ports import LEASE, Compute, LedgerPort, MetricsPort, NotifierPort, Orphan, WorkspacePort
from shared.settings import Settings
from shared.work import WorkItem

log = logging.getLogger("autopilot.engine")

__all__ = ["Engine", "Report", "TransientFailure"]


@dataclass
class Report:
    item: WorkItem
    verdicts: list[Verdict] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: outcome counts, or — when nothing was done — what each rule concluded and why."""
        counts = Counter(o.status.value for o in self.outcomes)
        head = f"{self.item.kind.value} {self.item.target.rstrip('/').rsplit('/', 1)[-1]}: "
        if counts:
            body = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            said = list(self.notes)
        else:
            body = "no actions"
            said = [f"{v.target} {v.decision.value} ({v.reason})" for v in self.verdicts] + self.notes
        return head + body + (": " + "; ".join(said) if said else "")


class Gatherer:
    """Reads what a purpose needs (NEEDS) from a workspace, the metrics and the ledger.

    Without a ledger (the operator's command with no storage configured) marks and restores are
    whatever the caller passes.
    """

    def __init__(self, settings: Settings, rules: Rules, metrics: MetricsPort, ledger: LedgerPort | None) -> None:
        self.settings = settings
        self.rules = rules
        self.metrics = metrics
        self.ledger = ledger

    def gather(self, ws: WorkspacePort, purpose: Purpose, params: Mapping[str, Any], now: datetime, notes: list[str], *,
               marks: Mapping[str, Mark] | None = None, restores: Mapping[str, int] | None = None) -> Snapshot:
        """Read exactly what `purpose` needs (NEEDS): the live state, never a payload's word."""
        need = NEEDS[purpose]
        if purpose is Purpose.RUN_ENDED:
            return self._run_compute(ws, str(params.get("run", "")), now, notes)
        if purpose is Purpose.NOT_RESPONDING:
            return self._silent_jobs(ws, str(params.get("run") or ""), now, notes)
        if purpose is Purpose.DEPLOYMENT_SWEEP:
            return self._deployments(ws, need, self._marks(need, marks), Snapshot(ws.id), notes)
        named = str(params.get("cluster") or "") if purpose is Purpose.UNUSABLE_NODES else ""
        if named:
            compute = ws.get_compute(named)
            if compute is None:
                return Snapshot(ws.id, found=f"cluster {named} no longer exists: skipped, already gone")
            computes: tuple[Compute, ...] = (compute,)
        else:
            computes = tuple(ws.list_computes())
        if purpose is Purpose.QUOTA and not params.get("family"):
            return Snapshot(ws.id, computes)
        bare = Snapshot(ws.id, computes)
        cpu = self._cpu(ws, bare, now, notes) if need.cpu else {}
        marks = self._marks(need, marks)
        if restores is None:
            restores = self._restores(bare.clusters, now, notes) if need.restores else {}
        usages, sizes = ((), {})
        if need.quota:
            location = ws.location()
            usages, sizes = tuple(ws.list_usages(location)), ws.vm_sizes(location)
        # The jobs last: with everything else known, only the computes whose verdict a job could change are asked.
        snap = Snapshot(ws.id, computes, (), cpu, marks, restores, usages, sizes)
        listed = self._jobs(ws, purpose, params, snap, now, notes) if computes else None
        if listed is not None:
            snap = replace(snap, jobs=listed.jobs, job_horizon=listed.horizon, jobs_since=listed.ended_since)
        if not need.deployments:
            return snap
        try:
            return self._deployments(ws, need, marks, snap, notes)
        except AzureError as exc:  # the plan still shows every compute when endpoints cannot be read
            notes.append(f"online deployments could not be read ({exc})")
            return snap

    def _jobs(self, ws: WorkspacePort, purpose: Purpose, params: Mapping[str, Any], snap: Snapshot, now: datetime,
              notes: list[str]) -> JobDigest:
        """The jobs `purpose` judges: those not finished or ended within the lookback on each compute
        whose verdict a job could change (``shared.policy.decide.judged_by``), one run-history request
        per compute — a cost that follows what could be acted on, not how many jobs ever ran; the
        workspace's complete list (ARM, its digest kept in the ledger) when the purpose needs every
        job or run history cannot answer."""
        judged = judged_by(purpose, params, snap, self.rules, now)
        if judged is not None and self.settings.jobs_source == "run-history":
            if not judged:
                return of_computes(())
            try:
                return ws.jobs_on(judged, now - lookback(snap, self.rules, now))
            except JobsUnavailable as exc:
                log.warning("jobs of %s: run history could not answer (%s): ARM's jobs list read instead", ws.id.name, exc)
                notes.append(f"run history could not answer ({exc}): ARM's whole jobs list read instead")
        return job_cache.list_jobs(ws, self.ledger, self.settings, now, notes)

    def _marks(self, need: Needs, given: Mapping[str, Mark] | None) -> dict[str, Mark]:
        marks = given if given is not None else (self.ledger.marks() if need.marks and self.ledger else {})
        # Only marks of the running mode count: an observe-mode mark never shortens an enforce-mode grace period.
        return {key: mark for key, mark in marks.items() if mark.mode is self.settings.mode}

    def _deployments(self, ws: WorkspacePort, need: Needs, marks: Mapping[str, Mark], snap: Snapshot, notes: list[str]) -> Snapshot:
        """Online endpoints and their deployments; for a failed one not yet marked, its log tail (why it failed);
        and when a managed one failed, the VM sizes (the cores of quota it holds, which its delete frees)."""
        # Names read from ARM go into URLs too (each deployment's list, its logs, its delete): one that breaks Azure's
        # naming rule names no real resource, so it is said and left out, never requested.
        endpoints = tuple(e for e in ws.list_endpoints() if not self._misnamed(names.ENDPOINT.check(e.name), notes))
        listed: list[OnlineDeployment] = []
        for endpoint in endpoints:
            try:
                listed += [d for d in ws.list_deployments(endpoint.name) if not self._misnamed(names.DEPLOYMENT.check(d.name), notes)]
            except Gone:
                continue  # the endpoint went away since it was listed: nothing of it to judge
        deployments = tuple(listed)
        failed = [d for d in deployments if d.failed]
        logs = {}
        if need.logs:
            for d in failed:
                if d.key not in marks:
                    logs[d.key] = self._log_tail(ws, d)
        sizes = snap.sizes
        if not sizes and any(d.managed for d in failed):
            sizes = ws.vm_sizes(ws.location())
        return replace(snap, marks=marks, endpoints=endpoints, deployments=deployments, logs=logs, sizes=sizes)

    @staticmethod
    def _misnamed(problem: str | None, notes: list[str]) -> bool:
        if problem:
            notes.append(f"online {problem}: left out, not requested")
        return bool(problem)

    def _log_tail(self, ws: WorkspacePort, d: OnlineDeployment) -> str:
        """The deployment's log tail; a deployment that failed before its container started may have none, and
        a log that cannot be read is said in its place (a transient error still retries the work)."""
        try:
            return ws.deployment_logs(d.endpoint, d.name, self.settings.deployment_log_tail_lines)
        except AzureError as exc:
            if exc.transient:
                raise
            return f"(the inference server log could not be read: {exc})"

    def _silent_jobs(self, ws: WorkspacePort, run: str, now: datetime, notes: list[str]) -> Snapshot:
        """The job an event names (one read), or every job of the workspace (an alert names none)."""
        if run:
            job = ws.get_job(run)
            return Snapshot(ws.id, jobs=(job,) if job else (), found="" if job else f"run {run} not found in {ws.id.name}: skipped (already gone or archived)")
        return Snapshot(ws.id, jobs=job_cache.list_jobs(ws, self.ledger, self.settings, now, notes).jobs)

    def _run_compute(self, ws: WorkspacePort, run: str, now: datetime, notes: list[str]) -> Snapshot:
        job = ws.get_job(run) if run else None
        if job is None:
            return Snapshot(ws.id, found=f"run {run} not found in {ws.id.name}: skipped (already gone or archived)")
        if job.compute is None:
            return Snapshot(ws.id, found=f"run {run} ran on serverless compute: nothing to check")
        compute = ws.get_compute(job.compute)
        if compute is None:
            return Snapshot(ws.id, found=f"run {run} ran on {job.compute}, which no longer exists: skipped, already gone")
        clusters = [compute] if isinstance(compute, Cluster) else []
        snap = Snapshot(ws.id, (compute,), restores=self._restores(clusters, now, notes))
        listed = self._jobs(ws, Purpose.RUN_ENDED, {"run": run}, snap, now, notes)
        return replace(snap, jobs=listed.jobs, job_horizon=listed.horizon, jobs_since=listed.ended_since)

    def _cpu(self, ws: WorkspacePort, snap: Snapshot, now: datetime, notes: list[str]) -> dict[str, CpuActivity] | None:
        """CPU activity of the running instances by name key; None when the metrics cannot be read (never "idle")."""
        running = [i for i in snap.instances if i.state.lower() == "running"]
        if not running:
            return {}
        lookback = max(threshold_for(i, self.rules.idle)[0] for i in running) + timedelta(hours=1)
        try:
            # The metrics endpoint is regional: the workspace's own region, read from the workspace.
            found = self.metrics.cpu_activity(ws.id, ws.location(), [i.name for i in running], now, lookback,
                                              self.settings.cpu_busy_percent)
        except AzureError as exc:
            notes.append(f"CPU metrics unavailable ({exc})")
            return None
        return {name_key(name): activity for name, activity in found.items()}

    def _restores(self, clusters: Iterable[Cluster], now: datetime, notes: list[str]) -> dict[str, int]:
        """Pending max-node restores of recycled clusters.

        One whose cluster no longer sits at max 0 is dropped (the recycle failed, or an operator has
        changed the cluster since) — but only once it is older than a claim's lease, so a recycle
        whose PATCH is in flight right now is never forgotten.
        """
        clusters = list(clusters)
        if not clusters or self.ledger is None:
            return {}
        pending = self.ledger.restores()
        for cluster in clusters:
            entry = pending.get(cluster.key)
            if entry and cluster.max_nodes > 0 and now - entry[1] > LEASE:
                self.ledger.clear_restore(cluster.key)
                notes.append(f"{cluster.name}: recycle no longer in effect (max nodes {cluster.max_nodes}); restore dropped")
                del pending[cluster.key]
        keys = {c.key for c in clusters}
        return {key: max_nodes for key, (max_nodes, _) in pending.items() if key in keys}



def survey(settings: Settings, ws: WorkspacePort, metrics: MetricsPort, now: datetime, marks: Mapping[str, Mark],
           restores: Mapping[str, int]) -> tuple[list[Verdict], list[str], list[Row]]:
    """Every rule's verdict on a workspace and its whole inventory, read-only (`autopilot plan`)."""
    rules = Rules.from_settings(settings)
    notes: list[str] = []
    snap = Gatherer(settings, rules, metrics, None).gather(ws, Purpose.PLAN, {}, now, notes, marks=marks, restores=restores)
    decided = decide(Purpose.PLAN, {}, snap, rules, now)
    return decided.verdicts, notes + decided.notes, decided.inventory


def plan(settings: Settings, ws: WorkspacePort, metrics: MetricsPort, now: datetime, marks: Mapping[str, Mark],
         restores: Mapping[str, int]) -> tuple[list[Verdict], list[str]]:
    """Every rule's verdict on a workspace, read-only: what the sweeps would decide now."""
    verdicts, notes, _ = survey(settings, ws, metrics, now, marks, restores)
    return verdicts, notes


class Engine:
    def __init__(self, settings: Settings, workspace: Callable[[ResourceId], WorkspacePort], metrics: MetricsPort,
                 ledger: LedgerPort, notifier: NotifierPort) -> None:
        self.settings = settings
        self.rules = Rules.from_settings(settings)
        self.workspace = workspace
        self.metrics = metrics
        self.ledger = ledger
        self.notifier = notifier
        self.gatherer = Gatherer(settings, self.rules, metrics, ledger)
        self.guards: Pipeline = pipeline(settings.mode, settings.workspaces, Exemptions(settings.exempt_tag, settings.exempt_name_pattern),
                                         settings.max_actions_per_run, settings.max_actions_per_hour, settings.cooldown_minutes,
                                         ledger, notifier)

    # --- entry points --------------------------------------------------------------------------

    def plan(self, workspace: ResourceId, now: datetime, marks: Mapping[str, Mark] | None = None,
             restores: Mapping[str, int] | None = None) -> tuple[list[Verdict], list[str]]:
        """Every rule's verdict on a workspace, read-only: what the sweeps would decide now."""
        return plan(self.settings, self.workspace(workspace), self.metrics, now, marks or {}, restores or {})

    def run(self, item: WorkItem, now: datetime) -> Report:
        """Gather → decide → apply for one work item (of an allowed workspace; any other is refused)."""
        report = Report(item)
        workspace = next((w for w in self.settings.workspaces if w.same_as(item.target)), None)
        if workspace is None:
            report.notes.append(f"refused: {item.target[:200]!r} is not in ALLOWED_WORKSPACES")
            log.warning("security: %s", report.notes[-1])
            return report
        try:
            purpose = Purpose(item.kind.value)
        except ValueError:
            raise ValueError(f"work item kind {item.kind.value} is not a compute remediation") from None
        ws = self.workspace(workspace)
        run = Run(item.trigger, now, ws, outcomes=report.outcomes)
        if self.settings.mode is Mode.ENFORCE:
            self._recover(ws, run, report.notes)
        snap = self.gatherer.gather(ws, purpose, item.params, now, report.notes)
        run.job_horizon, run.listed_jobs = snap.job_horizon, snap.jobs
        if snap.sizes:  # already read for the decision: the cores a write frees need no second read
            run.sizes = dict(snap.sizes)
        decided = decide(purpose, item.params, snap, self.rules, now)
        report.verdicts += decided.verdicts
        report.notes += decided.notes
        for verdict in decided.verdicts:
            for action in verdict.actions:
                self.guards.run(replace(action, rule=action.rule or verdict.rule), run)
        if run.transient:
            raise TransientFailure(f"{run.transient} action(s) failed transiently; the work item will be retried")
        return report

    # --- interrupted runs -------------------------------------------------------------------------

    def _recover(self, ws: WorkspacePort, run: Run, notes: list[str]) -> None:
        """Settle the claims a dead run left in this workspace: its write took (done) or it did not (interrupted)."""
        try:
            orphans = self.ledger.orphans(ws.id.key, run.now)
        except AzureError as exc:
            notes.append(f"could not look for interrupted writes ({exc})")
            return
        for orphan in orphans:
            try:
                self._settle_orphan(ws, orphan, run)
            except AzureError as exc:
                notes.append(f"interrupted write on {shown(str(orphan.action.get('target')))} not settled yet ({exc})")
            except Exception as exc:  # a corrupt ledger row must never stop the workspace's runs
                log.warning("interrupted-write record %s unreadable, left as it is: %s", orphan.key[:200], type(exc).__name__)

    def _settle_orphan(self, ws: WorkspacePort, orphan: Orphan, run: Run) -> None:
        record = orphan.action
        params = record.get("params") or {}
        target = str(record.get("target") or "")
        try:
            change = change_from(str(record.get("kind")), params if isinstance(params, dict) else {})
            workspace = ResourceId.parse(str(record.get("workspace")))
        except (ValueError, TypeError):
            return
        if not isinstance(change, AzureWrite) or not workspace.same_as(ws.id) or change.target_problem(target):
            return
        action = Action(change, ws.id, target, str(record.get("reason") or ""), owner=record.get("owner") or None,
                        rule=str(record.get("rule") or ""))
        # Taken over with the row's own fields: if this run dies too, the next one still finds it.
        claim = self.ledger.claim(orphan.key, run.now, **claim_fields(action, Mode.ENFORCE, orphan.trigger))
        if isinstance(claim, str):
            return  # another run is settling it
        problem = change.verify(change.read(target, ws))
        if problem is None:
            status, detail = Status.DONE, f"{change.describe(target)}: done by a run that stopped before recording it (verified now)"
        else:
            status, detail = Status.FAILED, f"interrupted: the run claiming it stopped before the write took ({problem}); decided again now"
            # Its cooldown slot was taken for a write that never took: given back, so deciding again can act.
            self.ledger.release_write(f"{change.kind.value}|{action.key}", orphan.claimed_at)
        self.ledger.settle(claim, status, detail)
        tell(Outcome(action, status, detail, run.now, orphan.trigger), run.outcomes, self.ledger, self.notifier)

"""The guards every action passes, as an ordered list of small objects (the order is ``pipeline``).

An Azure write goes through

    allow-list → exemption → caps → cooldown → claim → re-read → write → verify

and every action ends in ``record`` (log line, ledger row, channels). Each guard's ``check`` either
lets the attempt through (None) or ends it with a ``Stop`` (status and detail); the guards that
were entered then see the ending, last first, in ``after`` — the claim settles itself there, and
observe mode releases a claim that did not end in a report.

A guard never raises for an Azure or ledger error: it ends the attempt as failed (transient ones
flagged, so the work item is retried) and the batch goes on with the next action.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from shared.actions import AzureWrite, Bookkeeping
from shared.errors import AzureError, Conflict, Gone
from shared.model import Action, Job, Mode, Outcome, ResourceId, Status, human
from shared.outcome_log import tell
from shared.policy.common import Exemptions, exemption_reason
from shared.ports import Claim, LedgerPort, NotifierPort, WorkspacePort

log = logging.getLogger("autopilot.guards")


@dataclass(frozen=True)
class Stop:
    """How an attempt ended. ``counted``: it used one of the run's writes (or would have, in observe mode)."""

    status: Status
    detail: str
    counted: bool = False
    transient: bool = False


@dataclass
class Run:
    """What the guards share across one work item's actions."""

    trigger: str
    now: datetime
    workspace: WorkspacePort
    writes: int = 0  # writes (or planned writes) so far, for MAX_ACTIONS_PER_RUN
    hour_before: int | None = None  # the hour's writes by others, read once per run for the early cap check
    transient: int = 0  # attempts that failed transiently: the work item is retried
    outcomes: list[Outcome] = field(default_factory=list)
    job_horizon: datetime | None = None  # the newest job creation time the run's complete listing saw
    listed_jobs: tuple[Job, ...] = ()  # what that listing kept (shared.jobs): the active jobs among them

    def active_jobs(self, compute: str, pipelines: bool = False) -> list[Job]:
        """The non-terminal jobs on one compute now, read for that compute only (see WorkspacePort.active_jobs)."""
        known = [job for job in self.listed_jobs if job.active and job.runs_on(compute)]
        return self.workspace.active_jobs(compute, self.job_horizon, known, pipelines=pipelines)
    sizes: dict[str, tuple[str, int]] | None = None  # the region's VM sizes, read once per run when a write frees VMs

    def cores_of(self, size: str) -> int | None:
        """vCPUs of a VM size in the workspace's region (read once per run); None when they cannot be read."""
        if self.sizes is None:
            try:
                self.sizes = self.workspace.vm_sizes(self.workspace.location())
            except AzureError as exc:
                log.warning("VM sizes unreadable, cores freed not recorded: %s", exc)
                self.sizes = {}
        entry = self.sizes.get(size.lower())
        return entry[1] if entry and entry[1] > 0 else None


@dataclass
class Attempt:
    action: Action
    run: Run
    claim: Claim | None = None
    fresh: object | None = None

    @property
    def change(self) -> AzureWrite:
        change = self.action.change
        if not isinstance(change, AzureWrite):
            raise TypeError(f"{self.action.kind.value} is not an Azure write")
        return change


class Guard(Protocol):
    def check(self, attempt: Attempt) -> Stop | None: ...
    def after(self, attempt: Attempt, stop: Stop) -> Stop: ...


class _Guard:
    def after(self, attempt: Attempt, stop: Stop) -> Stop:
        return stop


def _failed(exc: AzureError, what: str) -> Stop:
    kind = "transient, will retry" if exc.transient else "permanent"
    return Stop(Status.FAILED, f"{kind}: {what}{exc}", transient=exc.transient)


def claim_fields(action: Action, mode: Mode, trigger: str) -> dict[str, str]:
    """What a claim row holds besides its key and status: enough for a later run to finish the story of
    a run that died holding it (the action as claimed, its workspace, mode and trigger)."""
    record = {"kind": action.kind.value, "workspace": action.workspace.id, "target": action.target,
              "reason": action.reason, "owner": action.owner, "rule": action.rule, "params": action.change.params()}
    return {"Action": action.kind.value, "Target": action.key, "Workspace": action.workspace.key, "Mode": mode.value,
            "Trigger": trigger, "Record": json.dumps(record, default=str)}


# --- the guards ----------------------------------------------------------------------------------


@dataclass
class AllowList(_Guard):
    """Only the allowed workspaces are ever acted on, whatever a queue message or a policy says."""

    workspaces: Sequence[ResourceId]

    def check(self, attempt: Attempt) -> Stop | None:
        if any(ws.same_as(attempt.action.workspace) for ws in self.workspaces):
            return None
        return Stop(Status.SKIPPED, f"refused: {attempt.action.workspace.name} is not in ALLOWED_WORKSPACES")


@dataclass
class Exemption(_Guard):
    """Exempt by tag or name as judged (the re-read checks the tags again)."""

    exemptions: Exemptions

    def check(self, attempt: Attempt) -> Stop | None:
        why = exemption_reason(attempt.action.target, dict(attempt.action.tags), self.exemptions)
        return Stop(Status.SKIPPED, why) if why else None


@dataclass
class Caps(_Guard):
    """Blast radius: writes per run, and (enforce mode) writes attempted in the rolling hour, all triggers together."""

    per_run: int
    per_hour: int
    mode: Mode
    ledger: LedgerPort

    def check(self, attempt: Attempt) -> Stop | None:
        if attempt.run.writes >= self.per_run:
            return Stop(Status.SKIPPED, f"cap: MAX_ACTIONS_PER_RUN={self.per_run} reached")
        if self.mode is Mode.ENFORCE:
            run = attempt.run
            # One ledger query per run, not per action: this early check only spares work, the Write
            # guard's count taken with the write's own place is what holds the cap across workers.
            if run.hour_before is None:
                try:
                    run.hour_before = self.ledger.writes_since(run.now - timedelta(hours=1)) - run.writes
                except AzureError as exc:
                    return _failed(exc, "cannot count the last hour's writes, not writing: ")
            if run.hour_before + run.writes >= self.per_hour:
                return Stop(Status.SKIPPED, f"cap: MAX_ACTIONS_PER_HOUR={self.per_hour} reached")
        return None


@dataclass
class Cooldown(_Guard):
    """No second write of the same kind to one resource within COOLDOWN_MINUTES (enforce mode)."""

    minutes: int
    mode: Mode
    ledger: LedgerPort

    def check(self, attempt: Attempt) -> Stop | None:
        if self.mode is not Mode.ENFORCE or attempt.change.bypasses_cooldown():
            return None
        try:
            last = self.ledger.last_write(f"{attempt.action.kind.value}|{attempt.action.key}")
        except AzureError as exc:
            return _failed(exc, "cannot read the cooldown, not writing: ")
        now = attempt.run.now
        # The write of this very trigger is not a cooldown but a redelivery: the claim says so ("duplicate").
        if last and last[1] != attempt.run.trigger and now - last[0] < timedelta(minutes=self.minutes):
            return Stop(Status.SKIPPED, f"cooldown: last write {human(now - last[0])} ago (COOLDOWN_MINUTES={self.minutes})")
        return None


@dataclass
class ClaimIt(_Guard):
    """Idempotency: one claim per (trigger, kind, resource) — per day in observe mode, so a would-be
    write is reported once a day. Settled conditionally on still holding it."""

    mode: Mode
    ledger: LedgerPort

    def check(self, attempt: Attempt) -> Stop | None:
        action, run = attempt.action, attempt.run
        scope = run.trigger if self.mode is Mode.ENFORCE else f"{run.now:%Y-%m-%d}"
        try:
            claim = self.ledger.claim(f"{self.mode.value}|{scope}|{action.kind.value}|{action.key}", run.now,
                                      **claim_fields(action, self.mode, run.trigger))
        except AzureError as exc:
            return _failed(exc, "ledger unavailable, not writing without a claim: ")
        if isinstance(claim, str):
            return Stop(Status.SKIPPED, f"duplicate: {claim}")
        attempt.claim = claim
        return None

    def after(self, attempt: Attempt, stop: Stop) -> Stop:
        claim = attempt.claim
        if claim is None:
            return stop
        # In observe mode only a report holds the day's claim: a skip (busy now, gone…) must not hide
        # the same would-be write for the rest of the day.
        release = stop.transient or (self.mode is Mode.OBSERVE and stop.status is not Status.PLANNED)
        try:
            held = self.ledger.settle(claim, stop.status, stop.detail, retry=release)
        except AzureError as exc:
            log.warning("claim for %s not settled: %s", attempt.action.target, exc)
            return Stop(stop.status, f"{stop.detail} (claim not settled: {exc})", stop.counted, stop.transient)
        if not held:
            return Stop(stop.status, f"{stop.detail} (another run took the claim over meanwhile; its record stands)",
                        stop.counted, stop.transient)
        return stop


@dataclass
class ReRead(_Guard):
    """Re-read the resource just before the write: its state, tags and jobs may have changed since the decision.

    A claim taken over from a run that died may find its change already in place: that run wrote and
    never recorded it, so it is recorded now, as done and verified.
    """

    exemptions: Exemptions

    def check(self, attempt: Attempt) -> Stop | None:
        action, ws, change = attempt.action, attempt.run.workspace, attempt.change
        try:
            fresh = change.read(action.target, ws)
            if fresh is None:
                return Stop(Status.SKIPPED, "skipped: already gone")
            attempt.fresh = fresh
            if attempt.claim is not None and attempt.claim.taken_over and change.verify(fresh) is None:
                return Stop(Status.DONE, f"{change.describe(action.target)}: done by an earlier run that stopped before "
                                         "recording it (verified now)", counted=True)
            exempt = exemption_reason(fresh.name, fresh.tags, self.exemptions)
            if exempt:
                return Stop(Status.SKIPPED, f"{exempt} (re-read)")
            skip = change.precheck(fresh, lambda: attempt.run.active_jobs(action.target, pipelines=change.strands_steps))
        except AzureError as exc:
            return _failed(exc, "")
        return Stop(Status.SKIPPED, skip) if skip else None


@dataclass
class Write(_Guard):
    """The write itself, in enforce mode only; observe mode ends here with the plan.

    The write first takes its place in the hour's count, then reads the count: workers running in
    parallel all pass the early cap check, but only those whose place is within the cap write (the
    others give their place back), so MAX_ACTIONS_PER_HOUR holds across workers.
    """

    mode: Mode
    ledger: LedgerPort
    per_hour: int
    cooldown_minutes: int

    def check(self, attempt: Attempt) -> Stop | None:
        action, run, change = attempt.action, attempt.run, attempt.change
        if self.mode is not Mode.ENFORCE:
            return Stop(Status.PLANNED, f"observe mode: would {change.describe(action.target)}", counted=True)
        slot = f"{action.kind.value}|{action.key}"
        place: str | None = None
        taken = False
        try:
            # Counted before the write: a write that fails, or a run that dies during it, still counts.
            place = self.ledger.count_write(action.key, run.now)
            if self.ledger.writes_since(run.now - timedelta(hours=1)) > self.per_hour:
                self._give_back(None, place, run.now)
                return Stop(Status.SKIPPED, f"cap: MAX_ACTIONS_PER_HOUR={self.per_hour} reached")
            # The cooldown's slot is taken atomically: of the runs racing for one resource (six events of
            # one pipeline's steps, say) one writes; the others find the slot taken.
            last = self.ledger.take_write(slot, run.now, timedelta(minutes=self.cooldown_minutes), run.trigger,
                                          force=change.bypasses_cooldown())
            if last is not None:
                self._give_back(None, place, run.now)
                return Stop(Status.SKIPPED, f"cooldown: last write {human(run.now - last)} ago (COOLDOWN_MINUTES={self.cooldown_minutes})")
            taken = True
            change.remember(action.key, self.ledger, run.now)
        except AzureError as exc:
            self._give_back(slot if taken else None, place, run.now)  # nothing was written: the retry must not find them held
            return _failed(exc, "ledger unavailable, not writing: ")
        try:
            change.execute(action.target, run.workspace)
        except AzureError as exc:
            self._give_back(slot, None, run.now)  # a write that failed changed nothing: no cooldown runs from it
            if isinstance(exc, Gone):
                return Stop(Status.SKIPPED, "skipped: already gone")
            if isinstance(exc, Conflict):
                return Stop(Status.SKIPPED, f"another operation is in progress: {exc}")
            return Stop(Status.FAILED, _failed(exc, "").detail, counted=True, transient=exc.transient)
        return None

    def _give_back(self, slot: str | None, place: str | None, now: datetime) -> None:
        """Give back what a write that did not happen took: its cooldown slot and (before the write) its place in the hour."""
        try:
            if slot is not None:
                self.ledger.release_write(slot, now)
            if place is not None:
                self.ledger.uncount_write(place, now)
        except AzureError as exc:
            log.warning("a write's cooldown slot or hourly place not given back: %s", exc)


@dataclass
class Verify(_Guard):
    """Re-read after the write: it took (done) or what is wrong (failed)."""

    ledger: LedgerPort

    def check(self, attempt: Attempt) -> Stop:
        action, change = attempt.action, attempt.change
        try:
            problem = change.verify(change.read(action.target, attempt.run.workspace))
        except AzureError as exc:
            return Stop(Status.FAILED, f"written, but the verification could not read it back: {exc}", counted=True,
                        transient=exc.transient)
        if problem:
            return Stop(Status.FAILED, problem, counted=True)
        try:
            change.forget(action.key, self.ledger)
        except AzureError as exc:
            log.warning("after %s: ledger not cleaned up: %s", action.target, exc)
        return Stop(Status.DONE, f"{change.describe(action.target)}: verified", counted=True)


@dataclass
class Apply(_Guard):
    """Bookkeeping kinds change the autopilot's own ledger (and send their own messages)."""

    ledger: LedgerPort
    notifier: NotifierPort
    mode: Mode

    def check(self, attempt: Attempt) -> Stop:
        change = attempt.action.change
        if not isinstance(change, Bookkeeping):
            raise TypeError(f"{attempt.action.kind.value} is not bookkeeping")
        try:
            status, detail = change.apply(attempt.action, self.ledger, self.notifier, attempt.run.now, self.mode)
        except AzureError as exc:
            return _failed(exc, "ledger unavailable: ")
        return Stop(status, detail)


@dataclass
class Pipeline:
    """The guards in order; ``run`` passes one action through them and tells its outcome."""

    azure_write: Sequence[Guard]
    bookkeeping: Sequence[Guard]
    ledger: LedgerPort
    notifier: NotifierPort

    def guards_for(self, action: Action) -> Sequence[Guard]:
        return self.azure_write if action.change.writes_to_azure else self.bookkeeping

    def run(self, action: Action, run: Run) -> Outcome:
        attempt = Attempt(action, run)
        entered: list[Guard] = []
        stop: Stop | None = None
        for guard in self.guards_for(action):
            entered.append(guard)
            stop = guard.check(attempt)
            if stop is not None:
                break
        if stop is None:  # a pipeline always ends in a guard that decides; a missing one is a bug here
            raise RuntimeError(f"no guard ended the attempt on {action.target}")
        for guard in reversed(entered):
            stop = guard.after(attempt, stop)
        run.writes += int(stop.counted)
        run.transient += int(stop.transient)
        # What a done write freed — or, in observe mode, what the planned one would free.
        freeing = stop.status in (Status.DONE, Status.PLANNED) and attempt.fresh is not None
        freed = action.change.freed(attempt.fresh) if freeing else None
        cores = freed.vms * c if freed and (c := run.cores_of(freed.size)) else None
        outcome = Outcome(action, stop.status, stop.detail, run.now, run.trigger, freed=freed, cores=cores)
        tell(outcome, run.outcomes, self.ledger, self.notifier if action.change.announced else None)
        return outcome


def pipeline(mode: Mode, workspaces: Sequence[ResourceId], exemptions: Exemptions, per_run: int, per_hour: int,
             cooldown_minutes: int, ledger: LedgerPort, notifier: NotifierPort) -> Pipeline:
    """The guards, in the order they run: the one place that order is written down."""
    allow = AllowList(workspaces)
    return Pipeline(
        azure_write=(allow, Exemption(exemptions), Caps(per_run, per_hour, mode, ledger), Cooldown(cooldown_minutes, mode, ledger),
                     ClaimIt(mode, ledger), ReRead(exemptions), Write(mode, ledger, per_hour, cooldown_minutes), Verify(ledger)),
        bookkeeping=(allow, Apply(ledger, notifier, mode)),
        ledger=ledger,
        notifier=notifier,
    )

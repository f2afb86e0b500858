"""Not-responding jobs: tell the owner and the operator, and cancel only when the operator opted in.

A job in state NotResponding has stopped reporting; it is not terminal, so it keeps its compute (a
cluster cannot scale down under it, an instance is never judged idle). The rule, per such job:

- always: one outcome naming the job, its owner, its compute, how long it has not responded and the
  link to the job in Azure ML studio;
- only when NOT_RESPONDING_CANCEL_MINUTES is above 0 and the job has not responded for longer than
  that: cancel it (a guarded write; the re-read must still find it NotResponding, since the same time).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.actions import CancelJob, Change, Notify
from shared.model import Action, Decision, Job, ResourceId, Verdict, human, studio_link

RULE = "not-responding-run"


def not_responding(job: Job) -> bool:
    return job.status.strip().lower() == "notresponding"


def judge_not_responding(workspace: ResourceId, job: Job, cancel_after: timedelta | None, now: datetime) -> Verdict:
    """The rule's verdict on one job (``cancel_after`` None: the operator did not opt in to cancelling)."""
    if not not_responding(job):
        return Verdict(RULE, job.name, Decision.KEEP, f"status is {job.status}")
    since = job.modified_at or job.created_at
    silent = now - since if since else None
    how_long = f"for {human(silent)} (since {since:%H:%M}Z)" if silent is not None and since else "for an unknown time"
    where = f"on {job.compute}" if job.compute else "on serverless compute"
    owner = f"owner {job.owner}" if job.owner else "no owner on record"
    holds = f"it holds {job.compute}" if job.compute else "it holds its serverless nodes"
    said = f"job {job.name} ({owner}) {where} has not responded {how_long}; {holds}: {studio_link(workspace, job.name)}"
    changes: list[Change] = [Notify(of="jobs")]
    if cancel_after is None:
        said += "; not cancelled (NOT_RESPONDING_CANCEL_MINUTES=0: cancelling is opt-in)"
    elif silent is not None and silent > cancel_after:
        said += f"; cancel due: silent longer than NOT_RESPONDING_CANCEL_MINUTES ({human(cancel_after)})"
        changes.append(CancelJob(seen_since=since.isoformat() if since else None))
    else:
        said += f"; cancelled if still silent after {human(cancel_after)} (NOT_RESPONDING_CANCEL_MINUTES)"
    actions = tuple(Action(c, workspace, job.name, said, owner=job.owner, tags=tuple(job.tags.items())) for c in changes)
    return Verdict(RULE, job.name, Decision.ACT, said, actions)

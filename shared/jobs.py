"""What a run keeps of a workspace's jobs: every job that can still change a decision, nothing more.

Policy asks two things of the jobs on a compute: is any of them in a non-terminal state (it keeps
the compute), and when did the last one touch it (where idleness starts). So the digest keeps
every active job and, per compute, only the finished job that touched it last. Whatever the number
of finished jobs, it holds (active jobs + computes) entries, and it is fed one job at a time as the
pages of the jobs list arrive: the list itself is never held.

It also remembers the newest creation time it saw (``horizon``): a job the listing did not see can
only have been created after it, which is what lets the re-read before a write look at the newest
jobs only (see ``shared.adapters.aml``), and a later run read only the jobs created since, carrying
the rest over from this digest kept in the ledger (``shared.job_cache``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.model import Job, name_key

# ARM's jobs list, archived or not: archiving hides a job from the studio's list, it does not stop it.
ALL_JOBS = {"listViewType": "All"}
# A job created this long before the newest one a listing saw may still have been invisible to it
# (created, not yet indexed): a read of the newest jobs looks back this far past the horizon.
HORIZON_MARGIN = timedelta(minutes=15)


class JobsUnavailable(Exception):
    """A per-compute source of jobs cannot answer (refused, unreadable, too long): the complete
    listing decides instead. The message says why, in one line."""


class NewestFirst:
    """Reads a jobs list said to come newest first down to ``horizon - HORIZON_MARGIN``, only as far as
    the order proves itself; once it does not, ``broken`` is set and the whole list must be read.

    The REST spec does not state the order, so it is checked, never assumed: the first dated job
    must be no older than ``horizon`` (the newest job a complete listing saw is still listed, so a
    newest-first list starts with it or a newer one: a list oldest first, or in any other order,
    starts older and would otherwise stop at its first item), and no job may be newer than the one
    before it.
    """

    def __init__(self, horizon: datetime) -> None:
        self.horizon = horizon
        self.floor = horizon - HORIZON_MARGIN
        self.previous: datetime | None = None
        self.broken = False

    def goes_on(self, created: datetime | None) -> bool:
        """Whether the job created at ``created`` is to be read (False: every job from here on is older than the floor)."""
        if self.broken or created is None:
            return True
        if created > self.previous if self.previous is not None else created < self.horizon:
            self.broken = True
            return True
        if created < self.floor:
            return False
        self.previous = created
        return True


@dataclass
class JobDigest:
    """The jobs that matter, out of a complete listing (see the module docstring)."""

    active: dict[str, Job] = field(default_factory=dict)  # job name key → job
    last_finished: dict[str, Job] = field(default_factory=dict)  # compute name key → its latest finished job
    horizon: datetime | None = None  # the newest creation time seen
    seen: int = 0  # jobs seen in the listing
    full_at: datetime | None = None  # when the complete listing this digest stems from was read
    full: bool = True  # this run read the complete listing (False: only the newest jobs, the rest carried over)
    reread: int = 0  # jobs carried over from an earlier digest and read again by name
    ended_since: datetime | None = None  # finished jobs known only back to this time (None: every one)

    def add(self, job: Job) -> None:
        self.seen += 1
        self.saw(job.created_at)
        if job.active:
            key = name_key(job.name)
            held = self.active.get(key)
            if held is not None:
                # One run named on several computes (a per-compute source answers for each): it holds them all.
                more = tuple(c for c in job.computes if not held.runs_on(c))
                job = replace(held, also_on=held.also_on + more) if more else held
            self.active[key] = job
            return
        for compute in job.computes:
            self.finished_on(name_key(compute), job)

    def saw(self, created: datetime | None) -> None:
        if created is not None and (self.horizon is None or created > self.horizon):
            self.horizon = created

    def finished_on(self, compute_key: str, job: Job) -> None:
        """Keep `job` as the compute's latest finished one if it ended later than the one kept."""
        kept = self.last_finished.get(compute_key)
        when = job.last_seen_at
        if kept is None or (when is not None and (kept.last_seen_at is None or when > kept.last_seen_at)):
            self.last_finished[compute_key] = job

    @property
    def jobs(self) -> tuple[Job, ...]:
        """The active jobs, then each compute's latest finished one (a pipeline's counted once)."""
        out = dict(self.active)
        for job in self.last_finished.values():
            out.setdefault(name_key(job.name), job)
        return tuple(out.values())

    def active_on(self, compute: str) -> list[Job]:
        return [job for job in self.active.values() if job.runs_on(compute)]


def recent(job: Job, ended_since: datetime | None) -> bool:
    """Whether a job matters to a verdict taken over what ended since `ended_since`: not finished, or
    finished since then (None: every job does)."""
    return job.active or ended_since is None or (job.last_seen_at or ended_since) >= ended_since


def of_computes(jobs: Iterable[Job], ended_since: datetime | None = None) -> JobDigest:
    """The digest of the jobs a per-compute source gave, held to what was asked of it (`recent`: a source
    that answered more costs reading, never a verdict): complete for those computes only, so it is never
    kept as the workspace's (``full`` False, no ``full_at``)."""
    out = digest(job for job in jobs if recent(job, ended_since))
    out.full, out.ended_since = False, ended_since
    return out


def digest(jobs: Iterable[Job]) -> JobDigest:
    out = JobDigest()
    for job in jobs:
        out.add(job)
    return out

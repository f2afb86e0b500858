"""A workspace's job digest kept between runs in the ledger, so that a sweep reads what is new.

A run's digest (``shared.jobs``) is complete as of its horizon: it holds every job then active and
each compute's latest finished job. Kept in the ledger, it lets the next run list only the jobs
created since and read its active jobs again by name (``Workspace.list_jobs``); the first run of a
workspace reads the whole list once. The row is trusted only as far as it proves itself:

- it names the format, the mode, the ARM endpoint, the workspace and the listing's settings it was
  made with (``fingerprint``): a row made otherwise is not this run's to use;
- its complete listing is younger than ``JOBS_FULL_LISTING_HOURS`` (a complete listing is forced
  that often, bounding any drift) and neither it nor its horizon lies in the future;
- it is well formed, every job name keeps Azure's naming rule, and it is within ``MAX_CHARS``.

Anything else — a corrupt, oversized, foreign or stale row, or a ledger that cannot be read — means
a complete listing, never a guess. Two runs of one workspace write the row conditionally (ETag):
the loser's digest is dropped, which costs at most a complete listing later, never a job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared import names
from shared.errors import AzureError
from shared.jobs import ALL_JOBS, HORIZON_MARGIN, JobDigest
from shared.model import Job, name_key
from shared.payload import PayloadError, load_json
from shared.ports import LedgerPort, WorkspacePort
from shared.settings import Settings

log = logging.getLogger("autopilot.jobs")

FORMAT = 1
# Azure Table: a string property holds at most 64 KiB (32 K UTF-16 characters), an entity 1 MiB.
PART_CHARS = 32_000
MAX_PARTS = 12
MAX_CHARS = PART_CHARS * MAX_PARTS
MAX_TEXT = 255  # a status or a compute name longer than this is no Azure value


def fingerprint(settings: Settings, workspace_key: str) -> str:
    """What a kept digest must have been made with to be used: format, mode, endpoint, workspace, listing."""
    made = f"{FORMAT}|{settings.mode.value}|{settings.arm_endpoint.lower()}|{workspace_key}|{sorted(ALL_JOBS.items())}|{HORIZON_MARGIN}"
    return hashlib.sha256(made.encode("utf-8", "surrogatepass")).hexdigest()


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _job(job: Job) -> list[Any]:
    return [job.name, job.status, job.compute, list(job.also_on), _when(job.created_at), _when(job.modified_at)]


def encode(digest: JobDigest, print_: str) -> str | None:
    """The digest as the ledger keeps it; None when it would exceed ``MAX_CHARS`` (then nothing is kept).

    Serverless active jobs are left out: they keep no compute, so no decision reads them.
    """
    if digest.full_at is None:
        return None
    row = {"v": FORMAT, "fp": print_, "full_at": _when(digest.full_at), "horizon": _when(digest.horizon),
           "active": [_job(job) for job in digest.active.values() if job.computes],
           "finished": [[compute, *_job(job)] for compute, job in digest.last_finished.items()]}
    text = json.dumps(row, separators=(",", ":"), ensure_ascii=True)
    return text if len(text) <= MAX_CHARS else None


class Unusable(ValueError):
    """Why a kept digest cannot be used (one line)."""


def _time(value: Any, what: str, now: datetime | None = None) -> datetime | None:
    """A kept time; with ``now``, one that must not lie after it."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Unusable(f"{what} is not a time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Unusable(f"{what} is not a time") from None
    if at.tzinfo is None:
        raise Unusable(f"{what} has no time zone")
    if now is not None and at > now:
        raise Unusable(f"{what} lies in the future")
    return at


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT or not value.isprintable():
        raise Unusable(f"{what} is not a short line of text")
    return value


def _decode_job(entry: Any) -> Job:
    """One kept job. Its own times may lie ahead of this clock (ARM's clock is not ours); they only
    ever make a compute look used more recently, never free one."""
    if not isinstance(entry, list) or len(entry) != 6:
        raise Unusable("a job entry is not a list of 6")
    name, status, compute, also, created, modified = entry
    problem = names.JOB.check(name)
    if problem:
        raise Unusable(problem)
    if not isinstance(also, list) or len(also) > 64:
        raise Unusable(f"job {name}: its steps' computes are not a short list")
    return Job(name, _text(status, f"job {name}: status"), None if compute is None else _text(compute, f"job {name}: compute"),
               _time(created, f"job {name}: creation"), _time(modified, f"job {name}: last change"),
               tuple(_text(c, f"job {name}: a step's compute") for c in also))


def decode(text: str, print_: str, now: datetime, refresh: timedelta) -> JobDigest:
    """The kept digest, proven usable by ``now``; ``Unusable`` naming the first reason otherwise."""
    if len(text) > MAX_CHARS:
        raise Unusable(f"{len(text):,} characters, over {MAX_CHARS:,}")
    try:
        row = load_json(text, MAX_CHARS * 4, "job digest", shaped=False)  # its shape is checked in full below
    except PayloadError as exc:
        raise Unusable(str(exc)) from None
    if not isinstance(row, dict) or set(row) != {"v", "fp", "full_at", "horizon", "active", "finished"}:
        raise Unusable("not a job digest")
    if row["v"] != FORMAT or row["fp"] != print_:
        raise Unusable("made with another format, mode, endpoint, workspace or listing")
    full_at = _time(row["full_at"], "complete listing", now)
    if full_at is None or now - full_at > refresh:
        raise Unusable(f"its complete listing is older than {refresh}")
    horizon = _time(row["horizon"], "horizon", now)
    if horizon is None:
        raise Unusable("no horizon")
    if not isinstance(row["active"], list) or not isinstance(row["finished"], list):
        raise Unusable("its jobs are not lists")
    out = JobDigest(horizon=horizon, full_at=full_at, full=False)
    for entry in row["active"]:
        job = _decode_job(entry)
        if not job.active or not job.computes:
            raise Unusable(f"job {job.name} is kept as active but is {job.status} or on no compute")
        out.active[name_key(job.name)] = job
    for entry in row["finished"]:
        if not isinstance(entry, list) or len(entry) != 7:
            raise Unusable("a finished entry is not a list of 7")
        compute = _text(entry[0], "a compute")
        job = _decode_job(entry[1:])
        if job.active or compute != name_key(compute) or not job.runs_on(compute):
            raise Unusable(f"job {job.name} is kept as {compute}'s last finished one but is not")
        out.last_finished[compute] = job
    return out


def list_jobs(ws: WorkspacePort, ledger: LedgerPort | None, settings: Settings, now: datetime, notes: list[str]) -> JobDigest:
    """The workspace's jobs: the newest listed and the rest carried over from the kept digest when it
    is usable, else the complete list; the result kept for the next run (see the module docstring)."""
    if ledger is None:
        return ws.list_jobs(None, now)
    print_ = fingerprint(settings, ws.id.key)
    known, etag = None, None
    try:
        text, etag = ledger.job_digest(ws.id.key)
    except AzureError as exc:
        notes.append(f"kept job digest unreadable ({exc}): the whole job list read")
        text = ""
    if text:
        try:
            known = decode(text, print_, now, timedelta(hours=settings.jobs_full_listing_hours))
        except Unusable as exc:
            log.info("job digest of %s not used (%s): reading the whole job list", ws.id.name, str(exc)[:200])
    listed = ws.list_jobs(known, now)
    kept = encode(listed, print_)
    if kept is None:
        log.info("job digest of %s not kept: over %s characters", ws.id.name, f"{MAX_CHARS:,}")
        return listed
    try:
        if not ledger.put_job_digest(ws.id.key, kept, etag):
            log.info("job digest of %s written meanwhile by another run: this run's dropped", ws.id.name)
    except AzureError as exc:
        notes.append(f"job digest not kept ({exc})")
    return listed

"""What freed VMs saved: pure accrual over the ledger's records and the live state. No I/O, no clock.

A done write that freed VMs (a stop, a scale-down, a recycle, and any kind that says what it frees)
is a *freeing*: ``vms`` VMs of ``size`` (``cores`` in all) released at ``at``. It saves from ``at``
until the compute holds them again — never beyond ``now``:

- a later freeing of the same compute means it was started (or scaled up) in between: the earlier
  one ends when that later one saw it last started (``running_since``);
- otherwise the live state decides, through the action kind (``resumed``): still stopped or scaled
  down → saving until now; started again at a time Azure reports → until then.

When the end is not known (a scale-up, whose time ARM does not keep; a compute gone since), the
saving is not counted beyond the action: the estimate errs low, never high. Money is VM-hours times
the pay-as-you-go Linux hourly price of the size in the workspace's region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LiveVerdict = tuple[bool, datetime | None] | None  # (resumed, since when) from the action kind; None: live state unread


@dataclass(frozen=True)
class Freeing:
    """A done write that freed VMs, as the ledger recorded it."""

    resource: str  # the compute's normalised id (the ledger's Resource)
    workspace: str
    target: str
    rule: str
    kind: str
    at: datetime
    size: str
    vms: int
    cores: int  # 0 when the size's vCPUs could not be read at the time
    params: Mapping[str, Any]
    running_since: datetime | None = None

    @property
    def workspace_key(self) -> str:
        """The workspace's id (as the ledger keys it): the resource id up to the workspace's name, whatever
        child (a compute, an online deployment) the freeing was of."""
        return "/".join(self.resource.split("/")[:9])


@dataclass(frozen=True)
class Accrued:
    """One freeing's saving: from its action until ``until``, and what decided the end."""

    freeing: Freeing
    until: datetime
    note: str
    ongoing: bool = False  # still freed now: it goes on saving

    @property
    def hours(self) -> float:
        return max(0.0, (self.until - self.freeing.at).total_seconds() / 3600)

    @property
    def vm_hours(self) -> float:
        return self.hours * self.freeing.vms

    @property
    def core_hours(self) -> float:
        return self.hours * self.freeing.cores


def accrue(freeings: Iterable[tuple[Freeing, LiveVerdict]], now: datetime) -> list[Accrued]:
    """Each freeing's saving, judged with the next freeing of the same compute and its live verdict."""
    by_resource: dict[str, list[tuple[Freeing, LiveVerdict]]] = {}
    for item in freeings:
        by_resource.setdefault(item[0].resource, []).append(item)
    out = []
    for items in by_resource.values():
        items.sort(key=lambda i: i[0].at)
        for n, (freeing, live) in enumerate(items):
            following = items[n + 1][0] if n + 1 < len(items) else None
            until, note = _end(freeing, following, live, now)
            out.append(Accrued(freeing, max(freeing.at, min(until, now)), note, ongoing=following is None and live == (False, None)))
    out.sort(key=lambda a: a.freeing.at)
    return out


def _end(freeing: Freeing, following: Freeing | None, live: LiveVerdict, now: datetime) -> tuple[datetime, str]:
    at = freeing.at
    if following is not None:
        since = following.running_since
        if since is not None and at < since <= following.at:
            return since, f"until started again {since:%Y-%m-%d %H:%M}Z"
        return at, f"held again before the next action ({following.at:%Y-%m-%d %H:%M}Z), when is not recorded: not counted"
    if live is None:
        return now, "live state unreadable: counted up to now"
    resumed, since = live
    if not resumed:
        return now, "still freed"
    if since is not None and since > at:
        return since, f"until started again {since:%Y-%m-%d %H:%M}Z"
    return at, "held again (or gone) since, at a time Azure does not report: not counted"


def money(accrued: Accrued, hourly: float | None) -> float | None:
    """VM-hours times the hourly price of one VM (None without a price)."""
    return None if hourly is None else accrued.vm_hours * hourly


def daily(accrued: Sequence[Accrued], since: datetime, now: datetime,
          value: Callable[[Accrued], float | None]) -> list[tuple[datetime, float]]:
    """Per UTC day from `since` to `now`: the value (core-hours, money…) saved that day, spread evenly over each saving."""
    start = since.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [start + timedelta(days=d) for d in range((now - start).days + 1)]
    totals = [0.0] * len(days)
    for a in accrued:
        amount = value(a)
        span = (a.until - a.freeing.at).total_seconds()
        if not amount or span <= 0:
            continue
        for i, day in enumerate(days):
            lo, hi = max(day, a.freeing.at), min(day + timedelta(days=1), a.until)
            if hi > lo:
                totals[i] += amount * (hi - lo).total_seconds() / span
    return list(zip(days, totals, strict=True))

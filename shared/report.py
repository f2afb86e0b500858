"""`autopilot report`: what the autopilot did and saved, per workspace and per rule, over a window.

``build`` is pure: the ledger's outcome rows, the live verdict on each freeing, the workspaces'
regions and the prices in, the report out. ``gather`` is the shell around it: one ledger query,
one list of computes and one region read per workspace that freed VMs, one price per size and
region (cached in the ledger for a day).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.adapters.prices import Price
from shared.model import ResourceId, Status, name_key
from shared.savings import Accrued, Freeing, LiveVerdict, accrue, daily, money

log = logging.getLogger("autopilot.report")

MAX_ROWS = 100_000  # outcomes read for one report; the window is cut at this many, and the report says so
RECENT = 50  # outcomes listed in the report's table of recent outcomes


@dataclass
class Line:
    """One workspace and rule: what was attempted, how it ended, and what it saved."""

    workspace: str
    rule: str
    actions: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    planned: int = 0
    vms: int = 0
    cores: int = 0
    core_hours: float = 0.0
    money: float | None = None
    would_free: int = 0  # cores the planned (observe mode) writes would have freed

    def as_dict(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "rule": self.rule, "actions": self.actions, "done": self.done,
                "failed": self.failed, "skipped": self.skipped, "planned": self.planned, "vms_freed": self.vms,
                "cores_freed": self.cores, "cores_planned": self.would_free, "core_hours": round(self.core_hours, 3),
                "money": None if self.money is None else round(self.money, 2)}


@dataclass
class Report:
    since: datetime
    now: datetime
    lines: list[Line] = field(default_factory=list)
    accrued: list[Accrued] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    outcomes_by_rule: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, status) → count
    days: list[tuple[datetime, float, float | None]] = field(default_factory=list)  # day, core-hours, money
    prices: dict[tuple[str, str], Price | str] = field(default_factory=dict)  # (region, size) → price or why none
    notes: list[str] = field(default_factory=list)
    currency: str = "USD"
    hourly_now: float | None = None  # money per hour of what is still freed, when priced

    @property
    def cores(self) -> int:
        return sum(line.cores for line in self.lines)

    @property
    def core_hours(self) -> float:
        return sum(line.core_hours for line in self.lines)

    @property
    def cores_now(self) -> int:
        """Cores freed and still freed now (the rate the savings go on at)."""
        return sum(a.freeing.cores for a in self.accrued if a.ongoing)

    @property
    def money(self) -> float | None:
        priced = [line.money for line in self.lines if line.money is not None]
        return sum(priced) if priced else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(), "now": self.now.isoformat(), "currency": self.currency,
            "totals": {"actions": sum(line.actions for line in self.lines), "cores_freed": self.cores,
                       "cores_still_freed": self.cores_now,
                       "money_per_hour_now": None if self.hourly_now is None else round(self.hourly_now, 4),
                       "core_hours": round(self.core_hours, 3), "money": None if self.money is None else round(self.money, 2)},
            "lines": [line.as_dict() for line in self.lines],
            "savings": [{"workspace": a.freeing.workspace, "target": a.freeing.target, "rule": a.freeing.rule,
                         "action": a.freeing.kind, "at": a.freeing.at.isoformat(), "until": a.until.isoformat(),
                         "size": a.freeing.size, "vms": a.freeing.vms, "cores": a.freeing.cores,
                         "core_hours": round(a.core_hours, 3), "note": a.note} for a in self.accrued],
            "prices": {f"{region}/{size}": (p.hourly if isinstance(p, Price) else None) for (region, size), p in self.prices.items()},
            "notes": list(self.notes),
        }


# What a freeing can be of: a compute (stopped, scaled down, recycled) or an online deployment (deleted).
FREEING_COLLECTIONS = ("/computes/", "/onlineendpoints/")


COUNTED = tuple(s.value for s in (Status.DONE, Status.FAILED, Status.SKIPPED, Status.PLANNED))


def freeing_of(row: Mapping[str, Any]) -> Freeing | None:
    """A ledger outcome row as a freeing: a done write that recorded VMs freed; None for any other row."""
    if row.get("Status") != Status.DONE.value or not row.get("Size") or not isinstance(row.get("At"), datetime):
        return None
    try:
        vms, cores = int(row.get("Vms") or 0), max(0, int(row.get("Cores") or 0))
        params = json.loads(str(row.get("Params") or "{}"))
    except (TypeError, ValueError):
        return None
    resource = str(row.get("Resource") or "").lower()
    if vms <= 0 or not isinstance(params, dict) or not any(part in resource for part in FREEING_COLLECTIONS):
        return None
    since = row.get("RunningSince")
    return Freeing(str(row["Resource"]), str(row.get("Workspace") or ""), str(row.get("Target") or ""), _rule(row),
                   str(row.get("Action") or ""), row["At"], str(row["Size"]), vms, cores, params,
                   since if isinstance(since, datetime) else None)


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _rule(row: Mapping[str, Any]) -> str:
    return str(row.get("Rule") or row.get("Action") or "-")


def build(rows: Sequence[Mapping[str, Any]], live: Mapping[int, LiveVerdict], regions: Mapping[str, str],
          prices: Mapping[tuple[str, str], Price | str], since: datetime, now: datetime) -> Report:
    """The report of the outcome rows (newest first); `live` is keyed by the row's index, `regions` by workspace key."""
    report = Report(since, now, prices=dict(prices))
    lines: dict[tuple[str, str], Line] = {}
    freeings: list[tuple[Freeing, LiveVerdict]] = []
    for index, row in enumerate(rows):
        key = (str(row.get("Workspace") or "-"), _rule(row))
        line = lines.setdefault(key, Line(*key))
        line.actions += 1
        status = str(row.get("Status") or "")
        if status in COUNTED:  # a row's status is only ever one of these: anything else counts as an action, nothing more
            setattr(line, status, getattr(line, status) + 1)
        report.outcomes_by_rule[(key[1], status)] = report.outcomes_by_rule.get((key[1], status), 0) + 1
        freeing = freeing_of(row)
        if freeing is not None:
            freeings.append((freeing, live.get(index)))
        elif status == Status.PLANNED.value:
            line.would_free += _int(row.get("Cores"))
    report.accrued = accrue(freeings, now)

    def hourly(a: Accrued) -> float | None:
        price = prices.get((regions.get(a.freeing.workspace_key, ""), a.freeing.size.lower()))
        return price.hourly if isinstance(price, Price) else None

    for a in report.accrued:
        line = lines[(a.freeing.workspace or "-", a.freeing.rule)]
        line.vms += a.freeing.vms
        line.cores += a.freeing.cores
        line.core_hours += a.core_hours
        saved = money(a, hourly(a))
        if saved is not None:
            line.money = (line.money or 0.0) + saved
    report.lines = sorted(lines.values(), key=lambda line: (name_key(line.workspace), line.rule))
    rates = [(hourly(a) or 0.0) * a.freeing.vms for a in report.accrued if a.ongoing and hourly(a) is not None]
    report.hourly_now = sum(rates) if rates else None
    report.recent = [dict(row) for row in rows[:RECENT]]
    core_days = daily(report.accrued, since, now, lambda a: a.core_hours)
    money_days = daily(report.accrued, since, now, lambda a: money(a, hourly(a)))
    priced = any(hourly(a) is not None for a in report.accrued)
    report.days = [(day, ch, m if priced else None) for (day, ch), (_, m) in zip(core_days, money_days, strict=True)]
    report.notes += _price_notes(report, regions)
    if any(a.freeing.cores == 0 for a in report.accrued):
        report.notes.append("some actions freed VMs whose size's vCPUs could not be read at the time: their cores count as 0")
    return report


def _price_notes(report: Report, regions: Mapping[str, str]) -> list[str]:
    """Why some (or all) savings carry no money figure."""
    notes = []
    missing = {a.freeing.workspace for a in report.accrued if a.freeing.workspace_key not in regions}
    if missing:
        notes.append(f"no money estimate for {', '.join(sorted(missing))}: the workspace's region could not be read")
    for (region, size), price in sorted(report.prices.items()):
        if not isinstance(price, Price):
            notes.append(f"no price for {size} in {region}: {price}; core-hours shown only")
    return notes


def amount(value: float) -> str:
    """Money as people read it: cents, or more places for what is under a cent."""
    return f"{value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.4f}"


def summary(report: Report) -> list[str]:
    """The report in a few lines, as the demo and the table output end."""
    money_text = (f", est. {report.currency} {amount(report.money)} at pay-as-you-go Linux retail prices"
                  if report.money is not None else " (no price available: core-hours only)")
    head = (f"savings since {report.since:%Y-%m-%d %H:%M}Z: {sum(a.freeing.vms for a in report.accrued)} VM(s) freed by "
            f"{len(report.accrued)} action(s), {report.cores} cores; {report.core_hours:,.2f} core-hours saved so far{money_text}")
    out = [head]
    planned = sum(line.would_free for line in report.lines)
    if planned:
        out.append(f"observe mode: the planned writes would free {planned} cores (nothing was changed)")
    if report.cores_now:
        rate = f", {report.currency} {report.hourly_now:,.2f} per hour" if report.hourly_now is not None else ""
        out.append(f"still freed now: {report.cores_now} cores{rate}, for as long as they stay stopped or scaled down")
    for line in report.lines:
        if line.vms or line.failed:
            saved = f", {report.currency} {amount(line.money)}" if line.money is not None else ""
            out.append(f"  {line.workspace} / {line.rule}: {line.done} done, {line.failed} failed; {line.cores} cores freed, "
                       f"{line.core_hours:,.2f} core-hours{saved}")
    return out


# --- the shell -----------------------------------------------------------------------------------


def gather(rows: Sequence[Mapping[str, Any]], allowed: Sequence[ResourceId], workspace: Callable[[ResourceId], Any],
           price_of: Callable[[str, str, datetime], Price | str], since: datetime, now: datetime) -> Report:
    """Read what the rows' freeings need (live computes, regions, prices) and build the report."""
    from shared.actions import change_from
    from shared.errors import AzureError

    notes: list[str] = []
    needed: dict[str, list[tuple[int, Freeing]]] = {}
    for index, row in enumerate(rows):
        freeing = freeing_of(row)
        if freeing is not None:
            needed.setdefault(freeing.workspace_key, []).append((index, freeing))
    live: dict[int, LiveVerdict] = {}
    regions: dict[str, str] = {}
    for key, items in needed.items():
        ws_id = next((w for w in allowed if w.key == key), None)
        if ws_id is None:
            notes.append(f"{items[0][1].workspace}: not in ALLOWED_WORKSPACES, its live state is not read (counted up to now)")
            continue
        try:
            ws = workspace(ws_id)
            computes = {name_key(c.name): c for c in ws.list_computes()}
            regions[key] = ws.location().lower()
        except AzureError as exc:
            notes.append(f"{ws_id.name}: live state unreadable ({exc}): its savings are counted up to now")
            continue
        for index, freeing in items:
            try:
                change = change_from(freeing.kind, freeing.params)
                live[index] = change.resumed(computes.get(name_key(freeing.target)), freeing.at)
            except (ValueError, TypeError):  # a ledger row whose parameters are not the kind's: judged as unread
                continue
    prices: dict[tuple[str, str], Price | str] = {}
    for key, items in needed.items():
        if key in regions:
            for _, freeing in items:
                size = freeing.size.lower()
                if (regions[key], size) not in prices:
                    prices[(regions[key], size)] = price_of(regions[key], freeing.size, now)
    report = build(rows, live, regions, prices, since, now)
    report.notes[:0] = notes
    if len(rows) >= MAX_ROWS:
        report.notes.insert(0, f"the window holds more than {MAX_ROWS} outcomes: only the newest {MAX_ROWS} are counted")
    return report

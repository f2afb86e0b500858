"""Azure calls per remediation: the real engine, adapters and SDKs against the local emulator.

Every remediation runs on a freshly reset emulator (demo scenario), a fresh ledger table and a
fresh credential (a cold worker: token requests are counted; a warm worker reuses its tokens).
The emulator journals every request; a thin wrapper around the ledger notes the journal position
at each claim, which the engine takes just before a guarded write, so each run splits into its
gather + decide part and its guarded write(s).
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.localstack import LocalAzure
from bench.report import Table

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ACTIONS = ("/listkeys", "/listsecrets", "/listnodes", "/getlogs")  # ARM models these reads as POST actions
CATEGORIES = ("read", "write", "poll", "token", "notify")


def category(entry: dict[str, Any]) -> str:
    """What one journaled request was: read, write, LRO poll, token request, or a notification."""
    service, method, path = entry["service"], entry["method"].upper(), entry["path"].lower().rstrip("/")
    if service == "identity":
        return "token"
    if service == "sinks":
        return "notify"
    if method == "GET" and ("operationsstatus/" in path or "operationresults/" in path):
        return "poll"
    if method in WRITE_METHODS and service in ("arm", "keyvault") and not path.endswith(READ_ACTIONS):
        return "write"
    return "read"


def tally(entries: Iterable[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter({c: 0 for c in CATEGORIES})
    for entry in entries:
        counts[category(entry)] += 1
    return counts


def label(entry: dict[str, Any]) -> str:
    """A short name for a request: its verb and the last meaningful part of its path."""
    parts = [p for p in entry["path"].split("/") if p]
    kind = category(entry)
    if kind == "token":
        return "token"
    if kind == "poll":
        return "poll"
    tail = "/".join(parts[-2:]) if len(parts) >= 2 else "/".join(parts)
    if entry["service"] == "keyvault" and len(parts) >= 3:
        tail = "secret " + parts[3] if len(parts) > 3 else "secrets"
    status = entry.get("status")
    suffix = f" ({status})" if status and status >= 400 else ""
    return f"{entry['method']} {tail}{suffix}"


@dataclass(frozen=True)
class Minimum:
    """The fewest calls a remediation needs: reads to gather and decide, then reads and writes to act."""

    gather_reads: int
    reads: int
    writes: int
    polls: bool
    why: str

    def text(self, part: str) -> str:
        if part == "gather+decide":
            return f"{self.gather_reads}R"
        reads = self.reads + (self.gather_reads if part == "whole run" else 0)
        return f"{reads}R + {self.writes}W" + (" + polling" if self.polls else "")

    def calls(self, part: str) -> int:
        if part == "gather+decide":
            return self.gather_reads
        return self.reads + self.writes + (self.gather_reads if part == "whole run" else 0)


@dataclass
class Measured:
    """One remediation: its journal split at the claim, its outcome and its wall time."""

    name: str
    minimum: Minimum
    gather: list[dict[str, Any]]
    write: list[dict[str, Any]]
    outcome: str
    wall_ms: float
    notes: list[str] = field(default_factory=list)

    @property
    def whole(self) -> list[dict[str, Any]]:
        return self.gather + self.write

    def part(self, name: str) -> list[dict[str, Any]]:
        return {"gather+decide": self.gather, "guarded write": self.write}.get(name, self.whole)

    def extra(self, part: str = "whole run") -> int:
        """Reads and writes above the minimum (polls and tokens aside)."""
        counts = tally(self.part(part))
        return counts["read"] + counts["write"] - self.minimum.calls(part)


def split(entries: Sequence[dict[str, Any]], claims: Sequence[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entries up to the first claim's journal position, and the rest."""
    if not claims:
        return list(entries), []
    first = claims[0]
    return [e for e in entries if e["seq"] <= first], [e for e in entries if e["seq"] > first]


PARTS = ("gather+decide", "guarded write", "whole run")


def table(runs: Sequence[Measured]) -> Table:
    t = Table("3. Azure calls per remediation (real engine + SDKs -> emulator; cold credential per remediation)",
              ["remediation", "part", "reads", "writes", "LRO polls", "tokens", "total", "minimum", "extra R+W", "outcome", "wall ms"])
    over = []
    for run in runs:
        for part in PARTS:
            c = tally(run.part(part))
            total = c["read"] + c["write"] + c["poll"] + c["token"]
            last = part == "whole run"
            t.add(run.name if part == PARTS[0] else "", part, c["read"], c["write"], c["poll"], c["token"], total,
                  run.minimum.text(part), run.extra(part), run.outcome if last else "", run.wall_ms if last else None)
        if run.extra() > 0:
            over.append(f"{run.name} +{run.extra()}")
    for run in runs:
        t.notes.append(f"{run.name}: minimum = {run.minimum.why}")
        t.notes.append(f"{run.name}: write path = " + ", ".join(label(e) for e in run.write if category(e) != "notify"))
        t.notes.extend(f"{run.name}: {n}" for n in run.notes)
    t.notes.append("reads include POST actions that only read (listKeys, listSecrets, metrics:getBatch) and Key Vault's "
                   "unauthenticated challenge (401); tokens = managed-identity requests; notifications to the sinks are not counted")
    t.notes.append("wall ms is informational: the emulator answers each LRO InProgress once with Retry-After: 1 (about 1 s of waiting)")
    failed = [r.name for r in runs if r.outcome != "done"]
    if failed:
        t.verdict = f"FAIL: {', '.join(failed)} did not complete"
    elif over:
        t.verdict = f"ABOVE MINIMUM: all {len(runs)} remediations done and verified; extra reads+writes per run: {', '.join(over)}"
    else:
        t.verdict = "PASS: every remediation completed with its minimum number of calls"
    return t


# --- running the real engine ----------------------------------------------------------------------


class _NotingLedger:
    """The real ledger; each claim also notes the emulator's journal position (the start of a guarded write)."""

    def __init__(self, ledger: Any, position: Callable[[], int]) -> None:
        self._ledger = ledger
        self._position = position
        self.claims: list[int] = []

    def claim(self, key: str, now: datetime, **fields: Any) -> Any:
        self.claims.append(self._position())
        return self._ledger.claim(key, now, **fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


class Runner:
    def __init__(self, azure: LocalAzure) -> None:
        self.azure = azure

    def env(self, **overrides: str) -> dict[str, str]:
        from local.stack import app_settings

        c = self.azure.client
        topics = (self.azure.scenario.get("sinks") or {}).get("eventgridTopics") or {}
        extra = {"LEDGER_TABLE": f"bench{uuid.uuid4().hex[:12]}", "WORK_QUEUE": f"bench-{uuid.uuid4().hex[:12]}", **overrides}
        return app_settings(c.url, c.ca, c.identity_header, self.azure.storage.connection_string, mode="enforce",
                            eventgrid_key=str(topics.get("autopilot-events", "")), extra=extra)

    def _fresh(self, **overrides: str) -> tuple[Any, _NotingLedger]:
        from shared.adapters.azure import forget_credentials
        from shared.adapters.ledger import Ledger
        from shared.settings import Settings

        self.azure.reset()
        forget_credentials()  # a cold worker: its first call of each audience asks for a token
        s = Settings.from_env(self.env(**overrides))
        return s, _NotingLedger(Ledger(s.storage_connection, s.ledger_table), self.azure.journal_seq)

    def engine(self, **overrides: str) -> tuple[Any, _NotingLedger]:
        from shared.runtime import Wiring

        s, ledger = self._fresh(**overrides)
        return Wiring(s, ledger).engine(), ledger

    def rotator(self, **overrides: str) -> tuple[Any, _NotingLedger]:
        from shared.runtime import Wiring

        s, ledger = self._fresh(**overrides)
        return Wiring(s, ledger).rotator(), ledger

    def measure(self, name: str, minimum: Minimum, build: Callable[[], tuple[Any, _NotingLedger]],
                act: Callable[[Any, _NotingLedger, datetime], Any], target: str) -> Measured:
        subject, ledger = build()
        now = datetime.now(UTC)
        start_seq = self.azure.journal_seq()
        started = time.perf_counter()
        report = act(subject, ledger, now)
        wall = (time.perf_counter() - started) * 1000
        entries = self.azure.journal(start_seq)
        gather, write = split(entries, ledger.claims)
        # The target's last outcome: marks, notices and untouched datastores come before the act itself.
        mine = [o for o in report.outcomes if o.action.target == target]
        outcome = mine[-1].status.value if mine else "no outcome"
        notes = []
        others = [f"{o.action.kind.value} {o.action.target}: {o.status.value}" for o in report.outcomes
                  if o.action.target != target and o.action.change.writes_to_azure]
        if others:
            notes.append("other writes in the same run: " + "; ".join(others))
        if len(ledger.claims) > 1:
            notes.append(f"{len(ledger.claims)} claims in the run; the write path counts all of them")
        return Measured(name, minimum, gather, write, outcome, wall, notes)


def run(azure: LocalAzure) -> Table:
    from local.emulator.client import DEMO_WORKSPACE_ID
    from local.stack import DEMO_VAULT
    from shared.model import Mark
    from shared.work import Kind, WorkItem, sweep

    # The SDKs' own import is a one-off per process, not a cost of any remediation.
    for module in ("azure.ai.ml", "azure.keyvault.secrets", "azure.mgmt.storage", "azure.monitor.querymetrics"):
        importlib.import_module(module)

    runner = Runner(azure)
    ws = DEMO_WORKSPACE_ID
    alice = f"{ws}/computes/ci-alice"

    def stop(engine: Any, ledger: Any, now: datetime) -> Any:
        # The idle mark of an earlier sweep, its grace (0 minutes) passed: this sweep stops ci-alice.
        ledger.put_mark(Mark(alice, now - timedelta(minutes=1), "idle"))
        return engine.run(sweep(Kind.IDLE_SWEEP, ws, now), now)

    runs = [
        runner.measure("stop idle instance", Minimum(3, 1, 1, True, "gather: list computes, list jobs, CPU metrics; act (the issue's): 1 read + 1 POST stop + polling"),
                       lambda: runner.engine(IDLE_GRACE_MINUTES="0", IDLE_SHUTDOWN_MINUTES="0"), stop, "ci-alice"),
        runner.measure("scale cluster (PATCH)", Minimum(2, 1, 1, False, "gather: list computes, list jobs; act: 1 read + 1 PATCH of scaleSettings"),
                       runner.engine, lambda e, _l, now: e.run(sweep(Kind.CLUSTER_SWEEP, ws, now), now), "cpu-cluster"),
        runner.measure("set idle shutdown", Minimum(3, 1, 1, False, "gather: list computes, list jobs, CPU metrics; act: 1 read + 1 POST updateIdleShutdownSetting"),
                       lambda: runner.engine(EXEMPT_NAME_PATTERN="^ci-(erin|frank)$"),
                       lambda e, _l, now: e.run(sweep(Kind.IDLE_SWEEP, ws, now), now), "ci-alice"),
    ]
    endpoints = [e for w in azure.scenario.get("workspaces", []) for e in w.get("onlineEndpoints", [])]
    failed = [f"{ws}/onlineEndpoints/{e['name']}/deployments/{d['name']}".lower() for e in endpoints for d in e["deployments"]
              if d.get("state") == "Failed"]

    def delete(engine: Any, ledger: Any, now: datetime) -> Any:
        # Every failed deployment was told at an earlier sweep (grace 0 minutes passed): this sweep deletes the one
        # with no traffic (scoring-api/canary) and keeps those receiving traffic or mirror traffic.
        for key in failed:
            ledger.put_mark(Mark(key, now - timedelta(minutes=1), "failed"))
        return engine.run(sweep(Kind.DEPLOYMENT_SWEEP, ws, now), now)

    runs.append(runner.measure(
        "delete failed deployment", Minimum(1 + len(endpoints) + 1, 2, 1, True,
                                            f"gather: list endpoints, list deployments per endpoint (E={len(endpoints)}), VM sizes (the cores "
                                            "freed); act: re-read the deployment and its endpoint's traffic + DELETE + polling"),
        lambda: runner.engine(FAILED_DEPLOYMENT_GRACE_MINUTES="0"), delete, "scoring-api/deployments/canary"))
    runs.append(runner.measure(
        "cancel not-responding job", Minimum(1, 1, 1, True, "gather: the event's job; act: re-read the job + POST cancel + polling"),
        lambda: runner.engine(NOT_RESPONDING_CANCEL_MINUTES="30"),
        lambda e, _l, now: e.run(WorkItem(Kind.NOT_RESPONDING, ws, f"bench-{uuid.uuid4().hex[:8]}", {"run": "score-serverless-0107"}), now),
        "score-serverless-0107"))
    datastores = sum(1 for w in azure.scenario.get("workspaces", []) for d in w.get("datastores", [])
                     if d.get("credential") == "AccountKey" and d.get("account") == "stmldemo")
    runs.append(runner.measure(
        "rotate credential", Minimum(3 + datastores, 0, 3 + datastores, True,
                                     f"gather: secret, listKeys, datastore list, listSecrets per account-key datastore (D={datastores}); "
                                     "act: regenerateKey, 1 PUT per datastore, resyncKeys (LRO), 1 secret version; no verification re-reads"),
        runner.rotator,
        lambda r, _l, now: r.run(WorkItem(Kind.ROTATE, DEMO_VAULT, f"bench-{uuid.uuid4().hex[:8]}", {"secret": "stmldemo-key"}), now),
        "stmldemo-key"))
    return table(runs)

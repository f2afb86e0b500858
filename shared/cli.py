"""`autopilot`: the operator's command (plan, explain, history).

    autopilot plan --workspace RESOURCE_ID [--json]   what the autopilot would do now (read-only)
    autopilot explain FILE|-                           classify an inbound payload; nothing is sent to Azure
    autopilot history [--hours N] [--json]             outcomes recorded in the ledger

Exit codes: 0 done (or a payload understood / deliberately ignored), 2 bad input (one line on
stderr), 1 an Azure or storage call failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import Ignored, Rejected, parse_any
from shared.intake import allowed
from shared.model import ResourceId, Verdict
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json
from shared.settings import SettingsError, from_environment


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    widths[-1] = min(widths[-1], 110)
    line = lambda r: "  ".join(str(c)[:w].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _verdict_rows(verdicts: list[Verdict]) -> list[list[str]]:
    rows = []
    for v in verdicts:
        actions = ", ".join(a.kind.value for a in v.actions) or "-"
        rows.append([v.rule, v.target, v.decision.value, actions, v.reason])
    return rows


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        workspace = ResourceId.parse(args.workspace)
    except ValueError as exc:
        raise SystemExit(_fail(f"--workspace: {exc}")) from None
    settings = from_environment(ALLOWED_WORKSPACES=workspace.id)
    from shared.engine import plan
    from shared.errors import AzureError
    from shared.runtime import Wiring

    marks, restores, notes, ledger = {}, {}, [], None
    if settings.storage_connection:
        try:
            from shared.adapters.ledger import Ledger

            ledger = Ledger(settings.storage_connection, settings.ledger_table)
            marks = ledger.marks()
            restores = {key: max_nodes for key, (max_nodes, _) in ledger.restores().items()}
        except Exception as exc:
            notes.append(f"ledger unavailable ({type(exc).__name__}): idle marks not shown")
    wiring = Wiring(settings, ledger)
    now = datetime.now(UTC)
    try:
        # Planning reads Azure only: it writes no ledger row (marks and restores are passed in) and sends nothing.
        verdicts, more = plan(settings, wiring.workspace(workspace), wiring.metrics, now, marks, restores)
    except AzureError as exc:
        print(f"autopilot: {exc}", file=sys.stderr)
        return 1
    notes += more
    if args.json:
        print(json.dumps({"workspace": workspace.id, "mode": settings.mode.value, "at": now.isoformat(), "notes": notes,
                          "verdicts": [_verdict_json(v) for v in verdicts]}, indent=2))
        return 0
    print(f"workspace {workspace.name} — mode {settings.mode.value} — {now:%Y-%m-%d %H:%M}Z")
    print(_table(_verdict_rows(verdicts), ["RULE", "TARGET", "DECISION", "ACTIONS", "REASON"]))
    for note in notes:
        print(f"note: {note}")
    return 0


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {"rule": v.rule, "target": v.target, "decision": v.decision.value, "reason": v.reason,
            "actions": [{"kind": a.kind.value, "target": a.target, "params": a.change.params()} for a in v.actions]}


def cmd_explain(args: argparse.Namespace) -> int:
    raw = sys.stdin.buffer.read(MAX_EVENT_BYTES + 1) if args.file == "-" else _read(args.file)
    try:
        payload = load_json(raw, MAX_EVENT_BYTES, "payload")
    except PayloadError as exc:
        return _fail(f"malformed: {exc}")
    settings = from_environment()
    results = parse_any(payload, allowed(settings))
    worst = 0
    for result in results:
        if isinstance(result, Rejected):
            worst = 2
            print(f"rejected: {result.describe()}", file=sys.stderr)
        elif isinstance(result, Ignored):
            print(result.describe())
        else:
            print(f"accepted: {result.describe()}")
    return worst


def cmd_history(args: argparse.Namespace) -> int:
    from shared.adapters.ledger import Ledger

    settings = from_environment()
    if not settings.storage_connection:
        return _fail("AzureWebJobsStorage: required to read the ledger")
    since = datetime.now(UTC) - timedelta(hours=args.hours)
    rows = list(Ledger(settings.storage_connection, settings.ledger_table).history(since, args.limit))
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    table = [[f"{r['At']:%m-%d %H:%M}", r.get("Status", ""), r.get("Action", ""), f"{r.get('Workspace', '')}/{r.get('Target', '')}",
              r.get("Detail", "")] for r in rows]
    print(_table(table, ["AT (UTC)", "STATUS", "ACTION", "TARGET", "DETAIL"]))
    return 0


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_EVENT_BYTES + 1)  # one byte over is enough to say it is too large
    except OSError as exc:
        raise SystemExit(_fail(f"{path}: {exc.strerror}")) from None


def _fail(message: str) -> int:
    print(f"autopilot: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autopilot", description="aml-autopilot operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="what the autopilot would do now on a workspace (read-only)")
    plan.add_argument("--workspace", required=True, help="workspace resource id")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(run=cmd_plan)
    explain = sub.add_parser("explain", help="classify an inbound payload (Event Grid, CloudEvents, alert)")
    explain.add_argument("file", help="JSON file, or - for stdin")
    explain.set_defaults(run=cmd_explain)
    history = sub.add_parser("history", help="outcomes recorded in the ledger")
    history.add_argument("--hours", type=float, default=24)
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--json", action="store_true")
    history.set_defaults(run=cmd_history)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())

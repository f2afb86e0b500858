"""`autopilot`: the operator's command (plan, explain, history, report, doctor).

    autopilot plan --workspace RESOURCE_ID|all [--output table|json|csv] [--inventory]
                                                                           what the autopilot would do now, and every compute (read-only)
    autopilot explain FILE|-                                               classify an inbound payload; nothing is sent to Azure
    autopilot history [--hours N] [--limit N] [--output table|json|csv]    outcomes recorded in the ledger
    autopilot report [--since 30d] [--output table|json|csv|html] [--file F]  actions and savings per workspace and rule
    autopilot doctor                                                       could the signed-in identity run enforce mode? ✓ or ✗ and the fix, per check
    autopilot --version

`--json` is short for `--output json`. The plan's table shows the rules' verdicts and then the inventory
(every compute of any type, serverless jobs, online deployments); json carries both (``verdicts``,
``inventory``); csv carries the verdicts, or the inventory with ``--inventory``. `--workspace all` plans every workspace in ALLOWED_WORKSPACES
and every one Resource Graph finds in ALLOWED_SCOPES, with progress on stderr. Long reasons and details wrap onto continuation lines in a table; csv
and json carry them whole.

Exit codes: 0 done (or a payload understood / deliberately ignored), 2 bad input or a bad setting
(one line on stderr), 1 an Azure or storage call failed (one line on stderr). A closed output pipe
(`autopilot plan --json | head -1`) ends quietly with 141, as a process stopped by SIGPIPE would.
`doctor` prints its checks on stdout and exits 0 only when every one passed (2 for a bad setting, else 1).
A ledger the app has not written to yet (no table) reads as an empty one: `history` and `report` say so in one
note and exit 0, as `plan` does.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from shared.errors import AzureError, Gone, NotConfigured
from shared.events import Ignored, Rejected, parse_any
from shared.intake import allowed
from shared.model import ResourceId, Verdict
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json
from shared.settings import Settings, SettingsError, from_environment
from shared.work import Kind, from_event

OUTPUTS = ("table", "json", "csv")
PLAN_COLUMNS = ["workspace", "rule", "target", "decision", "actions", "reason"]
INVENTORY_COLUMNS = ["workspace", "name", "type", "state", "size", "nodes", "cores", "owner", "verdict"]
HISTORY_COLUMNS = ["at", "status", "action", "workspace", "target", "reason", "detail", "owner", "trigger"]
MAX_HOURS = 24 * 366 * 10  # ten years: further back than any ledger row
WIDTH_WHEN_PIPED = 160  # the table's width when the output is not a terminal (COLUMNS overrides it)
MIN_LAST_COLUMN = 40  # the wrapped column never gets narrower than this, however narrow the terminal
SIGPIPE_EXIT = 128 + 13


# --- output -----------------------------------------------------------------------------------------


def _printable(cell: Any) -> str:
    """A cell on one line, every character the terminal would act on or hide (escape sequences, other control and
    format characters such as bidi overrides) shown as ``?``: names, reasons and details come from Azure and the ledger."""
    text = " ".join(str(cell).split())
    return text if text.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in text)


def _table(rows: list[list[str]], headers: list[str], width: int | None = None) -> str:
    """Columns padded to their widest cell; the last one wraps at word boundaries onto continuation lines.

    Nothing is cut: a cell wider than the room left is carried on the next lines, aligned under its column.
    """
    rows = [[_printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    offset = sum(widths[:-1]) + 2 * (len(widths) - 1)
    total = width or shutil.get_terminal_size((WIDTH_WHEN_PIPED, 24)).columns
    widths[-1] = min(widths[-1], max(MIN_LAST_COLUMN, total - offset))

    def lines(r: list[str]) -> list[str]:
        pieces = textwrap.wrap(r[-1], widths[-1], break_long_words=True, break_on_hyphens=False) or [""]
        first = "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)), pieces[0]]).rstrip()
        return [first, *(" " * offset + piece for piece in pieces[1:])]

    out = [*lines(headers), "  ".join("-" * w for w in widths)]
    for r in rows:
        out += lines(r)
    return "\n".join(out)


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a text starting like a formula (``=``, ``+``, ``-``, ``@``, a tab or a
    line break: names, reasons and details come from Azure and the ledger) is led by a ``'``, as OWASP's
    "CSV Injection" advises. Numbers stay numbers, and so does text that reads as one (``-3``) and a lone ``-`` (no value)."""
    if not isinstance(value, str):
        return value
    # A lone carriage return is no line terminator to the writer (lineterminator "\n"), so it would be written
    # unquoted and split the row for a reader: it is written as the line break it means.
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.startswith(_FORMULA) or value == "-":
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def _csv(rows: list[list[Any]], headers: list[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([csv_cell(c) for c in row] for row in rows)


def _json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def _fail(message: str, code: int = 2) -> int:
    """One line on stderr (any line breaks in the message folded), and the exit code to return."""
    print(f"autopilot: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _refuse(message: str) -> NoReturn:
    raise SystemExit(_fail(message))


# --- plan -------------------------------------------------------------------------------------------


def _verdict_rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [[v.rule, v.target, v.decision.value, _actions(v), v.reason] for v in verdicts]


def _actions(v: Verdict) -> str:
    return ", ".join(a.kind.value for a in v.actions) or "-"


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {"rule": v.rule, "target": v.target, "decision": v.decision.value, "reason": v.reason,
            "actions": [{"kind": a.kind.value, "target": a.target, "params": a.change.params()} for a in v.actions]}


def cmd_plan(args: argparse.Namespace) -> int:
    everywhere = args.workspace.strip().lower() == "all"
    if everywhere:
        settings = from_environment()
        if settings.scopes:  # ALLOWED_SCOPES: ask Resource Graph now (the command keeps no cache of its own)
            from shared.adapters.discovery import ResourceGraph
            from shared.fleet import Resolver, Uncached

            settings = Resolver(settings, Uncached, lambda: ResourceGraph(settings)).settings(datetime.now(UTC))
        targets = list(settings.workspaces)
    else:
        try:
            workspace = ResourceId.parse(args.workspace)
        except ValueError as exc:
            _refuse(f"--workspace: {exc}")
        settings = from_environment(ALLOWED_WORKSPACES=workspace.id)
        targets = [workspace]

    from shared.engine import survey
    from shared.runtime import Wiring

    marks, restores, ledger_notes, ledger = {}, {}, [], None
    if settings.storage_configured:
        try:
            from shared.adapters.ledger import open_ledger

            ledger = open_ledger(settings, create=False)  # read only: Storage Table Data Reader is enough
            marks = ledger.marks()
            restores = {key: max_nodes for key, (max_nodes, _) in ledger.restores().items()}
        except Gone:  # the app has not written yet: nothing is marked
            ledger_notes.append(_not_recorded_yet(settings, ledger, "no idle marks to show"))
        except Exception as exc:
            ledger_notes.append(f"ledger unavailable ({type(exc).__name__}): idle marks not shown")
    wiring = Wiring(settings, ledger)
    plans: list[dict[str, Any]] = []
    failed = 0
    for n, workspace in enumerate(targets, 1):
        if everywhere:
            print(f"planning {n}/{len(targets)} {workspace.name} …", file=sys.stderr, flush=True)
        now = datetime.now(UTC)
        try:
            # Planning reads Azure only: it writes no ledger row (marks and restores are passed in) and sends nothing.
            verdicts, notes, inventory = survey(settings, wiring.workspace(workspace), wiring.metrics, now, marks, restores)
        except AzureError as exc:
            failed += 1
            _fail(f"{workspace.name}: {exc}" if everywhere else exc, 1)
            if isinstance(exc, NotConfigured):
                break  # no credential, or a refused identity: every other workspace would say the same
            continue
        plans.append({"workspace": workspace, "mode": settings.mode.value, "at": now, "notes": ledger_notes + notes,
                      "verdicts": verdicts, "inventory": inventory})
    _print_plans(plans, args.output, everywhere, args.inventory)
    return 1 if failed else 0


def _inventory_rows(rows: list[Any]) -> list[list[str]]:
    def known(value: int | None) -> str:
        return "?" if value is None else str(value)
    return [[r.name, r.type, r.state, r.size or "-", known(r.nodes), known(r.cores), r.owner or "-", r.verdict] for r in rows]


def _print_plans(plans: list[dict[str, Any]], output: str, everywhere: bool, inventory: bool = False) -> None:
    if output == "json":
        docs = [{"workspace": p["workspace"].id, "mode": p["mode"], "at": p["at"].isoformat(), "notes": p["notes"],
                 "verdicts": [_verdict_json(v) for v in p["verdicts"]],
                 "inventory": [r.as_dict() for r in p["inventory"]]} for p in plans]
        if everywhere:
            _json(docs)
        elif docs:
            _json(docs[0])
    elif output == "csv" and inventory:
        _csv([[p["workspace"].id, r.name, r.type, r.state, r.size, "" if r.nodes is None else r.nodes,
               "" if r.cores is None else r.cores, r.owner, r.verdict] for p in plans for r in p["inventory"]], INVENTORY_COLUMNS)
    elif output == "csv":
        _csv([[p["workspace"].id, *row] for p in plans for row in _verdict_rows(p["verdicts"])], PLAN_COLUMNS)
        for p in plans:  # csv has no place for them; stderr keeps them in sight
            for note in p["notes"]:
                print(f"note: {p['workspace'].name}: {note}", file=sys.stderr)
    else:
        for i, p in enumerate(plans):
            if i:
                print()
            print(f"workspace {p['workspace'].name} — mode {p['mode']} — {p['at']:%Y-%m-%d %H:%M}Z")
            print(_table(_verdict_rows(p["verdicts"]), ["RULE", "TARGET", "DECISION", "ACTIONS", "REASON"]))
            print()
            print(f"inventory of {p['workspace'].name}: every compute, serverless job and online deployment")
            print(_table(_inventory_rows(p["inventory"]), ["NAME", "TYPE", "STATE", "SIZE", "NODES", "CORES", "OWNER", "VERDICT"]))
            for note in p["notes"]:
                print(f"note: {note}")


# --- explain ----------------------------------------------------------------------------------------

# What the worker does with each kind of work an accepted payload becomes.
WORK_SAID = {
    Kind.RUN_ENDED: "check the compute the run held",
    Kind.UNUSABLE_NODES: "inspect and recycle the cluster's unusable nodes",
    Kind.QUOTA: "free idle cores of the VM family",
    Kind.CLUSTER_SWEEP: "check every cluster of the workspace",
    Kind.DEPLOYMENT_SWEEP: "find failed online deployments, say why, release the quota of those with no traffic",
    Kind.NOT_RESPONDING: "read the not-responding job(s) and tell their owners (cancel only when opted in)",
    Kind.ROTATE: "rotate the credential if it is managed",
    Kind.IDLE_SWEEP: "judge every instance's idleness",
}


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
            item = from_event(result)
            print(f"accepted: {result.describe()} → {item.kind.value}: {WORK_SAID[item.kind]}")
    return worst


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_EVENT_BYTES + 1)  # one byte over is enough to say it is too large
    except OSError as exc:
        _refuse(f"{path}: {exc.strerror}")


# --- history ----------------------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    settings = from_environment()
    if not settings.storage_configured:
        return _fail("AzureWebJobsStorage: required to read the ledger (or AzureWebJobsStorage__accountName for the identity)")
    since = datetime.now(UTC) - timedelta(hours=args.hours)
    ledger = _ledger(settings)
    try:
        rows = list(ledger.history(since, args.limit))
    except Gone:
        return _nothing_recorded(_not_recorded_yet(settings, ledger, "no outcomes to show"), args.output, HISTORY_COLUMNS)
    except AzureError:
        raise
    except Exception as exc:
        return _fail(f"ledger: read the history: {type(exc).__name__}: {_scrub(str(exc), settings.storage_connection)}", 1)
    if args.output == "json":
        _json(rows)
    elif args.output == "csv":
        _csv([[r["At"].isoformat() if isinstance(r.get("At"), datetime) else r.get("At", ""),
               *(r.get(c.capitalize(), "") for c in HISTORY_COLUMNS[1:])] for r in rows], HISTORY_COLUMNS)
    else:
        table = [[f"{r['At']:%m-%d %H:%M}", r.get("Status", ""), r.get("Action", ""), f"{r.get('Workspace', '')}/{r.get('Target', '')}",
                  r.get("Detail", "")] for r in rows]
        print(_table(table, ["AT (UTC)", "STATUS", "ACTION", "TARGET", "DETAIL"]))
    return 0


def _not_recorded_yet(settings: Settings, ledger: Any, consequence: str) -> str:
    """Why a read found no ledger table: the app creates it on its first run, and a reader never creates it."""
    account = getattr(getattr(ledger, "table", None), "account_name", None) or "?"
    return (f"the ledger has no table {settings.ledger_table} (LEDGER_TABLE) in storage account {account} yet: "
            f"the app has not run here, so it has recorded nothing; {consequence}")


def _nothing_recorded(note: str, output: str, columns: list[str]) -> int:
    """A ledger with no table read as an empty one (as `plan` reads it), exit 0: the table output is the note alone;
    json and csv stay documents a script can read (``[]``, the header), the note on stderr."""
    if output == "table":
        print(f"note: {note}")
        return 0
    if output == "json":
        _json([])
    else:
        _csv([], columns)
    print(f"note: {note}", file=sys.stderr)
    return 0


def _ledger(settings: Settings) -> Any:
    """The ledger, or one line naming the setting when the connection string cannot be used."""
    from shared.adapters.ledger import open_ledger

    try:
        return open_ledger(settings, create=False)  # read only: Storage Table Data Reader is enough
    except AzureError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # the storage SDK's reading of the connection string
        detail = _scrub(str(exc), settings.storage_connection)
        _refuse(f"AzureWebJobsStorage: not a usable storage connection string ({detail or type(exc).__name__})")


def _scrub(message: str, connection: str) -> str:
    """The message without any secret of the connection string (an account key, a SAS token)."""
    for part in connection.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value.strip():
            message = message.replace(value.strip(), "***")
    return message


# --- report -----------------------------------------------------------------------------------------

REPORT_COLUMNS = ["workspace", "rule", "actions", "done", "failed", "skipped", "planned", "vms_freed", "cores_freed",
                  "cores_planned", "core_hours", "money"]
_SPAN = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN_TEXT = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+) *(?P<unit>[mhdw]?)", re.ASCII)


def _span(text: str) -> timedelta:
    """30d, 12h, 90m, 2w: how far back (at most MAX_HOURS), in ASCII digits.

    float() alone would also read fullwidth or Arabic-Indic digits, underscores and exponents; a span so small
    that it is no time at all is refused like 0d.
    """
    if text.strip().startswith("-"):  # a window reaches back from now: "3 days ago" is 3d
        raise argparse.ArgumentTypeError(f"expected how far back without a sign, e.g. {text.strip()[1:].strip() or '30d'}; got {text!r}")
    match = _SPAN_TEXT.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a number and a unit (m, h, d or w), e.g. 30d; got {text!r}")
    seconds = float(match["number"]) * _SPAN[match["unit"] or "d"]
    if not (0 < seconds <= MAX_HOURS * 3600 and timedelta(seconds=seconds)):
        raise argparse.ArgumentTypeError(f"must be positive and at most {MAX_HOURS // 24} days, got {text!r}")
    return timedelta(seconds=seconds)


def cmd_report(args: argparse.Namespace) -> int:
    if args.output == "html" and (args.file.endswith(("/", os.sep)) or Path(args.file).is_dir()):
        # Path() drops a trailing separator: `--file reports/` would write a file named reports.
        return _fail(f"--file {args.file}: names a directory; give the page's file name, e.g. {Path(args.file, 'autopilot-report.html')}")
    settings = from_environment()
    if not settings.storage_connection:
        return _fail("AzureWebJobsStorage: required to read the ledger")
    from shared.adapters.prices import RetailPrices
    from shared.report import MAX_ROWS, gather, summary
    from shared.runtime import Wiring

    now = datetime.now(UTC)
    since = now - args.since
    ledger = _ledger(settings)
    try:
        rows, missing = list(ledger.history(since, MAX_ROWS)), ""
    except Gone:
        rows, missing = [], _not_recorded_yet(settings, ledger, "nothing to report")
        if args.output == "table":
            print(f"note: {missing}")
            return 0
    wiring = Wiring(settings, ledger)
    report = gather(rows, settings.workspaces, wiring.workspace, RetailPrices(settings, ledger).hourly, since, now)
    if missing:  # json, csv and html: the empty report, saying why it is empty
        report.notes.insert(0, missing)
    if args.output == "json":
        _json(report.as_dict())
    elif args.output == "csv":
        _csv([[line.as_dict()[c] if line.as_dict()[c] is not None else "" for c in REPORT_COLUMNS] for line in report.lines],
             REPORT_COLUMNS)
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    elif args.output == "html":
        from shared.report_html import render

        path = Path(args.file)
        try:
            path.write_text(render(report, version()), encoding="utf-8")
        except OSError as exc:
            return _fail(f"--file {args.file}: {exc.strerror}")
        print(f"report written to {path.resolve()}")
    else:
        print(report_table(report))
        print()
        for line in summary(report):
            print(line)
        for note in report.notes:
            print(f"note: {note}")
    return 0


def report_table(report: Any, width: int | None = None) -> str:
    """The report's lines as a table: how each rule's actions ended (the csv's and the page's columns, planned
    included: in observe mode every write ends planned), the cores freed, the core-hours and money saved."""
    from shared.report import amount

    rows = [[line.workspace, line.rule, line.actions, line.done, line.failed, line.skipped, line.planned, line.cores,
             f"{line.core_hours:,.2f}", "-" if line.money is None else amount(line.money)] for line in report.lines]
    return _table([[str(c) for c in r] for r in rows],
                  ["WORKSPACE", "RULE", "ACTIONS", "DONE", "FAILED", "SKIPPED", "PLANNED", "CORES FREED", "CORE-HOURS",
                   f"SAVED ({report.currency})"], width)


# --- doctor -----------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from shared.doctor import checks_of, exit_code

    del args
    checks = []
    for check in checks_of():
        checks.append(check)
        print(check.line(), flush=True)
    return exit_code(checks)


# --- the command ------------------------------------------------------------------------------------


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("aml-autopilot")
    except metadata.PackageNotFoundError:
        import tomllib

        try:
            with (Path(__file__).resolve().parents[1] / "pyproject.toml").open("rb") as handle:
                return str(tomllib.load(handle)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


# Options whose value may be written with a leading minus (`--since -3d`, `--hours -1e3`).
_VALUED = frozenset({"--since", "--hours", "--limit"})
_SIGNED = re.compile(r"-[0-9.]")


def _glued(args: Sequence[str]) -> list[str]:
    """`--since -3d` as `--since=-3d`: argparse takes a value led by ``-`` (other than a plain negative number) for
    another option and says only "expected one argument"; glued, the value reaches the option's own check, which
    says what it expects."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":  # what follows is positional
            return [*out, *args[i:]]
        if args[i] in _VALUED and i + 1 < len(args) and _SIGNED.match(args[i + 1]):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr, exit 2 (argparse prints the whole usage first)."""

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None) -> Any:
        return super().parse_known_args(_glued(sys.argv[1:] if args is None else args), namespace)

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("autopilot").strip()
        raise SystemExit(_fail(f"{where + ': ' if where else ''}{message} (see {self.prog} --help)"))


def _positive(kind: type[int] | type[float], upper: float) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole' if kind is int else 'a'} number, got {text!r}") from None
        if not (math.isfinite(value) and 0 < value <= upper):
            raise argparse.ArgumentTypeError(f"must be positive and at most {upper:g}, got {text!r}")
        return value
    return parse


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=OUTPUTS, default="table", help="table (default), json or csv")
    parser.add_argument("--json", dest="output", action="store_const", const="json", help="the same as --output json")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="autopilot", description="aml-autopilot operator commands")
    root.add_argument("--version", action="version", version=f"autopilot {version()}")
    sub = root.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="what the autopilot would do now on a workspace (read-only)")
    plan.add_argument("--workspace", required=True, help="workspace resource id, or all (every workspace in ALLOWED_WORKSPACES and every one found in ALLOWED_SCOPES)")
    plan.add_argument("--inventory", action="store_true", help="with --output csv: the inventory (every compute) instead of the verdicts")
    _output_options(plan)
    plan.set_defaults(run=cmd_plan)
    explain = sub.add_parser("explain", help="classify an inbound payload (Event Grid, CloudEvents, alert)")
    explain.add_argument("file", help="JSON file, or - for stdin")
    explain.set_defaults(run=cmd_explain)
    history = sub.add_parser("history", help="outcomes recorded in the ledger")
    history.add_argument("--hours", type=_positive(float, MAX_HOURS), default=24.0, help="how far back (default 24)")
    history.add_argument("--limit", type=_positive(int, 100_000), default=50, help="most rows shown, newest first (default 50)")
    _output_options(history)
    history.set_defaults(run=cmd_history)
    report = sub.add_parser("report", help="actions, cores freed, core-hours and money saved, per workspace and rule")
    report.add_argument("--since", type=_span, default=timedelta(days=30), help="how far back: 30d (default), 12h, 90m, 2w")
    report.add_argument("--output", "-o", choices=(*OUTPUTS, "html"), default="table", help="table (default), json, csv or html")
    report.add_argument("--json", dest="output", action="store_const", const="json", help="the same as --output json")
    report.add_argument("--file", default="autopilot-report.html", help="where --output html writes the page")
    report.set_defaults(run=cmd_report)
    doctor = sub.add_parser("doctor", help="could the identity this command signs in as run enforce mode? settings, identity, reads and permissions, one line each")
    doctor.set_defaults(run=cmd_doctor)
    return root


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = parser().parse_args(argv)
        return int(args.run(args))
    except SystemExit as exc:  # --help, --version, a refused argument: already said
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else _fail(str(exc.code)))
    except SettingsError as exc:
        return _fail(str(exc))
    except AzureError as exc:
        return _fail(str(exc), 1)
    except (BrokenPipeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one line, never a traceback
        return _fail(f"{type(exc).__name__}: {exc}", 1)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Python would flush stdout again at exit and
        # complain, so stdout now points at devnull (as the signal module's documentation recommends).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())

"""Azure ML's run history data plane, for what the autopilot reads: the runs on one compute.

Rules (REST: azure-rest-api-specs, data-plane ``Microsoft.MachineLearningServices.RunHistory``,
stable ``v1.0/run-history.json``, ``Runs_ListByCompute``; the discovery document as azure-ai-ml and
the v1 SDK read it):
- ``GET /discovery`` (no token, as AML's) answers the workspace's service URLs; every one is this
  server, whose run history is at ``/history/v1.0/...``. A workspace's ``discoveryUrl`` names it.
- ``GET /history/v1.0/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices
  /workspaces/{ws}/computes/{compute}/runs`` with an ARM bearer token (run history takes ARM's
  audience) lists the runs whose target is that compute (case-insensitive), newest first: the jobs
  the ML service holds, and a pipeline's steps as child runs on their own computes. It answers
  ``PaginatedRunList`` ``{"value": [Run], "continuationToken", "nextLink"}``: pages of ``$top`` (at
  most the ML service's page size), the token an offset, the link the same query with
  ``$continuationtoken``. An unknown workspace is 404; a compute that never ran a job has no runs.
- ``$filter`` is OData as AML's SDKs send it: comparisons ``Field eq|ne|gt|ge|lt|le literal``
  joined by ``and``/``or``, ``not`` and parentheses; fields ``Status``, ``Target``, ``RunId``,
  ``RunType``, ``ParentRunId``, ``CreatedUtc``, ``StartTimeUtc``, ``EndTimeUtc`` (any case);
  literals quoted ('x' or "x"), bare words (the v1 SDK sends ``Status eq Running``), ISO times,
  ``null``, ``true``/``false``. A comparison with a missing value is false, except ``eq null``/
  ``ne null``. Anything else is refused: 400 ``UserError`` naming what was not understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local.emulator import arm_ml, paging, wire
from local.emulator.identity import require_arm_bearer
from local.httpwire import Request, Response

_RUNS = re.compile(rf"^/history/v1\.0{arm_ml.MLService._WS[1:]}/computes/(?P<compute>[^/]+)/runs/?$", re.IGNORECASE)
SERVICES = ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling", "modelmanagement", "pipelines", "studio")
FIELDS = {"status": "status", "target": "target", "runid": "runId", "runtype": "runType", "parentrunid": "parentRunId",
          "createdutc": "createdUtc", "starttimeutc": "startTimeUtc", "endtimeutc": "endTimeUtc"}
_TOKEN = re.compile(r"""\s*(?:(?P<open>\()|(?P<close>\))|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<word>[^\s()'"]+))""")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?$", re.IGNORECASE)


def error(status: int, message: str) -> Response:
    """Run history's error shape (ErrorResponse: a RootError under "error")."""
    return Response(status, {"error": {"code": "UserError", "severity": None, "message": message}})


class FilterError(ValueError):
    pass


Predicate = Callable[[dict[str, Any]], bool]


def _value(text: str, quoted: bool) -> Any:
    if not quoted:
        lowered = text.lower()
        if lowered == "null":
            return None
        if lowered in ("true", "false"):
            return lowered == "true"
        if _TIME.match(text):
            return _when(text)
    return text


def _when(text: Any) -> datetime | None:
    """A run's time (or a filter's literal), or None when it is none."""
    try:
        return wire.instant(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _compare(field: str, op: str, literal: Any) -> Predicate:
    key = FIELDS[field]

    def test(run: dict[str, Any]) -> bool:
        have = run.get(key)
        if literal is None or have is None:
            return (have is None) == (literal is None) if op == "eq" else (have is None) != (literal is None) if op == "ne" else False
        if isinstance(literal, datetime):
            have = have if isinstance(have, datetime) else _when(have)
            if have is None:
                return False
            left: Any = have
            right: Any = literal
        else:
            left, right = str(have).lower(), str(literal).lower()
        return {"eq": left == right, "ne": left != right, "gt": left > right, "ge": left >= right,
                "lt": left < right, "le": left <= right}[op]

    return test


def parse_filter(text: str) -> Predicate:
    """The OData subset of the module rules as a predicate over a run; FilterError otherwise."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None:
            raise FilterError(f"unexpected text at {at}: {text[at:at + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind) if kind not in ("open", "close") else kind))
        at = match.end()
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise FilterError("the filter ends too early")
        position += 1
        return tokens[position - 1]

    def word(expected: str) -> bool:
        head = peek()
        return head is not None and head[0] == "word" and head[1].lower() == expected

    def joined(keyword: str, operand: Callable[[], Predicate], combine: Callable[[bool, Callable[[], bool]], bool]) -> Predicate:
        left = operand()
        while word(keyword):
            take()
            right, before = operand(), left
            left = (lambda a, b: lambda run: combine(a(run), lambda: b(run)))(before, right)
        return left

    def expr() -> Predicate:
        return joined("or", term, lambda first, second: first or second())

    def term() -> Predicate:
        return joined("and", factor, lambda first, second: first and second())

    def factor() -> Predicate:
        if word("not"):
            take()
            inner = factor()
            return lambda run: not inner(run)
        head = take()
        if head[0] == "open":
            inner = expr()
            if take()[0] != "close":
                raise FilterError("a parenthesis is not closed")
            return inner
        if head[0] != "word" or head[1].lower() not in FIELDS:
            raise FilterError(f"{head[1]!r} is not a field runs can be filtered on ({', '.join(sorted(FIELDS.values()))})")
        op = take()
        if op[0] != "word" or op[1].lower() not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise FilterError(f"{op[1]!r} is not a comparison (eq, ne, gt, ge, lt, le)")
        kind, literal = take()
        if kind not in ("word", "sq", "dq"):
            raise FilterError(f"{literal!r} is not a value")
        return _compare(head[1].lower(), op[1].lower(), _value(literal, quoted=kind != "word"))

    predicate = expr()
    if position != len(tokens):
        raise FilterError(f"unexpected {tokens[position][1]!r} after a complete filter")
    return predicate


class RunHistoryService:
    """Run history over the ML service's jobs (see the module rules)."""

    name = "runhistory"

    def __init__(self, ml: arm_ml.MLService) -> None:
        self.ml = ml

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        del scenario, now  # the runs are the ML service's jobs

    def state(self) -> dict[str, Any]:
        return {}

    def handle(self, req: Request) -> Response | None:
        lowered = req.path.lower().rstrip("/")
        if lowered == "/discovery":
            if req.method != "GET":
                return error(405, f"The method {req.method} is not allowed on {req.path}.")
            return Response(200, {service: req.base_url for service in SERVICES})
        if not lowered.startswith("/history/"):
            return None
        refused = require_arm_bearer(req)
        if refused is not None:
            return refused
        match = _RUNS.match(req.path)
        if match is None:
            return error(404, f"No route for {req.method} {req.path} in run history.")
        if req.method != "GET":
            return error(405, f"The method {req.method} is not allowed on {req.path}.")
        found = self.ml._workspace(match.groupdict())
        if isinstance(found, Response):
            return found
        try:
            keep = parse_filter(req.arg("$filter") or "") if (req.arg("$filter") or "").strip() else None
        except FilterError as exc:
            return error(400, f"The $filter is not valid: {exc}.")
        size = self.ml.page_size
        top = req.arg("$top")
        if top:
            if not top.isdigit() or int(top) < 1:
                return error(400, f"$top {top!r} is not a positive whole number.")
            size = min(size, int(top)) if size else int(top)
        runs = [render for fields, render in self.ml.runs_on(found, match.group("compute")) if keep is None or keep(fields)]
        part = paging.window(req, runs, size, "$continuationtoken")
        if part is None:
            return error(400, "The $continuationtoken is not valid.")
        chunk, token, next_link = part
        return Response(200, {"value": [render() for render in chunk], "continuationToken": token, "nextLink": next_link})


SERVICE = RunHistoryService(arm_ml.SERVICE)

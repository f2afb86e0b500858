"""Azure Resource Graph's query API, for the queries the autopilot sends: AML workspaces in scopes.

Rules (REST: Microsoft.ResourceGraph ``resources``, examples ResourcesBasicQuery / ResourcesMgBasicQuery):
- ``POST /providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01`` (also 2022-10-01 and
  2024-04-01) with an ARM bearer token and a body ``{"subscriptions": [...]?, "managementGroups":
  [...]?, "query": "...", "options": {"$top", "$skip", "$skipToken", "resultFormat"}?}``. Neither
  scope: the whole tenant. A management group holds the subscriptions the scenario lists under
  ``"managementGroups": {"name": ["subscription id", ...]}`` (its descendants, flattened).
- Answers ``{"totalRecords", "count", "resultTruncated": "false", "facets": [], "data": [rows]}``,
  rows as objects; at most ``$top`` rows (default 100, at most 1000) and, when more remain, a
  ``$skipToken`` to send back in ``options`` for the next page. Rows come in resource id order.
- Resource Graph's own quota (Learn: "Guidance for throttled requests in Azure Resource Graph"):
  each principal may send 15 queries in a 5-second window; every answer says
  ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (hh:mm:ss), and a query over
  the quota is answered 429 ``RateLimiting`` with ``Retry-After``.
- The interpreter is small and honest: it understands exactly the shapes
  ``Resources | where type =~ '<type>' [| where tags['<key>'] =~ '<value>' | where isnotempty(tags['<key>'])]
  | project <columns>`` (``==`` for exact comparisons too), over the AML workspaces the emulator
  holds. Any other query is refused with Resource Graph's error shape (400 ``BadRequest`` whose
  details hold ``InvalidQuery`` and what was not understood), never answered wrongly.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from datetime import datetime
from typing import Any

from local.emulator import arm_ml, lro, wire
from local.emulator.identity import require_arm_bearer
from local.httpwire import Request, Response

PATH = "/providers/microsoft.resourcegraph/resources"
API_VERSIONS = ("2021-03-01", "2022-10-01", "2024-04-01")
DEFAULT_TOP, MAX_TOP = 100, 1000
QUOTA, QUOTA_WINDOW_S = 15, 5.0
COLUMNS = ("id", "name", "type", "location", "resourceGroup", "subscriptionId", "tenantId", "tags")
WORKSPACE_TYPE = "microsoft.machinelearningservices/workspaces"

_LITERAL = r"""(?:'(?P<{0}>[^'\\]*)'|"(?P<{0}2>[^"\\]*)")"""
_TYPE = re.compile(r"^where\s+type\s*(?P<op>=~|==)\s*" + _LITERAL.format("value") + r"$", re.IGNORECASE)
_TAG_EQ = re.compile(r"^where\s+tags\s*\[\s*" + _LITERAL.format("key") + r"\s*\]\s*(?P<op>=~|==)\s*"
                     + _LITERAL.format("value") + r"$", re.IGNORECASE)
_TAG_SET = re.compile(r"^where\s+isnotempty\s*\(\s*tags\s*\[\s*" + _LITERAL.format("key") + r"\s*\]\s*\)$", re.IGNORECASE)
_PROJECT = re.compile(r"^project\s+(?P<columns>[A-Za-z]+(?:\s*,\s*[A-Za-z]+)*)$", re.IGNORECASE)


class QueryError(ValueError):
    """A query the interpreter does not understand: (error code, message) of the detail."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _literal(match: re.Match[str], name: str) -> str:
    value = match.group(name)
    return value if value is not None else match.group(name + "2")


def _stages(query: str) -> list[str]:
    """The query's pipe stages, splitting outside string literals only."""
    stages, current, quote = [], [], ""
    for char in query:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "|":
            stages.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if quote:
        raise QueryError("ParserFailure", "A string literal is not closed.")
    stages.append("".join(current).strip())
    return stages


def compile_query(query: str) -> tuple[list[Any], list[str]]:
    """(row predicates, projected columns) for a query of the understood shape, or QueryError."""
    stages = _stages(query)
    if stages[0].lower() != "resources":
        raise QueryError("UnsupportedQuery", f"The emulator answers queries of the Resources table only, not {stages[0][:80]!r}.")
    predicates: list[Any] = []
    columns: list[str] = list(COLUMNS)
    typed = False
    for stage in stages[1:]:
        if (m := _TYPE.match(stage)) is not None:
            wanted, exact = _literal(m, "value"), m.group("op") == "=="
            if wanted.lower() != WORKSPACE_TYPE:
                raise QueryError("UnsupportedQuery", f"The emulator indexes {WORKSPACE_TYPE} only, not {wanted[:120]!r}.")
            predicates.append(lambda row, w=wanted, e=exact: row["type"] == w if e else row["type"].lower() == w.lower())
            typed = True
        elif (m := _TAG_EQ.match(stage)) is not None:
            key, value, exact = _literal(m, "key"), _literal(m, "value"), m.group("op") == "=="

            def tag_is(row: dict[str, Any], k: str = key, v: str = value, e: bool = exact) -> bool:
                found = row["tags"].get(k)
                return found is not None and (found == v if e else found.lower() == v.lower())
            predicates.append(tag_is)
        elif (m := _TAG_SET.match(stage)) is not None:
            set_key = _literal(m, "key")
            predicates.append(lambda row, k=set_key: bool(row["tags"].get(k)))
        elif (m := _PROJECT.match(stage)) is not None:
            asked = [c.strip() for c in m.group("columns").split(",")]
            unknown = [c for c in asked if c not in COLUMNS]
            if unknown:
                raise QueryError("UnsupportedQuery", f"The emulator projects {', '.join(COLUMNS)} only, not {', '.join(unknown)}.")
            columns = asked
        else:
            raise QueryError("UnsupportedQuery", f"The emulator does not understand the stage {stage[:120]!r}.")
    if not typed:
        raise QueryError("UnsupportedQuery", f"The emulator answers queries filtered on type =~ '{WORKSPACE_TYPE}' only.")
    return predicates, columns


def _error(code: str, message: str) -> Response:
    return Response(400, {"error": {
        "code": "BadRequest",
        "message": f"Please provide below info when asking for support: timestamp = {wire.iso(lro.utcnow())}, "
                   f"correlationId = {uuid.uuid4()}.",
        "details": [
            {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource "
                                                "Graph service and fix the error before retrying."},
            {"code": code, "message": message},
        ],
    }})


def _resets_after(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(math.ceil(seconds)))


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str) -> int:
    try:
        return max(0, int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryError("InvalidSkipToken", "The $skipToken is not one this service issued.") from exc


class ResourceGraphService:
    name = "resourcegraph"

    def __init__(self, ml: arm_ml.MLService) -> None:
        self.ml = ml
        self.management_groups: dict[str, list[str]] = {}
        self.queries = 0
        self._windows: dict[str, tuple[float, int]] = {}  # principal -> (window start, queries in it)

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        del now
        self.management_groups = {str(k).lower(): [str(s).lower() for s in v]
                                  for k, v in (scenario.get("managementGroups") or {}).items()}
        self.queries = 0
        self._windows.clear()

    def state(self) -> dict[str, Any]:
        return {"managementGroups": self.management_groups, "queries": self.queries}

    def _rows(self) -> list[dict[str, Any]]:
        rows = [{"id": ws.id, "name": ws.name, "type": WORKSPACE_TYPE, "location": ws.location,
                 "resourceGroup": ws.resource_group.lower(), "subscriptionId": ws.subscription, "tenantId": self.ml.tenant_id,
                 "tags": dict(ws.tags)} for ws in self.ml.workspaces()]
        return sorted(rows, key=lambda r: r["id"].lower())

    def handle(self, req: Request) -> Response | None:
        if req.path.rstrip("/").lower() != PATH:
            return None
        refused = require_arm_bearer(req)
        if refused is not None:
            return refused
        if req.method != "POST":
            return wire.arm_error(405, "MethodNotAllowed", f"{req.method} is not supported on {req.path}.")
        if req.arg("api-version") not in API_VERSIONS:
            return wire.arm_error(400, "InvalidApiVersionParameter",
                                  f"The api-version '{req.arg('api-version')}' is invalid. Supported: {', '.join(API_VERSIONS)}.")
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _error("InvalidRequestContent", "The request body must be a JSON object with a query.")
        quota, wait = self._quota(str((wire.token_claims(req) or {}).get("oid", "")))
        if wait:
            return Response(429, {"error": {
                "code": "RateLimiting",
                "message": "Client application has been throttled and should not attempt to repeat the request until an "
                           "amount of time has elapsed.",
            }}, {"Retry-After": str(max(1, math.ceil(wait))), **quota})
        self.queries += 1
        try:
            answer = Response(200, self._answer(body))
        except QueryError as exc:
            answer = _error(exc.code, str(exc))
        answer.headers.extend(quota.items())
        return answer

    def _quota(self, principal: str) -> tuple[dict[str, str], float]:
        """(the quota headers after counting this query, 0) or, over the quota, (the headers, seconds to wait)."""
        now = time.monotonic()
        start, used = self._windows.get(principal, (now, 0))
        if now - start >= QUOTA_WINDOW_S:
            start, used = now, 0
        resets = max(0.0, QUOTA_WINDOW_S - (now - start))
        if used >= QUOTA:
            return {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": _resets_after(resets)}, max(resets, 0.001)
        self._windows[principal] = (start, used + 1)
        return {"x-ms-user-quota-remaining": str(QUOTA - used - 1), "x-ms-user-quota-resets-after": _resets_after(resets)}, 0.0

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        predicates, columns = compile_query(body["query"])
        subscriptions = {str(s).lower() for s in body.get("subscriptions") or []}
        for group in body.get("managementGroups") or []:
            subscriptions.update(self.management_groups.get(str(group).lower(), []))
        scoped = bool(body.get("subscriptions") or body.get("managementGroups"))
        options = body.get("options") or {}
        if options.get("resultFormat", "objectArray") != "objectArray":
            raise QueryError("UnsupportedQuery", "The emulator answers resultFormat objectArray only.")
        top = int(options.get("$top") or DEFAULT_TOP)
        if not 1 <= top <= MAX_TOP:
            raise QueryError("InvalidTop", f"$top must be 1 to {MAX_TOP}, got {top}.")
        start = _offset(options["$skipToken"]) if options.get("$skipToken") else int(options.get("$skip") or 0)
        rows = [r for r in self._rows() if (not scoped or r["subscriptionId"].lower() in subscriptions)
                and all(p(r) for p in predicates)]
        page = [{c: r[c] for c in columns} for r in rows[start:start + top]]
        answer: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false",
                                  "facets": [], "data": page}
        if start + top < len(rows):
            answer["$skipToken"] = _token(start + top)
        return answer


SERVICE = ResourceGraphService(arm_ml.SERVICE)

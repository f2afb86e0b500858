"""ARM plumbing shared by the resource providers: request guard, systemData, long-running operations.

Rules for every ARM request (``guard``):
- a bearer token ARM accepts (``identity.require_arm_bearer``), else 401;
- an ``api-version`` query parameter, else 400 ``MissingApiVersionParameter``. Any version is
  accepted: the SDKs pin different ones (azure-ai-ml alone sends six) and the bodies served are
  the same.

Long-running operations follow the Azure-AsyncOperation pattern, as AML does:
- the write answers 202 (or 200 with a body) with ``Azure-AsyncOperation`` (status monitor),
  ``Location`` and ``Retry-After: 0``. ``Location`` is the same monitor in "location" mode
  (``&type=location``) for compute and workspace operations; for the online-endpoint and job
  operations ("mfe") it is their own results resource, ``locations/{loc}/mfeOperationResults/{id}``
  (a resource type of its own, with its own read permission), as AML answers;
- the monitor (``GET .../locations/{loc}/{kind}OperationsStatus/{id}``) answers
  ``{"id", "name", "status": "InProgress"|"Succeeded"|"Failed", "startTime", "endTime", "error"}``;
  in location mode (``type=location``, or the mfeOperationResults path) it answers 202 while running, 200 when done and 400 with
  the ARM error when the operation failed;
- an operation stays InProgress for ``polls`` monitor reads (default 1), or until ``seconds``
  (default 10) have passed since it started, whichever comes first; the second rule exists
  because a client that fires a write without polling must still see it complete;
- ``fail_next(path_regex, times)``: the next operations started by a request whose path matches
  end Failed; what they would have changed is then rolled back by their owner;
- an InProgress monitor answer carries ``Retry-After: <retry_after>`` (default 1 second).
  azure-core reads ``Retry-After: 0`` as "no hint" and then waits its own polling interval
  (30 s by default), so 0 would make every client slower, not faster.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator import wire
from local.emulator.identity import require_arm_bearer
from local.httpwire import Request, Response

EMULATOR_PRINCIPAL = "aml-autopilot"  # systemData.lastModifiedBy for writes made through ARM


def utcnow() -> datetime:
    return datetime.now(UTC)


def guard(req: Request) -> Response | None:
    """The checks ARM makes before any provider sees a request (see module rules)."""
    refused = require_arm_bearer(req)
    if refused is not None:
        return refused
    if not req.arg("api-version"):
        return wire.arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    return None


def system_data(
    created_at: datetime | None,
    created_by: str,
    modified_at: datetime | None = None,
    modified_by: str | None = None,
    *,
    created_by_type: str = "User",
    modified_by_type: str | None = None,
) -> dict[str, Any]:
    """ARM's systemData block; the modification defaults to the creation."""
    return {
        "createdBy": created_by,
        "createdByType": created_by_type,
        "createdAt": wire.iso(created_at),
        "lastModifiedBy": modified_by or created_by,
        "lastModifiedByType": modified_by_type or created_by_type,
        "lastModifiedAt": wire.iso(modified_at or created_at),
    }


def touch(resource: dict[str, Any], now: datetime) -> None:
    """Record a write made through ARM by the app's identity in the resource's systemData."""
    data = resource.setdefault("systemData", {})
    data["lastModifiedBy"] = EMULATOR_PRINCIPAL
    data["lastModifiedByType"] = "Application"
    data["lastModifiedAt"] = wire.iso(now)


@dataclass
class Operation:
    """One long-running operation and what to do when it ends."""

    id: str
    kind: str  # "compute" | "workspace" | "mfe" (online endpoints, deployments, jobs): names the monitor path
    name: str  # Start, Stop, Restart, Update, ResyncKeys
    target: str  # resource id
    subscription: str
    location: str
    started: datetime
    polls_left: int
    deadline: datetime
    fail: bool
    on_done: Callable[[bool, datetime], None] | None = None  # (succeeded, now), called once
    status: str = "InProgress"
    ended: datetime | None = None
    error: dict[str, str] | None = None

    def monitor_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/providers/Microsoft.MachineLearningServices"
            f"/locations/{self.location}/{self.kind}OperationsStatus/{self.id}"
        )

    def results_path(self) -> str:
        """Where an online-endpoint or job operation's result is read (its Location)."""
        return (
            f"/subscriptions/{self.subscription}/providers/Microsoft.MachineLearningServices"
            f"/locations/{self.location}/mfeOperationResults/{self.id}"
        )

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.monitor_path(),
            "name": self.id,
            "status": self.status,
            "startTime": wire.iso(self.started),
        }
        if self.ended is not None:
            out["endTime"] = wire.iso(self.ended)
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class _FailRule:
    pattern: str
    regex: re.Pattern[str]
    remaining: int


_MONITOR = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices"
    r"/locations/(?P<loc>[^/]+)/(?:(?P<kind>compute|workspace|mfe)OperationsStatus|(?P<results>mfeOperationResults))/(?P<id>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass
class Operations:
    """Registry of long-running operations; callers hold the server lock."""

    polls: int = 1
    seconds: float = 10.0
    retry_after: int = 1
    _ops: dict[str, Operation] = field(default_factory=dict)
    _fail_rules: list[_FailRule] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every operation and failure rule; back to the default pacing."""
        self._ops.clear()
        self._fail_rules.clear()
        self.polls, self.seconds, self.retry_after = 1, 10.0, 1

    def configure(self, polls: int | None = None, seconds: float | None = None, retry_after: int | None = None) -> None:
        if polls is not None:
            self.polls = max(0, int(polls))
        if seconds is not None:
            self.seconds = max(0.0, float(seconds))
        if retry_after is not None:
            self.retry_after = max(0, int(retry_after))

    def fail_next(self, pattern: str, times: int = 1) -> None:
        self._fail_rules.append(_FailRule(pattern, re.compile(pattern), max(1, int(times))))

    def config(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "seconds": self.seconds,
            "retryAfter": self.retry_after,
            "failRules": [{"path": r.pattern, "remaining": r.remaining} for r in self._fail_rules if r.remaining],
        }

    def _consume_failure(self, path: str) -> bool:
        for rule in self._fail_rules:
            if rule.remaining > 0 and rule.regex.search(path):
                rule.remaining -= 1
                return True
        return False

    def start(
        self,
        req: Request,
        *,
        kind: str,
        name: str,
        target: str,
        subscription: str,
        location: str,
        now: datetime,
        on_done: Callable[[bool, datetime], None] | None = None,
    ) -> Operation:
        """Register an operation; whether it will fail is decided now, from the failure rules."""
        op = Operation(
            id=secrets.token_hex(16),
            kind=kind,
            name=name,
            target=target,
            subscription=subscription,
            location=location.replace(" ", "").lower(),
            started=now,
            polls_left=self.polls,
            deadline=now + timedelta(seconds=self.seconds),
            fail=self._consume_failure(req.path),
            on_done=on_done,
        )
        self._ops[op.id] = op
        return op

    def headers(self, op: Operation, req: Request) -> dict[str, str]:
        """What the 202 (or 200) that starts `op` carries."""
        version = req.arg("api-version") or ""
        monitor = f"{req.base_url}{op.monitor_path()}?api-version={version}"
        location = (f"{req.base_url}{op.results_path()}?api-version={version}" if op.kind == "mfe"
                    else f"{monitor}&type=location")
        return {
            "Azure-AsyncOperation": monitor,
            "Location": location,
            "Retry-After": "0",
        }

    def _finish(self, op: Operation, now: datetime) -> None:
        op.ended = now
        if op.fail:
            op.status = "Failed"
            op.error = {
                "code": "OperationFailed",
                "message": f"The {op.name} operation on '{op.target.rsplit('/', 1)[-1]}' failed "
                "(failure injected through the emulator control API).",
            }
        else:
            op.status = "Succeeded"
        if op.on_done is not None:
            op.on_done(not op.fail, now)
            op.on_done = None

    def settle(self, now: datetime) -> None:
        """End the operations whose time is up, even if nobody polls them."""
        for op in self._ops.values():
            if op.status == "InProgress" and now >= op.deadline:
                self._finish(op, now)

    def pending(self, target: str) -> Operation | None:
        """The operation still changing `target`, if any (a write to it meanwhile is a conflict).

        Only operations with an effect left to apply count: one whose effect has landed does not
        block the next write while nobody polls its monitor.
        """
        for op in self._ops.values():
            if op.status == "InProgress" and op.on_done is not None and op.target.lower() == target.lower():
                return op
        return None

    def state(self) -> list[dict[str, Any]]:
        return [{**op.body(), "operation": op.name, "target": op.target} for op in self._ops.values()]

    def handle(self, req: Request, now: datetime) -> Response | None:
        """Serve the operation monitor; None when the path is not a monitor."""
        match = _MONITOR.match(req.path)
        if match is None:
            return None
        if req.method != "GET":
            return wire.arm_error(405, "MethodNotAllowed", f"{req.method} is not supported on an operation status.")
        op = self._ops.get(match["id"])
        if op is None or op.subscription.lower() != match["sub"].lower() or (match["results"] and op.kind != "mfe"):
            return wire.arm_error(404, "OperationNotFound", f"Operation '{match['id']}' was not found.")
        if op.status == "InProgress":
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                self._finish(op, now)
        retry = {"Retry-After": str(self.retry_after)} if op.status == "InProgress" else {}
        if (req.arg("type") or "").lower() != "location" and not match["results"]:
            return Response(200, op.body(), retry)
        if op.status == "InProgress":
            return Response(202, None, {**retry, "Location": f"{req.base_url}{req.target}"})
        if op.status == "Failed" and op.error is not None:
            # 400, not 5xx: a client's retry policy must not replay a settled failure.
            return wire.arm_error(400, op.error["code"], op.error["message"])
        return Response(200, None)

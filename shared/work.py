"""Work items: what a trigger hands to the queue-triggered worker.

Triggers must answer fast (Event Grid waits 30 s), so they only parse, authenticate and enqueue;
the worker does the ARM calls. A work item is small JSON with a stable idempotency key.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _quote  # json.dumps's own escaping (ensure_ascii), in C
from typing import Any

from shared import names
from shared.events import (
    FAILED_RUNS,
    MODEL_DEPLOY_FAILED,
    NOT_RESPONDING_RUNS,
    AlertFired,
    Allowed,
    RunEnded,
    RunNotResponding,
    SecretExpiring,
    dimension,
    dimensions,
)
from shared.events import QUOTA_UTILIZATION as QUOTA_METRIC
from shared.model import quick_init
from shared.names import shown
from shared.payload import MAX_QUEUE_MESSAGE_BYTES, PayloadError, load_json


class Kind(StrEnum):
    IDLE_SWEEP = "idle-sweep"
    CLUSTER_SWEEP = "cluster-sweep"
    RUN_ENDED = "run-ended"
    UNUSABLE_NODES = "unusable-nodes"
    QUOTA = "quota"
    DEPLOYMENT_SWEEP = "deployment-sweep"
    NOT_RESPONDING = "not-responding"
    ROTATE = "rotate"


class BadWorkItem(ValueError):
    """A queue message that is not a work item (``security``: it names what is not allowed).

    Retrying cannot fix it: the worker moves it, intact, to the poison queue with one log line.
    """

    def __init__(self, message: str, *, security: bool = False) -> None:
        super().__init__(message)
        self.security = security


# A work item goes through Azure Queue storage, base64-encoded by the Functions host: 48 KB of JSON
# is 64 KB on the queue.
MAX_ITEM_BYTES = MAX_QUEUE_MESSAGE_BYTES * 3 // 4
MAX_TRIGGER = 512
FIELDS = frozenset({"kind", "target", "trigger", "params"})


def _optional_name(rule: names.NameRule) -> Callable[[Any], str | None]:
    return lambda v: None if v in (None, "") else rule.check(v)


def _number(v: Any) -> str | None:
    return None if v is None or (isinstance(v, int | float) and not isinstance(v, bool)) else "is not a number"


def _short_text(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v) <= 64 else "is not a short text"


# A dimension value told back to people (Model Deploy Failed's Scenario and StatusCode): short, one line, plain.
_LABEL = re.compile(r"[\w .:/()?-]{1,64}", re.ASCII)


def _optional_text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, str) and _LABEL.fullmatch(v)) else "is not a short plain label"


def _flag(v: Any) -> str | None:
    return None if isinstance(v, bool) else "is not true or false"


@quick_init
@dataclass(frozen=True)
class WorkItem:
    kind: Kind
    target: str  # workspace resource id (vault resource id for rotations)
    trigger: str  # idempotency key of what caused it
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The queue message: ``json.dumps`` of the item with sorted keys, character for character.

        A work item's fields and parameters are text, numbers, flags or nothing, so the message is
        written out directly, each text escaped by the encoder's own function (ASCII-only, as
        ``json.dumps`` writes it); anything else (a float that is not finite, a subclass, a nested
        value) goes through ``json.dumps`` itself.
        """
        text = _written(self) or json.dumps({"kind": self.kind.value, "target": self.target, "trigger": self.trigger,
                                             "params": self.params}, sort_keys=True)
        if len(text) > MAX_ITEM_BYTES:  # ASCII, as json.dumps writes it: as many bytes as characters
            raise BadWorkItem(f"work item is {len(text):,} bytes, over the queue's {MAX_ITEM_BYTES:,}-byte budget")
        return text

    @classmethod
    def from_json(cls, raw_text: str | bytes, allowed: Allowed) -> WorkItem:
        """Read a queue message back into a work item, re-authenticated: the queue is a trust boundary too.

        Its target must be an allowed workspace (an allowed vault for rotations), its parameters exactly
        those of its kind, every name valid by Azure's rules. BadWorkItem otherwise.
        """
        try:
            raw = load_json(raw_text, MAX_QUEUE_MESSAGE_BYTES, "queue message")
        except PayloadError as exc:
            raise BadWorkItem(str(exc)) from None
        if not isinstance(raw, dict):
            raise BadWorkItem("work item is not a JSON object")
        try:
            kind = Kind(raw.get("kind"))
        except (ValueError, TypeError):
            raise BadWorkItem(f"unknown work item kind {shown(raw.get('kind'))}") from None
        # Only to_json writes work items, and it writes these four fields: any other was added on the way.
        extra = sorted(set(raw) - FIELDS)
        if extra:
            raise BadWorkItem(f"{kind.value} work item has unknown field {shown(extra[0])}", security=True)
        target, trigger, params = raw.get("target"), raw.get("trigger"), raw.get("params", {})
        if not isinstance(target, str) or not target or not isinstance(trigger, str) or not trigger:
            raise BadWorkItem("work item lacks target or trigger")
        if len(trigger) > MAX_TRIGGER:
            raise BadWorkItem(f"work item trigger is longer than {MAX_TRIGGER} characters")
        if not isinstance(params, dict):
            raise BadWorkItem("work item params is not an object")
        owner = allowed.vault(target) if kind is Kind.ROTATE else allowed.workspace(target)
        if owner is None:
            where = "ALLOWED_VAULTS" if kind is Kind.ROTATE else "ALLOWED_WORKSPACES"
            raise BadWorkItem(f"work item target {shown(target)} is not in {where}", security=True)
        checks = PARAMS[kind]
        unknown = sorted(set(params) - set(checks))
        if unknown:
            raise BadWorkItem(f"{kind.value} work item has unknown parameter {shown(unknown[0])}", security=True)
        for key, value in params.items():
            bad = checks[key](value)
            if bad:
                raise BadWorkItem(f"{kind.value} work item parameter {key}: {bad}", security=True)
        missing = next((key for key in REQUIRED.get(kind, ()) if params.get(key) in (None, "")), None)
        if missing:
            raise BadWorkItem(f"{kind.value} work item lacks its {missing} parameter")
        return cls(kind, owner.id, trigger, params)


_LITERALS: Mapping[Any, str] = {None: "null", True: "true", False: "false"}


def _written(item: WorkItem) -> str | None:
    """The item as ``json.dumps(..., sort_keys=True)`` writes it, or None to leave it to json.dumps (a
    parameter that is not text, a number, a flag or nothing; a float that is not finite; a subclass)."""
    target, trigger, params = item.target, item.trigger, item.params
    if type(target) is not str or type(trigger) is not str or type(params) is not dict:
        return None
    parts = []
    for key, value in params.items():
        kind = type(value)
        if type(key) is not str:
            return None
        if kind is str:
            parts.append((key, _quote(value)))
        elif value is None or kind is bool:
            parts.append((key, _LITERALS[value]))
        elif kind is int:
            parts.append((key, int.__repr__(value)))
        elif kind is float and math.isfinite(value):
            parts.append((key, float.__repr__(value)))
        else:
            return None
    parts.sort()  # by key (keys differ, so their values are never compared), as sort_keys sorts them
    written = ", ".join([f"{_quote(key)}: {value}" for key, value in parts])
    return (f'{{"kind": {_quote(item.kind)}, "params": {{{written}}}, '
            f'"target": {_quoted_target(target)}, "trigger": {_quote(trigger)}}}')


# `_quote(target)`, kept: the targets are the few allowed workspaces and vaults, item after item.
_quoted_target = functools.lru_cache(maxsize=1024)(_quote)


# Each kind's parameters and the check each value must pass.
PARAMS: Mapping[Kind, Mapping[str, Callable[[Any], str | None]]] = {
    Kind.IDLE_SWEEP: {},
    Kind.CLUSTER_SWEEP: {},
    Kind.RUN_ENDED: {"run": names.JOB.check, "status": _short_text},
    Kind.UNUSABLE_NODES: {"cluster": _optional_name(names.COMPUTE), "value": _number},
    Kind.QUOTA: {"family": _optional_name(names.VM_FAMILY), "cluster": _optional_name(names.COMPUTE), "value": _number},
    Kind.DEPLOYMENT_SWEEP: {"scenario": _optional_text, "status_code": _optional_text, "value": _number},
    Kind.NOT_RESPONDING: {"run": _optional_name(names.JOB), "value": _number},
    Kind.ROTATE: {"secret": _optional_name(names.SECRET), "version": _optional_name(names.SECRET_VERSION), "forced": _flag},
}


# What a kind cannot be done without (a run that ended names its run; the others may name nothing: a
# rotation of a whole vault, a not-responding alert that names no run).
REQUIRED: Mapping[Kind, tuple[str, ...]] = {Kind.RUN_ENDED: ("run",)}


def sweep(kind: Kind, workspace: str, now: datetime) -> WorkItem:
    """A timer's work item: duplicate firings within the same minute share the idempotency key."""
    window = now.astimezone(UTC).strftime("%Y%m%dT%H%M")
    return WorkItem(kind, workspace, f"{kind.value}|{workspace.lower()}|{window}")


def from_event(event: RunEnded | RunNotResponding | AlertFired | SecretExpiring) -> WorkItem:
    """The work item for an accepted event, keyed by the event's own identity."""
    key = event.envelope.key
    if isinstance(event, RunEnded):
        return WorkItem(Kind.RUN_ENDED, event.workspace.id, key, {"run": event.run_id, "status": event.status})
    if isinstance(event, RunNotResponding):
        return WorkItem(Kind.NOT_RESPONDING, event.workspace.id, key, {"run": event.run_id})
    if isinstance(event, SecretExpiring):
        return WorkItem(Kind.ROTATE, event.vault.id, key, {"secret": event.secret, "version": event.version})
    if event.metric == MODEL_DEPLOY_FAILED:
        params = {"scenario": _dimension_text(event, "Scenario"), "status_code": _dimension_text(event, "StatusCode"), "value": event.value}
        return WorkItem(Kind.DEPLOYMENT_SWEEP, event.workspace.id, key, params)
    if event.metric == NOT_RESPONDING_RUNS:
        return WorkItem(Kind.NOT_RESPONDING, event.workspace.id, key, {"value": event.value})
    if event.metric == FAILED_RUNS:
        # Like a failed-run event, but the alert names no run: every cluster of the workspace is checked.
        return WorkItem(Kind.CLUSTER_SWEEP, event.workspace.id, key)
    if event.metric == QUOTA_METRIC:
        family, cluster = dimensions(event, "VmFamilyName", "ClusterName")
        params = {"family": family, "cluster": cluster, "value": event.value}
        return WorkItem(Kind.QUOTA, event.workspace.id, key, params)
    return WorkItem(Kind.UNUSABLE_NODES, event.workspace.id, key, {"cluster": dimension(event, "ClusterName"), "value": event.value})


def _dimension_text(event: AlertFired, name: str) -> str | None:
    """A dimension's value as a label fit for an outcome line: anything but plain characters shown as '?'."""
    value = re.sub(r"[^\w .:/()-]", "?", dimension(event, name) or "", flags=re.ASCII)[:64]
    return value or None

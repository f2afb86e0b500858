"""Parse and authenticate every inbound payload into one typed domain event, or a clear rejection.

Three wire formats arrive: the Event Grid schema, CloudEvents 1.0, and Azure Monitor's common
alert schema. A payload whose source (``topic``, ``source``, ``alertTargetIDs``) is not an allowed
workspace or vault is *forged or misrouted*: it yields zero actions and a security warning, and the
delivery is still acknowledged so Event Grid does not retry it for 24 hours.

Nothing here trusts payload fields for decisions: events only say *where to look*; the engine
re-reads the live state before deciding.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import names
from shared.model import ResourceId, fold, quick_init, same_name
from shared.names import shown
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json, shape_problem

AML = "Microsoft.MachineLearningServices."
KEY_VAULT = "Microsoft.KeyVault."
RUN_STATUS_CHANGED = AML + "RunStatusChanged"
RUN_COMPLETED = AML + "RunCompleted"
AML_IGNORED = frozenset(AML + t for t in ("ModelRegistered", "ModelDeployed", "DatasetDriftDetected"))
SECRET_NEAR_EXPIRY = KEY_VAULT + "SecretNearExpiry"
SECRET_EXPIRED = KEY_VAULT + "SecretExpired"
KV_IGNORED = frozenset(KEY_VAULT + t for t in ("SecretNewVersionCreated", "KeyNearExpiry", "KeyExpired", "KeyNewVersionCreated",
                                               "CertificateNearExpiry", "CertificateExpired", "CertificateNewVersionCreated",
                                               "VaultAccessPolicyChanged"))
EVENT_GRID = "Microsoft.EventGrid."
# Event Grid's own events reach a webhook only as part of a subscription's life: the Functions host
# answers the validation handshake itself, and a deletion notice needs nothing.
EVENT_GRID_LIFECYCLE = {EVENT_GRID + t for t in ("SubscriptionValidationEvent", "SubscriptionDeletedEvent")}
_LIFECYCLE_KEYS = frozenset(t.lower() for t in EVENT_GRID_LIFECYCLE)
_AML_KEY, _KEY_VAULT_KEY = AML.lower(), KEY_VAULT.lower()
ENDED_RUN_STATES = {"failed", "canceled"}
NOT_RESPONDING_STATE = "notresponding"
MAX_FIELD = 2048  # envelope fields (id, type, source, subject, time) longer than this are not Azure's
MAX_DIMENSION = 256  # a metric dimension's name or value (Azure Monitor caps them far below this)
ALERT_SCHEMA = "azureMonitorCommonAlertSchema"
UNUSABLE_NODES = "unusable nodes"
QUOTA_UTILIZATION = "quota utilization percentage"
MODEL_DEPLOY_FAILED = "model deploy failed"
NOT_RESPONDING_RUNS = "not responding runs"
FAILED_RUNS = "failed runs"
# Azure Monitor's baseline metric alerts for a workspace that the autopilot acts on (metric names as in
# "Supported metrics for Microsoft.MachineLearningServices/workspaces", compared case-insensitively).
ALERT_METRICS = (UNUSABLE_NODES, QUOTA_UTILIZATION, MODEL_DEPLOY_FAILED, NOT_RESPONDING_RUNS, FAILED_RUNS)


@dataclass(frozen=True)
class Allowed:
    """The sources the autopilot accepts: its configured workspaces and vaults."""

    workspaces: tuple[ResourceId, ...]
    vaults: tuple[ResourceId, ...] = ()

    @functools.cached_property
    def _workspaces(self) -> dict[str, ResourceId]:
        # A fleet allows hundreds of workspaces: one look-up per event, not a comparison with each.
        return {r.key: r for r in self.workspaces}

    @functools.cached_property
    def _vaults(self) -> dict[str, ResourceId]:
        return {r.key: r for r in self.vaults}

    def workspace(self, source: str) -> ResourceId | None:
        return self._workspaces.get(fold(source.strip().rstrip("/")))  # what ResourceId.same_as compares

    def vault(self, source: str) -> ResourceId | None:
        return self._vaults.get(fold(source.strip().rstrip("/")))


_sha256 = hashlib.sha256


@quick_init
@dataclass(frozen=True)
class Envelope:
    """What every event carries, whatever its schema."""

    schema: str  # "eventgrid" | "cloudevents" | "alert"
    id: str
    type: str
    source: str
    subject: str
    time: str

    @property
    def key(self) -> str:
        """Idempotency key: the same event delivered twice has the same key (topic + type + subject + id)."""
        raw = "|".join((self.source.lower(), self.type.lower(), self.subject, self.id))
        return "evt-" + _sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@quick_init
@dataclass(frozen=True)
class RunEnded:
    """A job reached a terminal state: check the compute it ran on at once."""

    envelope: Envelope
    workspace: ResourceId
    run_id: str
    status: str
    experiment: str

    def describe(self) -> str:
        return f"run {self.run_id} {self.status} in {self.workspace.name}: check its compute"


@quick_init
@dataclass(frozen=True)
class RunNotResponding:
    """A job stopped responding: read it, tell its owner and the operator (and cancel only if opted in)."""

    envelope: Envelope
    workspace: ResourceId
    run_id: str
    experiment: str

    def describe(self) -> str:
        return f"run {self.run_id} NotResponding in {self.workspace.name}: tell its owner"


@quick_init
@dataclass(frozen=True)
class AlertFired:
    """An Azure Monitor metric alert fired on a workspace."""

    envelope: Envelope
    workspace: ResourceId
    rule: str
    metric: str  # lower-case, one of ALERT_METRICS
    dimensions: Mapping[str, str]
    value: float | None

    def describe(self) -> str:
        dims = ", ".join(f"{shown(k)}={shown(v)}" for k, v in list(self.dimensions.items())[:8]) or "no dimensions"
        return f"alert {shown(self.rule)}: {self.metric} = {self.value} ({dims}) on {self.workspace.name}"


@quick_init
@dataclass(frozen=True)
class SecretExpiring:
    """A Key Vault secret is near expiry or expired: rotate it if it is a managed credential."""

    envelope: Envelope
    vault: ResourceId
    secret: str
    version: str
    expires: datetime | None

    def describe(self) -> str:
        day = self.expires
        # %Y-%m-%d written out, as strftime writes it from the year 1000 on (before, its %Y is the platform's):
        # strftime costs more than the rest of the line.
        when = "" if not day else f", expires {day.year}-{day.month:02d}-{day.day:02d}" if day.year >= 1000 else f", expires {day:%Y-%m-%d}"
        return f"secret {self.secret} in vault {self.vault.name} {self.envelope.type.split('.')[-1]}{when}: rotate if managed"


@quick_init
@dataclass(frozen=True)
class Ignored:
    """Understood and deliberately not acted on (acknowledged)."""

    reason: str
    envelope: Envelope | None = None

    def describe(self) -> str:
        return f"ignored: {self.reason}"


@quick_init
@dataclass(frozen=True)
class Rejected:
    """Malformed or forged (acknowledged, never acted on). ``security`` marks forged or misrouted sources."""

    reason: str
    security: bool = False
    envelope: Envelope | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"{'forged or misrouted' if self.security else 'malformed'}: {self.reason}"


Parsed = RunEnded | RunNotResponding | AlertFired | SecretExpiring | Ignored | Rejected
ACTIONABLE = (RunEnded, RunNotResponding, AlertFired, SecretExpiring)


def _folded(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping keyed by trimmed lower-case keys, the first spelling winning: fold once, look up many
    (AML and Key Vault vary the casing of their keys)."""
    # Built from the last pair to the first, so the first spelling of a key is the one left standing.
    pairs = mapping.items() if type(mapping) is dict else list(mapping.items())
    return {(k if type(k) is str else str(k)).strip().lower(): v for k, v in reversed(pairs)}


_ABSENT = object()  # no key of any mapping: `mapping.get(_ABSENT)` is None
_SPELLINGS: dict[tuple[Any, ...], dict[str, Any]] = {}
_SPELLING_KEYS, _SPELLING_KEY_CHARS = 32, 64  # at most 512 × 32 × 64 characters held (about 1 MB)


def _spellings(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Each key of `mapping` by its trimmed lower-case form, the first spelling winning: `_folded`'s keys.

    Kept per tuple of keys (bounded): the events of one kind carry the same keys in the same order, so
    they are folded once, not on every event; ``mapping.get(_spellings(mapping).get(key, _ABSENT))`` is
    ``_folded(mapping).get(key)``.
    """
    keys = tuple(mapping)
    spelled = _SPELLINGS.get(keys)
    if spelled is None:
        spelled = _folded(dict(zip(keys, keys, strict=True)))
        # Only small sets of text keys are kept (Azure's objects have a dozen short keys): a tuple of text
        # keys equals no tuple of other keys (1 == 1.0 == True fold apart), and a sender's thousands of keys,
        # or one key of a megabyte, are folded for that event and not held.
        if len(keys) <= _SPELLING_KEYS and all(type(k) is str and len(k) <= _SPELLING_KEY_CHARS for k in keys):
            if len(_SPELLINGS) >= 512:
                _SPELLINGS.clear()
            _SPELLINGS[keys] = spelled
    return spelled


def _is_map(value: Any) -> bool:
    # JSON gives dicts; the ABC check is for other mappings and costs ten times more.
    return type(value) is dict or isinstance(value, Mapping)


def _text(value: Any) -> str:
    """A scalar field as trimmed text; anything else (an object, a list) is no text at all."""
    if type(value) is str or isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def _bounded(payload: Any, what: str) -> Rejected | None:
    """Bounds first (depth, size of every part, valid text): nothing below may recurse or choke on them."""
    problem = shape_problem(payload)
    if problem:
        return Rejected(f"{what} {problem}")
    return None


def envelope_of(payload: Mapping[str, Any]) -> Envelope | Rejected:
    """Read the envelope of an Event Grid or CloudEvents 1.0 event."""
    get = payload.get
    if "specversion" in payload:
        if _text(get("specversion")) != "1.0":
            return Rejected(f"unsupported CloudEvents specversion {shown(_text(get('specversion')))}")
        schema, wires = "cloudevents", _CLOUDEVENTS_WIRES
        eid, etype, source, subject, time = get("id"), get("type"), get("source"), get("subject"), get("time")
    else:
        schema, wires = "eventgrid", _EVENT_GRID_WIRES
        eid, etype, source, subject, time = get("id"), get("eventType"), get("topic"), get("subject"), get("eventTime")
    if type(eid) is str and type(etype) is str and type(source) is str and type(subject) is str and type(time) is str:
        eid, etype, source, subject, time = eid.strip(), etype.strip(), source.strip(), subject.strip(), time.strip()
    else:  # _text's rules for the rest, one field at a time (the usual envelope is all text: one test, not five calls)
        eid, etype, source, subject, time = _text(eid), _text(etype), _text(source), _text(subject), _text(time)
    if not (eid and etype and source):
        missing = [wire for wire, value in zip(wires, (eid, etype, source), strict=True) if not value]
        return Rejected(f"{schema} event lacks {', '.join(missing)}")
    if len(eid) > MAX_FIELD or len(etype) > MAX_FIELD or len(source) > MAX_FIELD or len(subject) > MAX_FIELD or len(time) > MAX_FIELD:
        fields = (("id", eid), ("type", etype), ("source", source), ("subject", subject), ("time", time))
        long = next(name for name, value in fields if len(value) > MAX_FIELD)
        return Rejected(f"{schema} event field {long} is longer than {MAX_FIELD} characters")
    return Envelope(schema, eid, etype, source, subject, time)


_EVENT_GRID_WIRES = ("id", "eventType", "topic")
_CLOUDEVENTS_WIRES = ("id", "type", "source")


def _data(payload: Mapping[str, Any]) -> Mapping[str, Any] | Rejected:
    data = payload.get("data")
    if isinstance(data, str):
        try:
            data = load_json(data, MAX_EVENT_BYTES, "event data (a string)")
        except PayloadError as exc:
            return Rejected(str(exc))
    if data is None:
        return {}
    if not _is_map(data):
        return Rejected(f"event data is {type(data).__name__}, expected an object")
    return data


def parse_event(payload: Any, allowed: Allowed, *, bounded: bool = False) -> Parsed:
    """Turn one Event Grid or CloudEvents event (as a dict) into a domain event or a rejection.

    ``bounded``: the caller has already held the document to ``shape_problem``'s bounds (``load_json``).
    """
    if not _is_map(payload):
        return Rejected(f"event is {type(payload).__name__}, expected a JSON object")
    bounded = None if bounded else _bounded(payload, "event")
    if bounded:
        return bounded
    env = envelope_of(payload)
    if type(env) is Rejected:
        return env
    lowered = env.type.lower()
    if lowered in _LIFECYCLE_KEYS:
        return Ignored(f"{env.type.split('.')[-1]}: Event Grid subscription housekeeping, answered by the Functions host", env)
    data = _data(payload)
    if type(data) is Rejected:
        return Rejected(data.reason, envelope=env)
    if lowered.startswith(_AML_KEY):
        return _aml(env, lowered, data, allowed)
    if lowered.startswith(_KEY_VAULT_KEY):
        return _key_vault(env, lowered, data, allowed)
    return Rejected(f"unknown event type {shown(env.type)} from {shown(env.source)}", security=True, envelope=env)


def _canonical(acted: tuple[str, ...], ignored: frozenset[str]) -> dict[str, str]:
    """A service's event types by their lower-case spelling (built once per service, not per event)."""
    return {t.lower(): t for t in (*acted, *ignored)}


AML_TYPES = _canonical((RUN_STATUS_CHANGED, RUN_COMPLETED), AML_IGNORED)
KV_TYPES = _canonical((SECRET_NEAR_EXPIRY, SECRET_EXPIRED), KV_IGNORED)


def _known(env: Envelope, lowered: str, source: ResourceId | None, what: str, service: str, types: Mapping[str, str],
           ignored: frozenset[str], why_ignored: str) -> str | Rejected | Ignored:
    """Authenticate the source, then canonicalise the type (`types`: by lower-case spelling, `lowered`): the
    canonical spelling, or why not."""
    if source is None:
        return Rejected(f"{shown(env.type)} from {shown(env.source)}, which is not an allowed {what}", security=True, envelope=env)
    etype = types.get(lowered)
    if etype is None:
        # From an allowed source an unknown type is new, not forged: acknowledged, no security warning.
        return Rejected(f"unknown {service} event type {shown(env.type)}", envelope=env)
    if etype in ignored:
        return Ignored(f"{etype.split('.')[-1]} needs no {why_ignored}", env)
    return etype


def _aml(env: Envelope, lowered: str, data: Mapping[str, Any], allowed: Allowed) -> Parsed:
    workspace = allowed.workspace(env.source)
    etype = _known(env, lowered, workspace, "workspace", "Azure ML", AML_TYPES, AML_IGNORED, "remediation")
    if type(etype) is not str:
        return etype
    assert workspace is not None
    spelled, get = _spellings(data), data.get
    subject = env.subject
    subject_run = subject.rsplit("/runs/", 1)[1] if "/runs/" in subject else ""
    run_id = _text(get(spelled.get("runid", _ABSENT))) or subject_run or subject.rsplit("/", 1)[-1]
    if not run_id:
        return Rejected(f"{etype} without runId or a runs/ subject", envelope=env)
    if not names.JOB.fits(run_id):  # names.JOB.check's words only for a name that fails
        return Rejected(names.JOB.check(run_id) or "", security=True, envelope=env)
    if subject_run and subject_run != run_id and not same_name(subject_run, run_id):
        # Azure's subject is experiments/{id}/runs/{runId}: a runId naming another run is not Azure's event.
        return Rejected(f"runId {shown(run_id)} is not the run its subject names ({shown(subject_run)})", security=True, envelope=env)
    status = _text(get(spelled.get("runstatus", _ABSENT)))[:64] or ("Completed" if etype == RUN_COMPLETED else "")
    if etype == RUN_STATUS_CHANGED:
        state = status.lower()
        if state == NOT_RESPONDING_STATE:
            return RunNotResponding(env, workspace, run_id, _text(get(spelled.get("experimentname", _ABSENT))))
        if state not in ENDED_RUN_STATES:
            # Completed runs arrive as RunCompleted too; acting on both would double the work.
            state = shown(status) if status else "in an unknown state"
            return Ignored(f"run {run_id} is {state}: only Failed, Canceled and NotResponding act (Completed comes as RunCompleted)", env)
    return RunEnded(env, workspace, run_id, status.capitalize(), _text(get(spelled.get("experimentname", _ABSENT))))


def _key_vault(env: Envelope, lowered: str, data: Mapping[str, Any], allowed: Allowed) -> Parsed:
    vault = allowed.vault(env.source)
    etype = _known(env, lowered, vault, "vault", "Key Vault", KV_TYPES, KV_IGNORED, "rotation")
    if type(etype) is not str:
        return etype
    assert vault is not None
    spelled, get = _spellings(data), data.get
    name = _text(get(spelled.get("objectname", _ABSENT))) or env.subject
    vault_name = _text(get(spelled.get("vaultname", _ABSENT)))
    if vault_name and not same_name(vault_name, vault.name):
        return Rejected(f"event names vault {shown(vault_name)} but comes from {vault.name!r}", security=True, envelope=env)
    if not name:
        return Rejected(f"{etype} without ObjectName or subject", envelope=env)
    version = _text(get(spelled.get("version", _ABSENT)))
    bad = names.SECRET.check(name) or (names.SECRET_VERSION.check(version) if version else None)
    if bad:
        return Rejected(bad, security=True, envelope=env)
    expires = _epoch(get(spelled.get("exp", _ABSENT)))
    if type(expires) is str:
        return Rejected(f"{etype} with {expires}", envelope=env)
    return SecretExpiring(env, vault, name, version, expires)


def _finite(value: Any) -> float | None:
    """A metric value as a float, or None when it is none (not a number, or beyond what a float holds)."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _epoch(raw: Any) -> datetime | str | None:
    """Key Vault's EXP (epoch seconds) as a time; None when absent; a reason when it is no time at all."""
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw) if isinstance(raw, int | float | str) and not isinstance(raw, bool) else float("nan")
        # datetime reaches year 9999; beyond that an EXP is no expiry Key Vault could have set.
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return f"an unreadable EXP {shown(str(raw))}"


def parse_alert(payload: Any, allowed: Allowed, *, bounded: bool = False) -> Parsed:
    """Turn an Azure Monitor common-alert-schema payload into AlertFired, Ignored or Rejected.

    Fired metric alerts on the baseline metrics (ALERT_METRICS: Unusable Nodes, Quota Utilization Percentage,
    Model Deploy Failed, Not Responding Runs, Failed Runs) act; Resolved is a no-op.
    """
    if not _is_map(payload):
        return Rejected(f"alert is {type(payload).__name__}, expected a JSON object")
    bounded = None if bounded else _bounded(payload, "alert")
    if bounded:
        return bounded
    if _text(payload.get("schemaId")) != ALERT_SCHEMA:
        return Rejected(f"schemaId is {shown(_text(payload.get('schemaId')))}, expected {ALERT_SCHEMA!r}")
    data = payload.get("data")
    essentials = data.get("essentials") if _is_map(data) else None
    if not _is_map(essentials):
        return Rejected("alert lacks data.essentials")
    get = essentials.get
    targets = get("alertTargetIDs")
    single = type(targets) is list and len(targets) == 1 and type(targets[0]) is str  # as Azure sends it: one workspace
    listed = single or (isinstance(targets, list) and bool(targets) and all(isinstance(t, str) for t in targets))
    alert_id = (_text(get("alertId")) or _text(get("originAlertId")))[:MAX_FIELD]
    condition = _text(get("monitorCondition"))[:64]
    state = condition.lower()
    rule = _text(get("alertRule"))[:MAX_FIELD]
    env = Envelope("alert", alert_id or "unknown", f"alert.{state or 'unknown'}", targets[0][:MAX_FIELD] if listed else "", rule,
                   _text(get("firedDateTime"))[:64])
    # Only platform metric alerts act (Azure Monitor's, on a workspace's metrics). Any other kind — log search,
    # activity log, service or resource health, Prometheus, a budget (whose targets are null) — reaching this
    # endpoint shares an action group with the autopilot's alerts: acknowledged and not acted on, whatever it
    # targets, rather than refused as malformed or forged.
    for kind_field in ("signalType", "monitoringService"):
        if isinstance(get(kind_field), dict | list):  # read as text it would be none: a metric alert's, which acts
            return Rejected(f"alert's data.essentials.{kind_field} is {type(get(kind_field)).__name__}, not text", envelope=env)
    signal, service = _text(get("signalType")), _text(get("monitoringService"))
    if signal.lower() not in ("metric", ""):
        return Ignored(f"{shown(signal)} alerts are not handled", env)
    if service.lower() not in ("platform", ""):
        return Ignored(f"{shown(service)} alerts are not handled", env)
    if not listed:
        return Rejected("alert lacks data.essentials.alertTargetIDs" if not targets or not isinstance(targets, list) else
                        "alert's data.essentials.alertTargetIDs holds something that is not a resource id", envelope=env)
    workspace = allowed.workspace(targets[0])
    if not single:
        workspaces = [allowed.workspace(t) for t in targets]
        if any(ws is None for ws in workspaces):
            bad = next(t for t, ws in zip(targets, workspaces, strict=True) if ws is None)
            return Rejected(f"alert targets {shown(bad)}, which is not an allowed workspace", security=True, envelope=env)
        if len({ws.key for ws in workspaces if ws is not None}) > 1:
            return Rejected("alert targets several workspaces; a workspace alert names one", envelope=env)
    if workspace is None:
        return Rejected(f"alert targets {shown(targets[0])}, which is not an allowed workspace", security=True, envelope=env)
    if not alert_id:
        return Rejected("alert lacks data.essentials.alertId", envelope=env)
    if state == "resolved":
        return Ignored(f"alert {env.subject!r} resolved: nothing to do", env)
    if state != "fired":
        return Rejected(f"monitorCondition is {shown(condition)}, expected Fired or Resolved", envelope=env)
    criteria = _criteria(data.get("alertContext"))
    if type(criteria) is Rejected:
        return Rejected(criteria.reason, envelope=env)
    for crit in criteria:
        metric = _text(crit.get("metricName")).lower()
        if metric in _ALERT_METRICS:
            bad = _bad_dimension(crit.get("dimensions"))
            if bad:
                return Rejected(bad, security=True, envelope=env)
            return AlertFired(env, workspace, rule, metric, _dimensions(crit.get("dimensions")), _finite(crit.get("metricValue")))
    metrics = ", ".join(shown(_text(c.get("metricName"))) for c in criteria[:5]) or "none"
    return Ignored(f"alert on metric(s) {metrics}: not one the autopilot remediates", env)


_ALERT_METRICS = frozenset(ALERT_METRICS)


# The dimensions whose values name a resource the worker reads: each must follow its naming rule.
NAMED_DIMENSIONS = {"clustername": names.COMPUTE, "vmfamilyname": names.VM_FAMILY}


def _criteria(context: Any) -> list[Mapping[str, Any]] | Rejected:
    if not _is_map(context):
        return Rejected("alert lacks data.alertContext")
    condition = context.get("condition")
    all_of = condition.get("allOf") if _is_map(condition) else None
    if not isinstance(all_of, list) or not all(_is_map(c) for c in all_of):
        return Rejected("alert lacks data.alertContext.condition.allOf")
    return list(all_of)


def _bad_dimension(raw: Any) -> str | None:
    """Why a dimension that names a resource (NAMED_DIMENSIONS) names none, or None: a value that is no
    text (an object, a list, null) or empty — read as nothing, it would widen the alert to every cluster
    of the workspace —, the dimension given twice (in any spelling), or a name that breaks the
    resource's naming rule."""
    seen: set[str] = set()
    if isinstance(raw, list):
        for item in raw:
            name = _text(item.get("name")) if _is_map(item) else ""
            key = name[:MAX_DIMENSION].strip().lower()  # as `dimension` finds it among `_dimensions`' names
            rule = NAMED_DIMENSIONS.get(key)
            if rule is None:
                continue
            value = item.get("value")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return f"dimension {shown(name)}: its value is {type(value).__name__}, not a name"
            text = _text(value)[:MAX_DIMENSION]
            if not text:
                return f"dimension {shown(name)}: its value is empty, not a name"
            if key in seen:
                return f"dimension {shown(name)} is given twice"
            seen.add(key)
            bad = rule.check(text)
            if bad:
                return f"dimension {name[:MAX_DIMENSION]}: {bad}"
    return None


def _dimensions(raw: Any) -> dict[str, str]:
    """Dimensions come as [{"name", "value"}]; keys are kept as sent, compared case-insensitively later."""
    out: dict[str, str] = {}
    if isinstance(raw, list):
        for item in raw:
            name = _text(item.get("name")) if _is_map(item) else ""
            if name:
                out[name[:MAX_DIMENSION]] = _text(item.get("value"))[:MAX_DIMENSION]
    return out


def dimension(alert: AlertFired, name: str) -> str | None:
    """The alert's dimension `name` (case- and whitespace-insensitively), or None."""
    dims = alert.dimensions
    return _text(dims.get(_spellings(dims).get(name.strip().lower(), _ABSENT))) or None


def dimensions(alert: AlertFired, *wanted: str) -> tuple[str | None, ...]:
    """`dimension` of each name in `wanted`, the alert's dimension names folded once for all of them."""
    dims = alert.dimensions
    spelled = _spellings(dims)
    return tuple(_text(dims.get(spelled.get(name.strip().lower(), _ABSENT))) or None for name in wanted)


def parse_any(payload: Any, allowed: Allowed) -> list[Parsed]:
    """Classify any inbound document: an alert, one event, or a batch of events."""
    if _is_map(payload) and "schemaId" in payload:
        return [parse_alert(payload, allowed)]
    if isinstance(payload, list):
        if not payload:
            return [Rejected("empty batch")]
        bounded = _bounded(payload, "batch")
        if bounded:
            return [bounded]
        return [parse_event(item, allowed) for item in payload]
    return [parse_event(payload, allowed)]

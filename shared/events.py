"""Parse and authenticate every inbound payload into one typed domain event, or a clear rejection.

Three wire formats arrive: the Event Grid schema, CloudEvents 1.0, and Azure Monitor's common
alert schema. A payload whose source (``topic``, ``source``, ``alertTargetIDs``) is not an allowed
workspace or vault is *forged or misrouted*: it yields zero actions and a security warning, and the
delivery is still acknowledged so Event Grid does not retry it for 24 hours.

Nothing here trusts payload fields for decisions: events only say *where to look*; the engine
re-reads the live state before deciding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.model import ResourceId

AML = "Microsoft.MachineLearningServices."
KEY_VAULT = "Microsoft.KeyVault."
RUN_STATUS_CHANGED = AML + "RunStatusChanged"
RUN_COMPLETED = AML + "RunCompleted"
AML_IGNORED = {AML + t for t in ("ModelRegistered", "ModelDeployed", "DatasetDriftDetected")}
SECRET_NEAR_EXPIRY = KEY_VAULT + "SecretNearExpiry"
SECRET_EXPIRED = KEY_VAULT + "SecretExpired"
KV_IGNORED = {KEY_VAULT + t for t in ("SecretNewVersionCreated", "KeyNearExpiry", "KeyExpired", "KeyNewVersionCreated",
                                     "CertificateNearExpiry", "CertificateExpired", "CertificateNewVersionCreated",
                                     "VaultAccessPolicyChanged")}
ENDED_RUN_STATES = {"failed", "canceled"}
ALERT_SCHEMA = "azureMonitorCommonAlertSchema"
UNUSABLE_NODES = "unusable nodes"
QUOTA_UTILIZATION = "quota utilization percentage"


@dataclass(frozen=True)
class Allowed:
    """The sources the autopilot accepts: its configured workspaces and vaults."""

    workspaces: tuple[ResourceId, ...]
    vaults: tuple[ResourceId, ...] = ()

    def workspace(self, source: str) -> ResourceId | None:
        return next((ws for ws in self.workspaces if ws.same_as(source)), None)

    def vault(self, source: str) -> ResourceId | None:
        return next((v for v in self.vaults if v.same_as(source)), None)


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
        return "evt-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


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


@dataclass(frozen=True)
class AlertFired:
    """An Azure Monitor metric alert fired on a workspace."""

    envelope: Envelope
    workspace: ResourceId
    rule: str
    metric: str  # lower-case: "unusable nodes" | "quota utilization percentage"
    dimensions: Mapping[str, str]
    value: float | None

    def describe(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dimensions.items()) or "no dimensions"
        return f"alert {self.rule!r}: {self.metric} = {self.value} ({dims}) on {self.workspace.name}"


@dataclass(frozen=True)
class SecretExpiring:
    """A Key Vault secret is near expiry or expired: rotate it if it is a managed credential."""

    envelope: Envelope
    vault: ResourceId
    secret: str
    version: str
    expires: datetime | None

    def describe(self) -> str:
        when = f", expires {self.expires:%Y-%m-%d}" if self.expires else ""
        return f"secret {self.secret} in vault {self.vault.name} {self.envelope.type.split('.')[-1]}{when}: rotate if managed"


@dataclass(frozen=True)
class Ignored:
    """Understood and deliberately not acted on (acknowledged)."""

    reason: str
    envelope: Envelope | None = None

    def describe(self) -> str:
        return f"ignored: {self.reason}"


@dataclass(frozen=True)
class Rejected:
    """Malformed or forged (acknowledged, never acted on). ``security`` marks forged or misrouted sources."""

    reason: str
    security: bool = False
    envelope: Envelope | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"{'forged or misrouted' if self.security else 'malformed'}: {self.reason}"


Parsed = RunEnded | AlertFired | SecretExpiring | Ignored | Rejected
ACTIONABLE = (RunEnded, AlertFired, SecretExpiring)


def _ci(mapping: Mapping[str, Any], key: str) -> Any:
    """Look a key up case-insensitively and whitespace-insensitively (AML and Key Vault vary their casing)."""
    wanted = key.strip().lower()
    for k, v in mapping.items():
        if str(k).strip().lower() == wanted:
            return v
    return None


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def envelope_of(payload: Mapping[str, Any]) -> Envelope | Rejected:
    """Read the envelope of an Event Grid or CloudEvents 1.0 event."""
    if "specversion" in payload:
        if _text(payload.get("specversion")) != "1.0":
            return Rejected(f"unsupported CloudEvents specversion {payload.get('specversion')!r}")
        fields = {"id": "id", "type": "type", "source": "source"}
        schema, subject, time = "cloudevents", _text(payload.get("subject")), _text(payload.get("time"))
    else:
        fields = {"id": "id", "type": "eventType", "source": "topic"}
        schema, subject, time = "eventgrid", _text(payload.get("subject")), _text(payload.get("eventTime"))
    values = {name: _text(payload.get(wire)) for name, wire in fields.items()}
    missing = [fields[name] for name, value in values.items() if not value]
    if missing:
        return Rejected(f"{schema} event lacks {', '.join(missing)}")
    return Envelope(schema, values["id"], values["type"], values["source"], subject, time)


def _data(payload: Mapping[str, Any]) -> Mapping[str, Any] | Rejected:
    data = payload.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return Rejected("event data is a string that is not JSON")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        return Rejected(f"event data is {type(data).__name__}, expected an object")
    return data


def parse_event(payload: Any, allowed: Allowed) -> Parsed:
    """Turn one Event Grid or CloudEvents event (as a dict) into a domain event or a rejection."""
    if not isinstance(payload, Mapping):
        return Rejected(f"event is {type(payload).__name__}, expected a JSON object")
    env = envelope_of(payload)
    if isinstance(env, Rejected):
        return env
    data = _data(payload)
    if isinstance(data, Rejected):
        return Rejected(data.reason, envelope=env)
    etype = env.type
    if etype.lower().startswith(AML.lower()):
        return _aml(env, data, allowed)
    if etype.lower().startswith(KEY_VAULT.lower()):
        return _key_vault(env, data, allowed)
    return Rejected(f"unknown event type {etype!r} from {env.source!r}", security=True, envelope=env)


def _known(env: Envelope, source: ResourceId | None, what: str, service: str, acted: tuple[str, ...], ignored: set[str],
           why_ignored: str) -> str | Rejected | Ignored:
    """Authenticate the source, then canonicalise the type: the type's canonical spelling, or why not."""
    if source is None:
        return Rejected(f"{env.type} from {env.source!r}, which is not an allowed {what}", security=True, envelope=env)
    canonical = {t.lower(): t for t in (*acted, *ignored)}
    etype = canonical.get(env.type.lower())
    if etype is None:
        # From an allowed source an unknown type is new, not forged: acknowledged, no security warning.
        return Rejected(f"unknown {service} event type {env.type!r}", envelope=env)
    if etype in ignored:
        return Ignored(f"{etype.split('.')[-1]} needs no {why_ignored}", env)
    return etype


def _aml(env: Envelope, data: Mapping[str, Any], allowed: Allowed) -> Parsed:
    workspace = allowed.workspace(env.source)
    etype = _known(env, workspace, "workspace", "Azure ML", (RUN_STATUS_CHANGED, RUN_COMPLETED), AML_IGNORED, "remediation")
    if not isinstance(etype, str):
        return etype
    assert workspace is not None
    run_id = _text(_ci(data, "runId")) or env.subject.rsplit("/", 1)[-1]
    if not run_id:
        return Rejected(f"{etype} without runId or a runs/ subject", envelope=env)
    status = _text(_ci(data, "runStatus")) or ("Completed" if etype == RUN_COMPLETED else "")
    if etype == RUN_STATUS_CHANGED and status.lower() not in ENDED_RUN_STATES:
        # Completed runs arrive as RunCompleted too; acting on both would double the work.
        return Ignored(f"run {run_id} is {status or 'in an unknown state'}: only Failed and Canceled act (Completed comes as RunCompleted)", env)
    return RunEnded(env, workspace, run_id, status.capitalize(), _text(_ci(data, "experimentName")))


def _key_vault(env: Envelope, data: Mapping[str, Any], allowed: Allowed) -> Parsed:
    vault = allowed.vault(env.source)
    etype = _known(env, vault, "vault", "Key Vault", (SECRET_NEAR_EXPIRY, SECRET_EXPIRED), KV_IGNORED, "rotation")
    if not isinstance(etype, str):
        return etype
    assert vault is not None
    name = _text(_ci(data, "ObjectName")) or env.subject
    vault_name = _text(_ci(data, "VaultName"))
    if vault_name and vault_name.lower() != vault.name.lower():
        return Rejected(f"event names vault {vault_name!r} but comes from {vault.name!r}", security=True, envelope=env)
    if not name:
        return Rejected(f"{etype} without ObjectName or subject", envelope=env)
    exp_raw = _ci(data, "EXP")
    expires = None
    if exp_raw not in (None, ""):
        try:
            expires = datetime.fromtimestamp(float(exp_raw), UTC)
        except (TypeError, ValueError, OverflowError):
            return Rejected(f"{etype} with an unreadable EXP {exp_raw!r}", envelope=env)
    return SecretExpiring(env, vault, name, _text(_ci(data, "Version")), expires)


def parse_alert(payload: Any, allowed: Allowed) -> Parsed:
    """Turn an Azure Monitor common-alert-schema payload into AlertFired, Ignored or Rejected.

    Fired metric alerts on 'Unusable Nodes' and 'Quota Utilization Percentage' act; Resolved is a no-op.
    """
    if not isinstance(payload, Mapping):
        return Rejected(f"alert is {type(payload).__name__}, expected a JSON object")
    if _text(payload.get("schemaId")) != ALERT_SCHEMA:
        return Rejected(f"schemaId is {payload.get('schemaId')!r}, expected {ALERT_SCHEMA!r}")
    data = payload.get("data")
    essentials = data.get("essentials") if isinstance(data, Mapping) else None
    if not isinstance(essentials, Mapping):
        return Rejected("alert lacks data.essentials")
    targets = essentials.get("alertTargetIDs")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        return Rejected("alert lacks data.essentials.alertTargetIDs")
    alert_id = _text(essentials.get("alertId")) or _text(essentials.get("originAlertId"))
    condition = _text(essentials.get("monitorCondition"))
    env = Envelope("alert", alert_id or "unknown", f"alert.{condition.lower() or 'unknown'}", targets[0],
                   _text(essentials.get("alertRule")), _text(essentials.get("firedDateTime")))
    workspaces = [allowed.workspace(t) for t in targets]
    if any(ws is None for ws in workspaces):
        bad = next(t for t, ws in zip(targets, workspaces, strict=True) if ws is None)
        return Rejected(f"alert targets {bad!r}, which is not an allowed workspace", security=True, envelope=env)
    if not alert_id:
        return Rejected("alert lacks data.essentials.alertId", envelope=env)
    if condition.lower() == "resolved":
        return Ignored(f"alert {env.subject!r} resolved: nothing to do", env)
    if condition.lower() != "fired":
        return Rejected(f"monitorCondition is {condition!r}, expected Fired or Resolved", envelope=env)
    if _text(essentials.get("signalType")).lower() not in ("metric", ""):
        return Ignored(f"{essentials.get('signalType')} alerts are not handled", env)
    context = data.get("alertContext") if isinstance(data, Mapping) else None
    criteria = _criteria(context)
    if isinstance(criteria, Rejected):
        return Rejected(criteria.reason, envelope=env)
    for crit in criteria:
        metric = _text(crit.get("metricName")).lower()
        if metric in (UNUSABLE_NODES, QUOTA_UTILIZATION):
            dims = _dimensions(crit.get("dimensions"))
            value = crit.get("metricValue")
            number = float(value) if isinstance(value, int | float) else None
            return AlertFired(env, workspaces[0], _text(essentials.get("alertRule")), metric, dims, number)  # type: ignore[arg-type]
    names = ", ".join(_text(c.get("metricName")) for c in criteria) or "none"
    return Ignored(f"alert on metric(s) {names}: not one the autopilot remediates", env)


def _criteria(context: Any) -> list[Mapping[str, Any]] | Rejected:
    if not isinstance(context, Mapping):
        return Rejected("alert lacks data.alertContext")
    condition = context.get("condition")
    all_of = condition.get("allOf") if isinstance(condition, Mapping) else None
    if not isinstance(all_of, list) or not all(isinstance(c, Mapping) for c in all_of):
        return Rejected("alert lacks data.alertContext.condition.allOf")
    return list(all_of)


def _dimensions(raw: Any) -> dict[str, str]:
    """Dimensions come as [{"name", "value"}]; keys are kept as sent, compared case-insensitively later."""
    out: dict[str, str] = {}
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and item.get("name"):
                out[_text(item["name"])] = _text(item.get("value"))
    return out


def dimension(alert: AlertFired, name: str) -> str | None:
    value = _ci(alert.dimensions, name)
    return _text(value) or None


def parse_any(payload: Any, allowed: Allowed) -> list[Parsed]:
    """Classify any inbound document: an alert, one event, or a batch of events."""
    if isinstance(payload, Mapping) and "schemaId" in payload:
        return [parse_alert(payload, allowed)]
    if isinstance(payload, list):
        if not payload:
            return [Rejected("empty batch")]
        return [parse_event(item, allowed) for item in payload]
    return [parse_event(payload, allowed)]

"""Failed online deployments: say why, tell the owner, and release the quota of those nobody is served by.

A managed online deployment that failed keeps its reserved VMs (and their quota) until someone deletes
it. The rule, for each deployment in state Failed:

- first seen: one outcome saying why (the status code the Model Deploy Failed alert gave, the tail of
  the inference server's log with anything that looks like a secret redacted), the share of traffic and
  mirror traffic it receives, and a mark; the owner is told;
- marked, the grace period passed, still Failed, **0 % traffic and 0 % mirror traffic**, managed: delete
  it (the guard re-reads the deployment and its endpoint's traffic just before the delete);
- receiving traffic or mirror traffic: never deleted — the outcome names the endpoint, the share at
  risk and the healthy deployments that could take it (moving traffic is not done);
- its endpoint unreadable, or its traffic split unreadable (a share that is not a whole percent): never deleted;
- a Kubernetes deployment: reported, never changed (its capacity is the cluster's, not AML quota);
- a marked deployment that is no longer Failed recovered: kept, its mark cleared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.actions import REPORTED_ONLY, Change, ClearMark, DeleteDeployment, MarkFailedDeployment
from shared.model import Action, Decision, Mark, OnlineDeployment, OnlineEndpoint, Verdict, human, name_key
from shared.policy.common import Exemptions, exemption_reason

RULE = "failed-deployment"
LOG_LINES_SHOWN = 5
LOG_CHARS_SHOWN = 600
LOG_READ_CHARS = 4 * LOG_CHARS_SHOWN  # of a log's end, read to find its last lines

# What looks like a secret in a container log: key=value pairs of secret-ish names (the value bare or quoted, the
# separator also URL-encoded as in a SAS URL nested in another URL), bearer tokens, JWTs, passwords in URLs
# (``scheme://user:password@host``), storage connection strings and SAS signatures, and long base64 or hex runs.
_SECRET_PAIR = re.compile(
    r"(?i)\b([\w.-]{0,64}?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|account[_-]?key|sharedaccesskey|"
    r"connection[_-]?string|credential|sig|signature|sas)[\w.-]{0,64})(\"?\s*(?:[=:]|%3d)\s*)"
    r"(\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"';,&]+)")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+|\b(basic)\s+[A-Za-z0-9+/=]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://[^\s:/@]{0,256}:)[^\s/@]+@")
_LONG_OPAQUE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{32,}={0,2}(?![A-Za-z0-9+/])")
# Terminal escapes, control characters and the invisible ones that reorder or hide text (bidi overrides,
# zero-width): a log line is shown to people as plain text, and none of these may change what they read.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
REDACTED = "[redacted]"


def _pair(m: re.Match[str]) -> str:
    value = m.group(3)
    quote = value[0] if value[0] in "\"'" else ""
    return f"{m.group(1)}{m.group(2)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """The text with anything that looks like a secret replaced by ``[redacted]``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _SECRET_PAIR.sub(_pair, text)
    text = _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _LONG_OPAQUE.sub(REDACTED, text)


def plain(text: str) -> str:
    """The text without terminal escapes, control characters or invisible reordering characters (line breaks kept)."""
    return _INVISIBLE.sub("", _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def log_tail(logs: str) -> str:
    """The last lines of a log, redacted, on one line, bounded.

    Only the end is read (a log line can be of any length); a piece cut from the middle of a word is
    dropped before redacting, so no fragment of a secret whose name was cut off can pass unredacted.
    """
    piece = logs[-LOG_READ_CHARS:]
    if len(logs) > LOG_READ_CHARS:  # the first line read is a cut one: dropped (or its first word, if it is the only one)
        piece = piece.split("\n", 1)[1] if "\n" in piece else [*piece.split(None, 1), ""][1]
    lines = [line.strip() for line in plain(piece).splitlines() if line.strip()][-LOG_LINES_SHOWN:]
    text = redact(" | ".join(lines))
    return text if len(text) <= LOG_CHARS_SHOWN else "…" + text[-LOG_CHARS_SHOWN:]


@dataclass(frozen=True)
class DeploymentRules:
    grace: timedelta
    exemptions: Exemptions


def diagnosis(status_code: str | None, logs: str | None) -> str:
    """Why it failed, as far as Azure says: the alert's status code and the inference server's last lines."""
    code = f"status code {status_code}" if status_code else "no status code (no Model Deploy Failed alert with it)"
    if logs is None:
        return code
    tail = log_tail(logs)
    return f"{code}; inference server log: {tail}" if tail else f"{code}; the inference server log is empty"


def _act(deployment: OnlineDeployment, change: Change, reason: str) -> Action:
    return Action(change, deployment.workspace, deployment.target, reason, owner=deployment.owner,
                  tags=tuple(deployment.tags.items()))


def cores_of(deployment: OnlineDeployment, sizes: Mapping[str, tuple[str, int]]) -> int:
    """vCPUs of one instance of the deployment's type (0 when the size table does not know it)."""
    return sizes.get(deployment.instance_type.lower(), ("", 0))[1]


def _healthy_others(deployment: OnlineDeployment, siblings: Sequence[OnlineDeployment]) -> str:
    healthy = [d.name for d in siblings if not same(d, deployment) and d.state.lower() == "succeeded"]
    return ", ".join(healthy) if healthy else "none (no other deployment of the endpoint is Succeeded)"


def same(a: OnlineDeployment, b: OnlineDeployment) -> bool:
    return name_key(a.endpoint) == name_key(b.endpoint) and name_key(a.name) == name_key(b.name)


def judge_deployment(deployment: OnlineDeployment, endpoint: OnlineEndpoint | None, siblings: Sequence[OnlineDeployment],
                     mark: Mark | None, logs: str | None, status_code: str | None, sizes: Mapping[str, tuple[str, int]],
                     rules: DeploymentRules, now: datetime) -> Verdict:
    """The rule's verdict on one deployment (see the module's rules)."""
    target = deployment.target

    def verdict(decision: Decision, reason: str, *changes: Change) -> Verdict:
        return Verdict(RULE, target, decision, reason, tuple(_act(deployment, c, reason) for c in changes))

    if not deployment.failed:
        if mark is not None:
            return verdict(Decision.KEEP, f"recovered: state is {deployment.state} since it was marked failed",
                           ClearMark(of="onlineEndpoints"))
        return verdict(Decision.KEEP, f"state {deployment.state}")
    exempt = exemption_reason(target, deployment.tags, rules.exemptions)
    if exempt:
        return verdict(Decision.SKIP, exempt)
    traffic, mirror = endpoint.share(deployment.name) if endpoint else (0, 0)
    held = f"{deployment.instance_count} × {deployment.instance_type or 'unknown size'}"
    cores = cores_of(deployment, sizes) * deployment.instance_count
    held += f" ({cores} cores of quota)" if cores else ""
    if not deployment.managed:
        why = f"failed {deployment.compute_type} deployment: reported, never changed (its capacity is the cluster's)"
    elif endpoint is None:
        why = f"failed, holding {held}; its endpoint could not be read, so its traffic is unknown: never deleted"
    elif endpoint.unreadable:
        why = (f"failed, holding {held}; endpoint {endpoint.name}'s traffic split is unreadable ({endpoint.unreadable}), "
               f"so its traffic is unknown: never deleted")
    elif traffic or mirror:
        why = (f"failed while endpoint {endpoint.name} sends it {traffic} % of traffic and {mirror} % of mirror traffic: "
               f"that share is at risk; never deleted; healthy deployments that could take it: "
               f"{_healthy_others(deployment, siblings)}; traffic is not moved (MOVE_TRAFFIC_FROM_FAILED)")
    else:
        why = ""
    if mark is not None and why:
        return verdict(Decision.KEEP, why)
    if mark is None or mark.reason.startswith(REPORTED_ONLY):
        # First seen — or told before that it would not be deleted, and now it could be: told afresh, a new grace period.
        said = why or (f"failed with 0 % traffic and 0 % mirror traffic, holding {held}: deleted after the grace period unless it recovers"
                       + ("; it no longer receives traffic" if mark is not None else ""))
        return verdict(Decision.ACT, f"{said}; {diagnosis(status_code, logs)}", MarkFailedDeployment(deletable=not why))
    waited = now - mark.marked_at
    if waited < rules.grace:
        return verdict(Decision.WAIT, f"failed, no traffic, holding {held}; marked {human(waited)} ago, "
                                      f"deleted once {human(rules.grace)} have passed")
    reason = f"failed, 0 % traffic and 0 % mirror traffic, marked {human(waited)} ago: releasing {held}"
    return verdict(Decision.ACT, reason, DeleteDeployment(deployment.instance_type, deployment.instance_count,
                                                         cores_of(deployment, sizes)))

"""Messages people act on: one outcome as a webhook body, in the shape the receiving tool expects. Pure.

- ``text``: ``{"text": one line, **the outcome's fields}`` (any JSON webhook);
- ``teams``: a message with one Adaptive Card attachment, as a Teams Workflows webhook ("Post to a
  channel when a webhook request is received") takes it: ``{"type": "message", "attachments":
  [{"contentType": "application/vnd.microsoft.card.adaptive", "content": AdaptiveCard 1.4}]}``; the
  owner is mentioned with ``<at>UPN</at>`` and a ``msteams.entities`` mention (Microsoft Learn,
  "Format cards in Microsoft Teams", user mention in an Adaptive Card);
- ``slack``: Block Kit, ``{"text": fallback, "blocks": [header, section with fields, context, actions]}``
  within Slack's documented limits (header 150 characters, section text 3000, 10 fields of 2000).

Each carries the outcome, the reason, a link to the compute in Azure ML studio and, for a warning,
the time left before the action. Names and reasons come from Azure and are not trusted as markup:
Teams text loses the characters that make links, mentions or HTML, Slack text is escaped as Slack asks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from shared.model import ActionKind, Outcome, human

STUDIO = "https://ml.azure.com"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
_UPN = re.compile(r"^[A-Za-z0-9._%+'-]{1,113}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# An underscore between two letters or digits can neither open nor close emphasis in markdown (CommonMark's
# flanking rules), and compute names hold such underscores: only the others could style a card's text.
_STYLING_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def studio_link(outcome: Outcome, tenant: str = "") -> str | None:
    """The compute's page in Azure ML studio (`/compute/{name}/details?wsid=…&tid=…`); None for what is not a compute."""
    if "/computes/" not in outcome.action.resource_id.lower():
        return None
    query = {"wsid": outcome.action.workspace.id}
    if tenant:
        query["tid"] = tenant
    return f"{STUDIO}/compute/{quote(outcome.action.target, safe='')}/details?{urlencode(query, safe='/')}"


@dataclass(frozen=True)
class _Warning:
    """How a warning to an owner reads: its title, the line that mentions them, and what would stop the action."""

    title: str  # {target}, {workspace}
    told: str  # {target}
    unless: str
    untimed: str = ""  # the title when no action follows (no grace period): {target}, {workspace}


# One per action kind that warns (``warning = True``): an owner is told what is about to happen to *their* resource.
_WARNINGS = {
    ActionKind.MARK_IDLE: _Warning("Idle compute {target} in {workspace}: it will be stopped unless used",
                                   "your compute instance {target} looks idle.", "unless it is used"),
    ActionKind.MARK_FAILED_DEPLOYMENT: _Warning(
        "Failed online deployment {target} in {workspace}: it will be deleted unless it recovers",
        "your online deployment {target} failed.", "unless it recovers or receives traffic",
        "Failed online deployment {target} in {workspace}: it is not deleted (it receives traffic or runs on Kubernetes)"),
}
# What the target of an action is, by the collection it lives in.
_NOUNS = {"computes": "Compute", "onlineEndpoints": "Deployment", "jobs": "Job"}


def _warning(outcome: Outcome) -> _Warning:
    return _WARNINGS.get(outcome.action.kind, _WARNINGS[ActionKind.MARK_IDLE])


def title(outcome: Outcome, warning: bool, timed: bool = True) -> str:
    action = outcome.action
    if warning:
        words = _warning(outcome)
        return (words.title if timed or not words.untimed else words.untimed).format(target=action.target, workspace=action.workspace.name)
    return f"{outcome.status.value}: {action.change.describe(action.target)} ({action.workspace.name})"


def time_left(outcome: Outcome, grace: timedelta | None) -> str | None:
    """For a warning: how long before the action, and when."""
    if grace is None:
        return None
    due: datetime = outcome.at + grace
    return f"{human(grace)} (after {due:%Y-%m-%d %H:%M}Z, {_warning(outcome).unless})" if grace else "none: the next sweep acts"


def mentionable(owner: str | None) -> str | None:
    """The owner's UPN when it is one a mention can carry; None otherwise (then the owner is named, not mentioned)."""
    return owner if isinstance(owner, str) and _UPN.match(owner) else None


# Teams refuses a webhook message over about 28 KB ("Request Entity too large"; Microsoft Learn, "Create Incoming
# Webhooks" and the Teams connector's known limits). Each text has a budget of bytes as it is sent (JSON, non-ASCII
# escaped), so that every card fits whatever Azure or a log put in its reason: 1 KB for the title, 8 KB for the
# reason, 2 KB for each other fact.
TEAMS_TEXT_BYTES = 2048
TEAMS_REASON_BYTES = 8192
TEAMS_TITLE_BYTES = 1024


def _teams_text(value: Any, budget: int = TEAMS_TEXT_BYTES) -> str:
    text = _CONTROL.sub(" ", str(value))
    text = _STYLING_UNDERSCORE.sub(" ", text)
    text = text.translate(str.maketrans({"[": "(", "]": ")", "<": "‹", ">": "›", "*": "∗", "`": "'"}))
    if len(json.dumps(text)) <= budget:
        return text
    cut = len(text)
    while cut and len(json.dumps(text[:cut] + "…")) > budget:
        cut = min(cut - 1, cut * budget // len(json.dumps(text[:cut] + "…")))
    return text[:cut] + "…"


def _slack_text(value: Any, limit: int) -> str:
    text = _CONTROL.sub(" ", str(value)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(outcome: Outcome, left: str | None) -> list[tuple[str, str]]:
    a = outcome.action
    facts = [("Outcome", outcome.status.value), ("Action", a.kind.value), (_NOUNS.get(str(a.change.collection), "Target"), a.target),
             ("Workspace", a.workspace.name), ("Reason", a.reason), ("Detail", outcome.detail)]
    if a.owner:
        facts.append(("Owner", a.owner))
    if left:
        facts.append(("Time left", left))
    return facts


def text_body(outcome: Outcome) -> dict[str, Any]:
    body = outcome.as_log()
    line = f"[aml-autopilot] {body['status']}: {body['action']} {body['workspace']}/{body['target']} — {body['reason']}"
    return {"text": line, **body}


def teams(outcome: Outcome, link: str | None, left: str | None, warning: bool) -> dict[str, Any]:
    """A Teams Workflows message: one Adaptive Card (1.4), the owner mentioned on a warning."""
    upn = mentionable(outcome.action.owner) if warning else None
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _teams_text(title(outcome, warning, left is not None), TEAMS_TITLE_BYTES), "weight": "Bolder", "size": "Medium", "wrap": True}]
    if upn:
        body.append({"type": "TextBlock", "wrap": True,
                     "text": f"<at>{upn}</at>, " + _warning(outcome).told.format(target=_teams_text(outcome.action.target))})
    body.append({"type": "FactSet", "facts": [{"title": k, "value": _teams_text(v, TEAMS_REASON_BYTES if k == "Reason" else TEAMS_TEXT_BYTES)}
                                              for k, v in _facts(outcome, left)]})
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body}
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Azure ML studio", "url": link}]
    card["msteams"] = {"width": "Full"}
    if upn:
        card["msteams"]["entities"] = [{"type": "mention", "text": f"<at>{upn}</at>", "mentioned": {"id": upn, "name": upn}}]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                                                "content": card}]}


def slack(outcome: Outcome, link: str | None, left: str | None, warning: bool) -> dict[str, Any]:
    """Block Kit: a header, the facts as section fields, the time left, a button to the studio."""
    head = title(outcome, warning, left is not None)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _CONTROL.sub(" ", head)[:150], "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Reason:* {_slack_text(outcome.action.reason, 2900)}"},
         "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_slack_text(v, 1900)}"} for k, v in _facts(outcome, None)
                    if k != "Reason"][:10]},
    ]
    if left:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*Time left:* {_slack_text(left, 2900)}"}]})
    if link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Azure ML studio"}, "url": link}]})
    return {"text": _slack_text(head, 3000), "blocks": blocks}


def render(fmt: str, outcome: Outcome, *, tenant: str = "", grace: timedelta | None = None, warning: bool = False) -> dict[str, Any]:
    """The webhook body of an outcome in NOTIFY_FORMAT (text, teams or slack)."""
    if fmt == "text":
        return text_body(outcome)
    link, left = studio_link(outcome, tenant), time_left(outcome, grace) if warning else None
    return teams(outcome, link, left, warning) if fmt == "teams" else slack(outcome, link, left, warning)

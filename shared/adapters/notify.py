"""Telling people: one structured log line per outcome, plus a webhook and an Event Grid topic when configured.

The webhook body is in NOTIFY_FORMAT (text, a Teams Adaptive Card or Slack Block Kit: shared/messages.py).
A warning to an owner (an action kind with ``warning = True``) also goes to that owner's own webhook
when NOTIFY_OWNER_WEBHOOKS routes their UPN; the channel list returned says whether it got there.

Notifications are best effort: a failing webhook is logged and never fails the remediation.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.adapters.azure import client_options
from shared.messages import render
from shared.model import Outcome, Status
from shared.settings import Settings

log = logging.getLogger("autopilot.notify")
EVENT_SOURCE = "/aml-autopilot"
OWNER_CHANNEL = "owner webhook"


class Notifier:
    """Sends each outcome to the configured channels."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._publisher: Any = None
        # One HTTP session per thread (workers run on several): the webhook's TLS connection is kept
        # between outcomes rather than made again for each. The channels of one outcome go out together.
        self._local = threading.local()
        self._channels = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify")

    @property
    def channels(self) -> list[str]:
        """The configured channels, by name."""
        return [name for name, on in (("webhook", self.settings.notify_webhook_url), ("event grid", self.settings.notify_eventgrid_endpoint))
                if on]

    def reaches(self, owner: str | None) -> bool:
        """Whether NOTIFY_OWNER_WEBHOOKS routes this owner (UPNs compared without case)."""
        return isinstance(owner, str) and owner.strip().lower() in self.settings.notify_owner_webhooks

    def send(self, outcome: Outcome) -> list[str]:
        """Tell people what they act on: done, failed, planned (and owner warnings); skips stay in the log.

        Returns the channels that accepted the message (OWNER_CHANNEL when the owner's own webhook took a warning).
        """
        if outcome.status is Status.SKIPPED:
            return []
        change = outcome.action.change
        warning = bool(getattr(change, "warning", False))
        grace = change.grace(self.settings) if warning and hasattr(change, "grace") else None
        message = render(self.settings.notify_format, outcome, tenant=self.settings.studio_tenant_id, grace=grace, warning=warning)
        sent = []
        grid = self._channels.submit(self._eventgrid, outcome, outcome.as_log()) if self.settings.notify_eventgrid_endpoint else None
        if self.settings.notify_webhook_url and self._webhook(self.settings.notify_webhook_url, message, "notification"):
            sent.append("webhook")
        if grid is not None and grid.result():
            sent.append("event grid")
        if warning and self.reaches(outcome.action.owner):
            owner = str(outcome.action.owner).strip().lower()
            if self._webhook(self.settings.notify_owner_webhooks[owner], message, "owner"):
                sent.append(OWNER_CHANNEL)
        return sent

    def _webhook(self, url: str, message: dict[str, Any], which: str) -> bool:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.post(url, json=message, timeout=min(10, self.settings.arm_timeout_seconds))
            response.raise_for_status()
        except requests.RequestException as exc:
            log.warning("%s webhook failed: %s", which, type(exc).__name__)
            return False
        return True

    def _eventgrid(self, outcome: Outcome, body: dict[str, Any]) -> bool:
        from azure.core.credentials import AzureKeyCredential
        from azure.core.messaging import CloudEvent
        from azure.eventgrid import EventGridPublisherClient

        if self._publisher is None:
            self._publisher = EventGridPublisherClient(self.settings.notify_eventgrid_endpoint,
                                                       AzureKeyCredential(self.settings.notify_eventgrid_key),
                                                       **client_options(self.settings))
        event = CloudEvent(source=EVENT_SOURCE, type=f"AmlAutopilot.{outcome.action.kind.value}.{outcome.status.value}",
                           subject=outcome.action.resource_id, data=body)
        try:
            self._publisher.send([event])
        except Exception as exc:
            log.warning("notification to Event Grid failed: %s", type(exc).__name__)
            return False
        return True

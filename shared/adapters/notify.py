"""Telling people: one structured log line per outcome, plus a webhook and an Event Grid topic when configured.

Notifications are best effort: a failing webhook is logged and never fails the remediation.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.adapters.azure import client_options
from shared.model import Outcome, Status
from shared.settings import Settings

log = logging.getLogger("autopilot.notify")
EVENT_SOURCE = "/aml-autopilot"


class Notifier:
    """Sends each outcome to the configured channels."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._publisher: Any = None

    @property
    def channels(self) -> list[str]:
        """The configured channels, by name."""
        return [name for name, on in (("webhook", self.settings.notify_webhook_url), ("event grid", self.settings.notify_eventgrid_endpoint))
                if on]

    def send(self, outcome: Outcome) -> list[str]:
        """Tell people what they act on: done, failed, planned (and owner warnings); skips stay in the log.

        Returns the channels that accepted the message.
        """
        if outcome.status is Status.SKIPPED:
            return []
        body = outcome.as_log()
        sent = []
        if self.settings.notify_webhook_url and self._webhook(body):
            sent.append("webhook")
        if self.settings.notify_eventgrid_endpoint and self._eventgrid(outcome, body):
            sent.append("event grid")
        return sent

    def _webhook(self, body: dict[str, Any]) -> bool:
        import requests

        # A shape Teams and Slack workflows both accept: a text line plus the structured fields.
        text = f"[aml-autopilot] {body['status']}: {body['action']} {body['workspace']}/{body['target']} — {body['reason']}"
        try:
            response = requests.post(self.settings.notify_webhook_url, json={"text": text, **body},
                                     timeout=min(10, self.settings.arm_timeout_seconds))
            response.raise_for_status()
        except requests.RequestException as exc:
            log.warning("notification webhook failed: %s", type(exc).__name__)
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

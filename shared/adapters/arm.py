"""A small ARM client on azure-mgmt-core's pipeline, for what azure-ai-ml's entities lose or lack.

azure-ai-ml's ``Compute`` entities drop fields the autopilot needs (an instance's ``createdBy``,
a cluster's node state counts), and the SDK has no verb for ``updateIdleShutdownSetting`` nor a
PATCH of scale settings (its ``begin_update`` PUTs the whole entity, which could drop a subnet set
elsewhere). This client speaks the same REST API with ARM's own policies: bearer auth with ARM's
challenge handling, resource-provider registration, bounded retries honouring Retry-After, and
ARM's long-running-operation polling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import (
    ContentDecodePolicy,
    CustomHookPolicy,
    HeadersPolicy,
    NetworkTraceLoggingPolicy,
    RequestIdPolicy,
    UserAgentPolicy,
)
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.policies import ARMAutoResourceProviderRegistrationPolicy, ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
from azure.mgmt.core.polling.arm_polling import ARMPolling

from shared.adapters.azure import USER_AGENT, AzureError, arm_budget, client_options, credential, error_code, pooled_transport, translate
from shared.settings import Settings

ML_API = "2025-12-01"  # the api-version azure-ai-ml 1.35 speaks


class ArmClient:
    """GET/LIST/PATCH/POST on ARM with LRO support; JSON in, JSON out; errors translated."""

    def __init__(self, settings: Settings, cred: Any | None = None) -> None:
        opts = client_options(settings)
        policies = [
            RequestIdPolicy(),
            HeadersPolicy(),
            UserAgentPolicy(USER_AGENT),
            ARMAutoResourceProviderRegistrationPolicy(),
            ContentDecodePolicy(),
            opts["retry_policy"],
            arm_budget(settings),
            CustomHookPolicy(),
            ARMChallengeAuthenticationPolicy(cred or credential(), f"{settings.arm_audience}/.default"),
            ARMHttpLoggingPolicy(),
            NetworkTraceLoggingPolicy(),
        ]
        self._client = PipelineClient(settings.arm_endpoint, policies=policies, transport=pooled_transport(settings))
        self._lro_timeout = settings.arm_timeout_seconds * 6
        origin = urlsplit(settings.arm_endpoint)
        self._origin = (origin.scheme.lower(), origin.netloc.lower())

    def _request(self, method: str, path: str, api_version: str, body: Any, query: Mapping[str, str] | None = None) -> HttpRequest:
        url = self._client.format_url(path)
        params = {"api-version": api_version, **(query or {})}
        if body is None:
            return HttpRequest(method, url, params=params)
        return HttpRequest(method, url, params=params, json=body)

    def send(self, method: str, path: str, body: Any = None, api_version: str = ML_API, what: str = "") -> Any:
        """One synchronous request (for writes ARM answers at once, such as a datastore PUT)."""
        return self._send(method, path, api_version, body, what)

    def _send(self, method: str, path: str, api_version: str, body: Any = None, what: str = "",
              query: Mapping[str, str] | None = None) -> Any:
        request = self._request(method, path, api_version, body, query)
        try:
            response = self._client.send_request(request)
            response.raise_for_status()
        except Exception as exc:
            raise translate(exc, what or f"{method} {path.rsplit('/', 2)[-2:]}") from exc
        return response.json() if response.content else None

    def get(self, path: str, api_version: str = ML_API, what: str = "") -> Any:
        return self._send("GET", path, api_version, what=what)

    def list(self, path: str, api_version: str = ML_API, what: str = "",
             query: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paged ARM list, following nextLink: one page in memory at a time, and a
        caller that stops early reads no further page."""
        page = self._send("GET", path, api_version, what=what, query=query)
        followed: set[str] = set()
        while True:
            # A page that is no list is no "nothing listed": an empty jobs list would free every compute.
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise AzureError(f"{what or path}: ARM answered a page that is no list", transient=True)
            yield from page["value"]
            next_link = page.get("nextLink")
            if not next_link:
                return
            # The bearer token goes with the link: only to the ARM endpoint, and never round in a circle.
            if not isinstance(next_link, str) or tuple(part.lower() for part in urlsplit(next_link)[:2]) != self._origin:
                raise AzureError(f"{what or path}: ARM's nextLink {str(next_link)[:120]!r} leaves {self._origin[1]}", transient=False)
            if next_link in followed:
                raise AzureError(f"{what or path}: ARM's nextLink leads back to a page already read", transient=True)
            followed.add(next_link)
            try:
                response = self._client.send_request(HttpRequest("GET", next_link))
                response.raise_for_status()
            except Exception as exc:
                raise translate(exc, what or f"GET next page of {path}") from exc
            page = response.json()

    def post(self, path: str, body: Any = None, api_version: str = ML_API, what: str = "") -> Any:
        return self._send("POST", path, api_version, body, what)

    def begin(self, method: str, path: str, body: Any = None, api_version: str = ML_API, what: str = "") -> Any:
        """Send a write that may be long-running and wait (bounded) for ARM to report it finished."""
        request = self._request(method, path, api_version, body)
        label = what or f"{method} {path}"
        try:
            initial = self._client.send_request(request, _return_pipeline_response=True)
            initial.http_response.raise_for_status()
            response = initial.http_response
            if response.status_code not in (201, 202):
                body = response.json() if response.content else None
                if not _still_running(response.headers.get("Azure-AsyncOperation"), body):
                    return body
            poller = LROPoller(self._client, initial, lambda r: r.http_response.json() if r.http_response.content else None,
                               _Bounded(self._lro_timeout))
            return poller.result()
        except _StillRunning:
            raise AzureError(f"{label}: still running after {self._lro_timeout}s", transient=True) from None
        except HttpResponseError as exc:
            if exc.status_code in (200, 201, 202):  # the operation itself ended Failed or Canceled, reported on a 200
                raise AzureError(f"{label}: the operation ended without success ({error_code(exc)})", transient=False) from exc
            raise translate(exc, label) from exc
        except Exception as exc:
            raise translate(exc, label) from exc


_SETTLED = frozenset({"succeeded", "failed", "canceled"})


def _still_running(operation: str | None, body: Any) -> bool:
    """A 200 that starts work rather than ends it: ARM names an operation to follow (Azure-AsyncOperation), or
    the resource it returns is still being provisioned (a cluster's PATCH answers 200 while it is Updating)."""
    if operation:
        return True
    props = body.get("properties") if isinstance(body, dict) else None
    state = props.get("provisioningState") if isinstance(props, dict) else None
    return isinstance(state, str) and state.lower() not in _SETTLED


class _StillRunning(Exception):
    """The operation had not ended by the deadline."""


class _Bounded(ARMPolling):
    """ARM's polling, ended at a deadline: the wait gives up then, and so does the polling behind it,
    rather than asking ARM every few seconds until the process ends about a resource stuck mid-change."""

    def __init__(self, seconds: float) -> None:
        super().__init__(timeout=2)
        self._deadline = time.monotonic() + seconds

    def _delay(self) -> None:
        if time.monotonic() >= self._deadline:
            raise _StillRunning
        super()._delay()


"""Azure ML's run history: the runs on one compute that are not finished, or finished lately.

Why this source (README, "Jobs at the cost of what is active"): ARM's jobs list filters by neither
status nor compute, so proving a compute free through it costs every job the workspace ever ran.
Run history, the store behind every AML job, publishes ``Runs_ListByCompute`` (azure-rest-api-specs,
data-plane ``Microsoft.MachineLearningServices.RunHistory/stable/v1.0/run-history.json``):
``GET /history/v1.0/{workspace id}/computes/{compute}/runs`` with an OData ``$filter``, paged by
``continuationToken``/``nextLink``. The filter asks for every run whose status is not one of the
three terminal ones — so a status added later, or one spelled differently, counts as running — or
that ended since the idle window began (where idleness starts). A compute's answer is a handful of
runs whatever the workspace's history, and each run is checked again here: a service that ignored
the filter costs pages, never a wrong verdict.

Rules:
- The host is the workspace's own: ARM gives its ``discoveryUrl``, whose ``history`` service this
  is (as azure-ai-ml and the v1 SDK find it). The discovery document is read without a token; the
  ARM token (run history takes ARM's audience, as azure-ai-ml sends it) goes only to a host under
  AML's API domains or to the ARM endpoint's own origin (the local emulator, a proxy), over HTTPS.
- Anything but an answer — refused, not found, throttled past the retries, unreadable, more than
  ``MAX_PAGES`` pages — raises ``Unavailable``: the caller then reads ARM's complete list instead.
  Run history never makes a compute look freer than ARM would.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    NetworkTraceLoggingPolicy,
    RequestIdPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from shared.adapters.aml import arm_time
from shared.adapters.azure import USER_AGENT, client_options, credential, pooled_transport
from shared.jobs import JobsUnavailable
from shared.model import TERMINAL_JOB_STATES, Job, ResourceId, same_name
from shared.settings import Settings

log = logging.getLogger("autopilot.runhistory")

API_VERSION = "v1.0"
# AML's API domains (public, US Government, China), as AML's custom-DNS page lists them.
API_DOMAINS = (".api.azureml.ms", ".api.ml.azure.us", ".api.ml.azure.cn")
MAX_PAGES = 20  # a compute with more runs than this many pages running or just ended: ARM's list decides
MAX_TEXT = 255

_TERMINAL = tuple(sorted(s.capitalize() for s in TERMINAL_JOB_STATES))
# Not terminal: every status but the three, so one the spec does not list yet counts as running.
ACTIVE = "(" + " and ".join(f"Status ne '{s}'" for s in _TERMINAL) + ")"


class Unavailable(JobsUnavailable):
    """Run history cannot answer for this workspace or compute; the message says why, in one line."""


def runs_filter(ended_since: datetime | None) -> str:
    """The ``$filter``: runs not in a terminal state, or (with ``ended_since``) ended at or after it."""
    if ended_since is None:
        return ACTIVE
    return f"{ACTIVE} or EndTimeUtc ge {ended_since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.000Z')}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_TEXT else None


def run_to_job(body: Any, compute: str) -> Job:
    """One run of ``computes/{compute}/runs`` as a Job on ``compute`` (the service said it is there;
    a run that names another target counts on both). A run that cannot be named is Unavailable: it
    may be the active one, so ARM's list decides, never a guess that it is not."""
    run_id = _text(body.get("runId")) if isinstance(body, dict) else None
    if run_id is None:
        raise Unavailable(f"runs on {compute}: a run without a readable runId ({str(body)[:80]!r})")
    inner = body.get("compute") if isinstance(body.get("compute"), dict) else {}
    target = _text(body.get("target")) or _text(inner.get("target"))
    status = _text(body.get("status")) or "Unknown"  # no status: not terminal
    created = arm_time(body.get("createdUtc"))
    ended = arm_time(body.get("endTimeUtc"))
    if ended is None and status.lower() in TERMINAL_JOB_STATES:
        # When it ended is when the compute's quiet began: a finished run that does not say cannot be placed.
        raise Unavailable(f"runs on {compute}: run {run_id[:80]!r} is {status[:32]} with no readable endTimeUtc")
    creator = body.get("createdBy") if isinstance(body.get("createdBy"), dict) else {}
    also = (target,) if target and not same_name(target, compute) else ()
    return Job(name=run_id, status=status, compute=compute, created_at=created,
               modified_at=ended if status.lower() in TERMINAL_JOB_STATES else None,
               owner=_text(creator.get("userName")), also_on=also)


# A host is DNS labels and nothing else: no userinfo, backslash, percent-escape, semicolon or space that
# one URL parser reads as part of the host and the transport's as the end of it.
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
_AUTHORITY = re.compile(r"https://(?P<host>[^/?#:]+)(?::(?P<port>[0-9]{1,5}))?(?:[/?#]|\Z)", re.IGNORECASE)


def allowed_host(url: Any, arm_endpoint: str) -> bool:
    """Whether the ARM token may go to ``url``: HTTPS to a subdomain of AML's API domains, or to ARM's
    own host and port. The authority must be a plain host name (and port), read the same by every parser."""
    if not isinstance(url, str):
        return False
    match = _AUTHORITY.match(url)
    if match is None:
        return False
    host = match.group("host").lower()
    if not _HOST.fullmatch(host):
        return False
    port = int(match.group("port")) if match.group("port") else 443
    arm = _AUTHORITY.match(arm_endpoint)
    if arm is not None and host == arm.group("host").lower() and port == int(arm.group("port") or 443):
        return True
    return port == 443 and host.endswith(API_DOMAINS)


def _pipeline(settings: Settings, base: str, cred: Any | None) -> PipelineClient:
    opts = client_options(settings)
    policies = [RequestIdPolicy(), HeadersPolicy(), UserAgentPolicy(USER_AGENT), ContentDecodePolicy(), opts["retry_policy"]]
    if cred is not None:
        policies.append(BearerTokenCredentialPolicy(cred, f"{settings.arm_audience}/.default"))
    policies.append(NetworkTraceLoggingPolicy())
    return PipelineClient(base, policies=policies, transport=pooled_transport(settings))


class RunHistory:
    """The run history of one workspace (see the module rules)."""

    def __init__(self, settings: Settings, workspace: ResourceId, discovery_url: Any, cred: Any | None = None) -> None:
        self.settings = settings
        self.workspace = workspace
        self._discovery_url = discovery_url
        self._cred = cred
        self._client: PipelineClient | None = None
        self._origin: tuple[str, str] = ("", "")
        self._lock = threading.Lock()

    def _base(self) -> str:
        """The history service's base URL, from the workspace's discovery document (read once per adapter:
        ``_connect`` keeps the client it makes)."""
        url = self._discovery_url
        if not isinstance(url, str) or not allowed_host(url, self.settings.arm_endpoint):
            raise Unavailable(f"workspace {self.workspace.name} gives no discovery URL under AML's API domains ({str(url)[:120]!r})")
        try:
            response = _pipeline(self.settings, url, None).send_request(HttpRequest("GET", url))
            response.raise_for_status()
            document = response.json()
        except Exception as exc:
            raise Unavailable(f"discovery of {self.workspace.name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        base = document.get("history") if isinstance(document, dict) else None
        if not isinstance(base, str) or not allowed_host(base, self.settings.arm_endpoint):
            raise Unavailable(f"discovery of {self.workspace.name} names no history service under AML's API domains ({str(base)[:120]!r})")
        return base.rstrip("/")

    def _same_origin(self, url: Any) -> bool:
        if not allowed_host(url, self.settings.arm_endpoint):
            return False
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.netloc.lower()) == self._origin

    def _connect(self) -> PipelineClient:
        """The client of the history service, found once (computes are asked in parallel)."""
        with self._lock:
            if self._client is None:
                base = self._base()
                self._origin = (urlsplit(base).scheme.lower(), urlsplit(base).netloc.lower())
                self._client = _pipeline(self.settings, base, self._cred or credential())
            return self._client

    def _pages(self, compute: str, query: dict[str, str]) -> Iterator[list[Any]]:
        client = self._connect()
        path = f"/history/{API_VERSION}{self.workspace.path('computes', compute, 'runs')}"  # every segment quoted
        request = HttpRequest("GET", client.format_url(path), params={"api-version": API_VERSION, **query})
        followed: set[str] = set()
        for _ in range(MAX_PAGES):
            try:
                response = client.send_request(request)
                response.raise_for_status()
                page = response.json()
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                raise Unavailable(f"runs on {compute} in {self.workspace.name}: "
                                  f"{f'HTTP {status}' if status else type(exc).__name__}") from None
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise Unavailable(f"runs on {compute} in {self.workspace.name}: an answer that is no page of runs")
            yield page["value"]
            next_link, token = page.get("nextLink"), page.get("continuationToken")
            if next_link:
                if not self._same_origin(next_link):
                    raise Unavailable(f"runs on {compute}: nextLink {str(next_link)[:120]!r} leaves the history service")
                request = HttpRequest("GET", str(next_link))
            elif token:
                request = HttpRequest("GET", client.format_url(path),
                                      params={"api-version": API_VERSION, **query, "$continuationtoken": str(token)})
            else:
                return
            if request.url in followed:
                raise Unavailable(f"runs on {compute}: the next page leads back to one already read")
            followed.add(request.url)
        raise Unavailable(f"runs on {compute} in {self.workspace.name}: more than {MAX_PAGES} pages running or just ended")

    def runs_on(self, compute: str, ended_since: datetime | None = None) -> list[Job]:
        """The runs on ``compute`` the filter asks for: not finished, and (with ``ended_since``) those finished
        since then — as the service answers; callers hold them to it (``shared.jobs.recent``, ``Job.active``).
        Anything that goes wrong on the way, whatever it raises, is Unavailable: ARM's list decides."""
        try:
            return self._runs_on(compute, ended_since)
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(f"runs on {compute} in {self.workspace.name}: {type(exc).__name__}: "
                              f"{(str(exc).splitlines() or [''])[0][:160]}") from None

    def _runs_on(self, compute: str, ended_since: datetime | None) -> list[Job]:
        # Each run is held to the filter again where the jobs are digested (shared.jobs.of_computes, recent).
        return [run_to_job(body, compute) for page in self._pages(compute, {"$filter": runs_filter(ended_since)}) for body in page]

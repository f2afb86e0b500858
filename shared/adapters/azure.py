"""What every Azure client of the autopilot shares: one credential, bounded retries, timeouts, errors.

azure-core's default retry policy sleeps for whatever ``Retry-After`` says and retries for up to a
week; an unattended function must instead finish inside its trigger's window. So every client is
built with ``BoundedRetryPolicy``: a few retries, short back-off, and a throttle answer asking for
longer than the budget is raised at once as ``Transient`` for the platform to retry later.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy

from shared.errors import AzureError, Conflict, Gone, NotConfigured
from shared.settings import Settings

__all__ = ["AzureError", "BoundedRetryPolicy", "Conflict", "Gone", "NotConfigured", "arm_budget", "client_options", "credential", "translate"]

USER_AGENT = "aml-autopilot/0.1"
MAX_RETRY_AFTER_S = 10


class BoundedRetryPolicy(RetryPolicy):
    """RetryPolicy that refuses to sleep past its budget on a Retry-After."""

    def __init__(self, max_retry_after: float = MAX_RETRY_AFTER_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after

    def get_retry_after(self, response: Any) -> float | None:
        wait = super().get_retry_after(response)
        if wait is not None and wait > self.max_retry_after:
            status = getattr(response.http_response, "status_code", None)
            raise AzureError(
                f"throttled ({status}): Retry-After {wait:.0f}s exceeds the {self.max_retry_after:.0f}s budget; retry later",
                transient=True,
                status=status,
            )
        return wait


def arm_budget(settings: Settings) -> Any:
    """The per-retry policy that keeps the process inside its share of ARM's budget (budget.py)."""
    from shared.adapters.budget import ArmBudget, process_budget

    return ArmBudget(settings.arm_endpoint, process_budget(settings.arm_budget_percent), settings.arm_timeout_seconds * 3)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every azure-core based client accepts: retries and timeouts that fit the triggers.

    Each attempt to the ARM host also waits for a token of the process's ARM budget (other hosts pass).
    """
    return {
        "per_retry_policies": [arm_budget(settings)],
        "retry_policy": BoundedRetryPolicy(
            retry_total=settings.arm_max_retries,
            retry_backoff_factor=0.5,
            retry_backoff_max=4,
            timeout=settings.arm_timeout_seconds * (settings.arm_max_retries + 1),
        ),
        "connection_timeout": min(10, settings.arm_timeout_seconds),
        "read_timeout": settings.arm_timeout_seconds,
        "user_agent": USER_AGENT,
    }


def credential() -> Any:
    """The process's credential: the managed identity only in Azure, `az login` on an operator's machine.

    ``AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential`` (what infra/ sets) means the managed identity
    and nothing else, the user-assigned one named by ``AZURE_CLIENT_ID``: a developer credential
    lying around an instance can never stand in for it. Otherwise azure-identity's default chain.
    One instance per process, so tokens are cached across invocations.
    """
    from shared.settings import identity_choice

    return _credential(*identity_choice())


def forget_credentials() -> None:
    """Drop the process's credentials, as a new worker starts without them (its first call of each
    audience asks for a token): what a measurement of a cold worker needs."""
    _credential.cache_clear()
    managed_identity.cache_clear()


def _quiet_identity_logs() -> None:
    import logging

    # When no credential works, azure.identity logs every credential it tried (a dozen lines at WARNING);
    # `translate` turns the failure into one line that says how to fix it.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


@functools.cache
def _credential(managed_identity_only: bool, client_id: str) -> Any:
    _quiet_identity_logs()
    if managed_identity_only:
        return managed_identity(client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@functools.cache
def managed_identity(client_id: str = "") -> Any:
    """The managed identity with this client id (empty: the system-assigned one), one per process."""
    from azure.identity import ManagedIdentityCredential

    _quiet_identity_logs()
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def translate(exc: Exception, what: str) -> AzureError:
    """Map an SDK exception onto the autopilot's error kinds, keeping a one-line message without secrets."""
    if isinstance(exc, AzureError):
        if str(exc).startswith(what):
            return exc
        # Raised inside the pipeline (the retry budget): name the call it interrupted.
        return type(exc)(f"{what}: {exc}") if type(exc) in (Gone, Conflict) else AzureError(
            f"{what}: {exc}", transient=exc.transient, status=exc.status)
    if isinstance(exc, ResourceNotFoundError):
        return Gone(f"{what}: not found")
    if isinstance(exc, ClientAuthenticationError):
        return _not_configured(exc, what)
    if isinstance(exc, ResourceExistsError):
        return Conflict(f"{what}: conflict ({error_code(exc)})")
    if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError):
        return AzureError(f"{what}: {type(exc).__name__}: {_first_line(exc)}", transient=True)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        if status == 404:
            return Gone(f"{what}: not found")
        if status == 409:
            return Conflict(f"{what}: conflict ({error_code(exc)})")
        if status == 403:
            return NotConfigured(f"{what}: HTTP 403 {error_code(exc)}: the autopilot's identity lacks a role it needs "
                                 "(see infra/README.md for the roles)", status=403)
        transient = status is None or status == 429 or status >= 500
        return AzureError(f"{what}: HTTP {status} {error_code(exc)}", transient=transient, status=status)
    return AzureError(f"{what}: {type(exc).__name__}: {_first_line(exc)}", transient=False)


def _not_configured(exc: ClientAuthenticationError, what: str) -> NotConfigured:
    """No credential at all, or one Azure refused: one line that says how to fix it, not the credential chain's dump."""
    status = exc.status_code
    # The credential chain's own failure says "failed to retrieve a token"; anything else (a storage
    # key that cannot sign, say) is reported as what it is.
    chain = type(exc).__name__ == "CredentialUnavailableError" or "failed to retrieve a token" in str(exc)
    if status is None and not chain:
        return NotConfigured(f"{what}: authentication failed: {_first_line(exc)}")
    if status is None:
        return NotConfigured(f"{what}: no Azure credential available: run `az login` (or set AZURE_CLIENT_ID and friends) "
                             "where the command runs, or give the Function App a managed identity")
    if status == 403:
        return NotConfigured(f"{what}: HTTP 403 {error_code(exc)}: the autopilot's identity lacks a role it needs "
                             "(see infra/README.md for the roles)", status=403)
    return NotConfigured(f"{what}: HTTP {status} {error_code(exc)}: the credential was refused; sign in again or check the "
                         "managed identity", status=status)


def error_code(exc: HttpResponseError) -> str:
    """The error's code and message as ARM words them (one line), or the HTTP reason."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error else None
    message = getattr(error, "message", None) if error else None
    text = " - ".join(str(x) for x in (code, message) if x) or (exc.reason or "")
    return _first_line(text)


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()
    return text[0][:300] if text else ""


POOL = 32  # connections kept per host: a worker's parallel reads (8 per workspace) times the queue's concurrent items


def pooled_transport(settings: Settings) -> Any:
    """A requests transport for the app's clients, with `pooled_session`'s pool and the settings' timeouts."""
    from azure.core.pipeline.transport import RequestsTransport

    opts = client_options(settings)
    return RequestsTransport(session=pooled_session(POOL), session_owner=True, connection_timeout=opts["connection_timeout"],
                             read_timeout=opts["read_timeout"])


def pooled_session(size: int) -> Any:
    """A requests session whose pool keeps `size` connections per host: as many as are used at once. With
    requests' default of 10, each further concurrent request opens a connection (a TLS handshake) and drops
    it after, with a warning in the log."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


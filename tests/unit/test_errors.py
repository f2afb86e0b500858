"""How SDK failures become the autopilot's error kinds: one line, and transient only when a retry can help."""

from __future__ import annotations

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.identity import CredentialUnavailableError

from shared.adapters.azure import translate
from shared.errors import AzureError, NotConfigured

CHAIN = ("DefaultAzureCredential failed to retrieve a token from the included credentials.\nAttempted credentials:\n"
         "\tEnvironmentCredential: EnvironmentCredential authentication unavailable.\n" * 5)


def test_no_credential_at_all_is_a_permanent_configuration_error_in_one_line():
    error = translate(ClientAuthenticationError(CHAIN), "list computes of ws")
    assert isinstance(error, NotConfigured) and not error.transient
    assert str(error) == ("list computes of ws: no Azure credential available: run `az login` (or set AZURE_CLIENT_ID and "
                          "friends) where the command runs, or give the Function App a managed identity")


def test_an_unavailable_credential_is_the_same_one_line():
    error = translate(CredentialUnavailableError(CHAIN), "get compute ci")
    assert isinstance(error, NotConfigured) and "\n" not in str(error) and "HTTP None" not in str(error)


def test_a_refused_identity_names_the_missing_role_and_is_not_retried():
    response_error = HttpResponseError(message="AuthorizationFailed")
    response_error.status_code = 403
    error = translate(response_error, "stop ci")
    assert isinstance(error, NotConfigured) and not error.transient and "lacks a role" in str(error)


def test_throttling_and_network_errors_stay_transient():
    throttled = HttpResponseError(message="Too Many Requests")
    throttled.status_code = 429
    assert translate(throttled, "x").transient
    assert translate(ServiceRequestError("connection refused"), "x").transient
    assert isinstance(translate(ServiceRequestError("x"), "x"), AzureError)


def test_an_authentication_failure_that_is_not_the_credential_chain_is_named_as_such():
    error = translate(ClientAuthenticationError("Incorrect padding in the account key"), "ledger: read the history")
    assert isinstance(error, NotConfigured)
    assert str(error) == "ledger: read the history: authentication failed: Incorrect padding in the account key"

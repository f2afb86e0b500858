"""In Azure the app authenticates with its managed identity only; elsewhere with azure-identity's default chain."""

from __future__ import annotations

import pytest

from shared.adapters.azure import credential
from shared.settings import SettingsError, identity_choice

CLIENT_ID = "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (False, "")),
    ({"AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential"}, (True, "")),
    ({"AZURE_TOKEN_CREDENTIALS": " managedidentitycredential ", "AZURE_CLIENT_ID": CLIENT_ID}, (True, CLIENT_ID)),
    ({"AZURE_TOKEN_CREDENTIALS": "dev"}, (False, "")),
])
def test_azure_token_credentials_managedidentitycredential_means_the_managed_identity_only(env, expected):
    assert identity_choice(env) == expected


@pytest.mark.parametrize("value", ["ManagedIdentity", "managed-identity-credential", "dev;prod", "InteractiveBrowserCredential", "x" * 300])
def test_an_azure_token_credentials_value_azure_identity_does_not_know_is_named_at_start(value):
    with pytest.raises(SettingsError, match="AZURE_TOKEN_CREDENTIALS: expected ManagedIdentityCredential") as err:
        identity_choice({"AZURE_TOKEN_CREDENTIALS": value})
    assert len(str(err.value)) < 200 and "\n" not in str(err.value)


def test_every_azure_token_credentials_value_accepted_here_gives_the_apps_chain_a_credential(monkeypatch):
    from azure.identity import DefaultAzureCredential

    from shared.settings import TOKEN_CREDENTIALS

    for value in sorted(TOKEN_CREDENTIALS):
        monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", value)
        DefaultAzureCredential(exclude_interactive_browser_credential=True)  # what credential() builds; raises if none
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentity")
    with pytest.raises(ValueError, match="AZURE_TOKEN_CREDENTIALS"):
        DefaultAzureCredential(exclude_interactive_browser_credential=True)


def test_a_client_id_that_is_no_guid_is_named():
    with pytest.raises(SettingsError, match="AZURE_CLIENT_ID: expected a client id"):
        identity_choice({"AZURE_CLIENT_ID": "my-identity"})


def test_the_process_credential_is_the_user_assigned_identity_when_the_settings_say_so(monkeypatch):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    chosen = credential()
    assert isinstance(chosen, ManagedIdentityCredential) and not isinstance(chosen, DefaultAzureCredential)
    assert credential() is chosen, "one credential per process: its token cache lives across invocations"
    monkeypatch.delenv("AZURE_TOKEN_CREDENTIALS")
    monkeypatch.delenv("AZURE_CLIENT_ID")
    assert isinstance(credential(), DefaultAzureCredential)

"""The ledger reaches the app's storage with the managed identity when no connection string is set.

Azurite serves HTTPS with the emulator's certificate and ``--oauth basic``: it takes bearer tokens,
checking issuer, audience and expiry (not the signature). The tokens come from the emulator's
managed-identity endpoint through azure-identity's ``ManagedIdentityCredential``, as in Azure.
One setting decides: ``AzureWebJobsStorage`` (a connection string) when set, else the
``AzureWebJobsStorage__*`` identity settings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import azurite
from local.emulator.client import ARM_SCOPE, EmulatorClient
from shared.adapters.ledger import Ledger, open_ledger
from shared.errors import AzureError
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "0f2c5d7e-1a3b-4c5d-8e9f-a0b1c2d3e4f5"


@pytest.fixture(scope="module")
def storage(emulator: EmulatorClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite.AzuriteHandle]:
    tls = Path(emulator.ca).parent
    handle = azurite.start(tmp_path_factory.mktemp("azurite-oauth"), tls=(tls / "server.pem", tls / "server.key"))
    try:
        yield handle
    finally:
        handle.stop()


def _settings(**storage: str) -> Settings:
    env = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    return Settings.from_env({**env, "AzureWebJobsStorage": "", **storage})


def _round_trip(ledger: Ledger) -> None:
    now, key = datetime.now(UTC), f"identity-path/{uuid.uuid4()}"
    claim = ledger.claim(key, now, Action="stop_instance")
    assert not isinstance(claim, str), claim
    assert ledger.settle(claim, "done", "stopped")
    assert isinstance(ledger.claim(key, now), str), "the claim holds: a second taker is refused"
    assert ledger.history(now - timedelta(hours=1)) is not None


def test_the_ledger_uses_the_managed_identity_when_only_the_identity_settings_are_set(storage, emulator):
    settings = _settings(AzureWebJobsStorage__accountName="devstoreaccount1",
                         AzureWebJobsStorage__tableServiceUri=storage.table_endpoint,
                         AzureWebJobsStorage__credential="managedidentity",
                         AzureWebJobsStorage__clientId=CLIENT_ID)
    assert settings.storage_connection == "" and settings.storage_table_endpoint == storage.table_endpoint
    emulator.reset({})
    _round_trip(open_ledger(settings))
    tokens = [c for c in emulator.journal(service="identity") if c["path"] == "/msi/token"]
    assert tokens, "no token was asked of the managed-identity endpoint"
    assert {c["query"].get("resource") for c in tokens} == {"https://storage.azure.com"}
    assert {c["query"].get("client_id") for c in tokens} == {CLIENT_ID}, "the user-assigned identity, by its client id"


def test_the_connection_string_decides_when_it_is_set(storage, emulator):
    settings = _settings(AzureWebJobsStorage=storage.connection_string,
                         AzureWebJobsStorage__accountName="devstoreaccount1",
                         AzureWebJobsStorage__credential="managedidentity")
    assert settings.storage_table_endpoint == "" and settings.storage_client_id is None
    emulator.reset({})
    ledger = open_ledger(settings)
    ledger.claim("connection-string/test", datetime.now(UTC))
    assert not [c for c in emulator.journal(service="identity") if "storage" in str(c["query"])], "no token: the key signs"


class _TokenFor:
    """A credential holding one token of another audience (azure-core's TokenCredential protocol)."""

    def __init__(self, token: Any) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        del scopes, kwargs
        return self.token


def test_without_credential_managedidentity_the_ledger_uses_the_process_credential(storage, emulator, monkeypatch):
    """An operator's `autopilot history` against the deployed, keyless storage: their own sign-in."""
    monkeypatch.delenv("AZURE_TOKEN_CREDENTIALS", raising=False)
    settings = _settings(AzureWebJobsStorage__tableServiceUri=storage.table_endpoint)
    assert settings.storage_client_id is None
    emulator.reset({})
    _round_trip(open_ledger(settings))
    tokens = [c for c in emulator.journal(service="identity") if c["query"].get("resource") == "https://storage.azure.com"]
    assert tokens and all("client_id" not in c["query"] for c in tokens), "the default chain, not a named identity"


def test_storage_refuses_a_token_for_another_audience(storage, emulator):
    from azure.identity import ManagedIdentityCredential

    arm_token = ManagedIdentityCredential().get_token(ARM_SCOPE)
    with pytest.raises(AzureError, match="ledger: create the table"):
        Ledger("", "refusedledger", endpoint=storage.table_endpoint, credential=_TokenFor(arm_token))


@pytest.mark.parametrize(("storage_settings", "named"), [
    ({}, "AzureWebJobsStorage: required"),
    ({"AzureWebJobsStorage__accountName": "devstoreaccount1", "AzureWebJobsStorage__credential": "connectionstring"},
     "AzureWebJobsStorage__credential: expected managedidentity or nothing"),
    ({"AzureWebJobsStorage__accountName": "Not_An_Account", "AzureWebJobsStorage__credential": "managedidentity"},
     "AzureWebJobsStorage__accountName: expected 3 to 24"),
    ({"AzureWebJobsStorage__accountName": "st1", "AzureWebJobsStorage__credential": "managedidentity",
      "AzureWebJobsStorage__clientId": "not-a-guid"}, "AzureWebJobsStorage__clientId: expected a client id"),
    ({"AzureWebJobsStorage__tableServiceUri": "http://127.0.0.1:1/devstoreaccount1", "AzureWebJobsStorage__credential": "managedidentity"},
     "AzureWebJobsStorage__tableServiceUri: expected an https:// URL"),
])
def test_a_bad_storage_setting_is_named(storage_settings, named):
    from shared.settings import SettingsError

    with pytest.raises(SettingsError, match=named):
        _settings(**storage_settings)


def test_the_operators_commands_read_the_ledger_without_ever_creating_its_table(storage, emulator, capsys):
    """Storage Table Data Reader, the role an operator gets for `autopilot history`, may not send Create Table."""
    from azure.data.tables import TableServiceClient

    from shared.cli import _ledger
    from shared.errors import Gone

    table = f"readonly{uuid.uuid4().hex[:12]}"
    settings = _settings(AzureWebJobsStorage__tableServiceUri=storage.table_endpoint, AzureWebJobsStorage__credential="managedidentity",
                         AzureWebJobsStorage__clientId=CLIENT_ID, LEDGER_TABLE=table)
    with pytest.raises(Gone, match="ledger: read the history: not found"):
        _ledger(settings).history(datetime.now(UTC) - timedelta(hours=1))
    names = {t.name for t in TableServiceClient.from_connection_string(storage.connection_string).list_tables()}
    assert table not in names, "a reader's command created the table"
    open_ledger(settings)  # the app's own open creates it
    names = {t.name for t in TableServiceClient.from_connection_string(storage.connection_string).list_tables()}
    assert table in names

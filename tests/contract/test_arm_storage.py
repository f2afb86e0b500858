"""Microsoft.Storage through the real azure-mgmt-storage, and key validity as datastores see it."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulator.client import DEMO_RG, DEMO_SUBSCRIPTION, EmulatorClient

pytestmark = pytest.mark.usefixtures("demo")

ACCOUNT_PATH = f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/{DEMO_RG}/providers/Microsoft.Storage/storageAccounts/stmldemo"


def _account(emulator: EmulatorClient) -> dict[str, Any]:
    return next(a for a in emulator.state()["storage"]["accounts"] if a["name"] == "stmldemo")


def _key_valid(emulator: EmulatorClient) -> dict[str, bool | None]:
    return {d["name"]: d.get("keyValid") for d in emulator.ml_workspace()["datastores"]}


def test_list_keys_returns_both_keys_as_keys_property(emulator: EmulatorClient, credential: Any) -> None:
    keys = emulator.storage_client(credential).storage_accounts.list_keys(DEMO_RG, "stmldemo").keys_property
    assert [k.key_name for k in keys] == ["key1", "key2"]
    assert {k.key_name: k.value for k in keys} == _account(emulator)["keys"]
    assert all(len(k.value) == 88 for k in keys)  # base64 of 64 bytes, like Azure's
    (call,) = emulator.journal(service="arm")
    assert (call["method"], call["path"], call["status"]) == ("POST", f"{ACCOUNT_PATH}/listKeys", 200)
    assert call["api_version"]


def test_get_properties_describes_the_account(credential: Any, emulator: EmulatorClient) -> None:
    account = emulator.storage_client(credential).storage_accounts.get_properties(DEMO_RG, "stmldemo")
    assert account.name == "stmldemo"
    assert account.id == ACCOUNT_PATH
    assert account.primary_endpoints.blob == "https://stmldemo.blob.core.windows.net/"
    assert set(account.key_creation_time.as_dict()) == {"key1", "key2"}


def test_missing_account_is_not_found(credential: Any, emulator: EmulatorClient) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        emulator.storage_client(credential).storage_accounts.list_keys(DEMO_RG, "stnothere")


def test_regenerating_a_key_invalidates_the_old_value_until_datastores_are_updated(
    emulator: EmulatorClient, credential: Any, ml: Any
) -> None:
    from azure.ai.ml.entities import AccountKeyConfiguration, AzureBlobDatastore
    from azure.mgmt.storage.models import StorageAccountRegenerateKeyParameters

    storage = emulator.storage_client(credential)
    before = _account(emulator)["keys"]
    assert _key_valid(emulator) == {"workspaceblobstore": True, "trainingdata": True, "curated": None, "lake": None}

    regenerated = storage.storage_accounts.regenerate_key(DEMO_RG, "stmldemo", StorageAccountRegenerateKeyParameters(key_name="key1"))
    new_keys = {k.key_name: k.value for k in regenerated.keys_property}
    assert new_keys["key1"] != before["key1"]
    assert new_keys["key2"] == before["key2"]
    listed = {k.value for k in storage.storage_accounts.list_keys(DEMO_RG, "stmldemo").keys_property}
    assert before["key1"] not in listed
    account = _account(emulator)
    assert account["regenerations"] == {"key1": 1, "key2": 0}
    assert account["regenerationCount"] == 1
    assert _key_valid(emulator) == {"workspaceblobstore": False, "trainingdata": False, "curated": None, "lake": None}
    (regen,) = emulator.journal(method="POST", path="/regenerateKey")
    assert regen["body"] == {"keyName": "key1"}

    ml.datastores.create_or_update(AzureBlobDatastore(
        name="trainingdata", account_name="stmldemo", container_name="training-data",
        credentials=AccountKeyConfiguration(account_key=new_keys["key1"]),
    ))
    assert _key_valid(emulator) == {"workspaceblobstore": False, "trainingdata": True, "curated": None, "lake": None}
    assert ml.datastores.get("trainingdata", include_secrets=True).credentials.account_key == new_keys["key1"]
    (put,) = emulator.journal(method="PUT", path="/datastores/trainingdata")
    # azure-ai-ml always asks AML to skip validation, and the journal keeps the body as sent.
    assert put["query"]["skipValidation"] == "true"
    assert put["body"]["properties"]["credentials"]["secrets"]["key"] == new_keys["key1"]


def test_regenerate_refuses_an_unknown_key_name(emulator: EmulatorClient, credential: Any) -> None:
    answer = emulator.arm(credential, "POST", f"{ACCOUNT_PATH}/regenerateKey", {"keyName": "key3"}, api_version="2025-01-01")
    assert answer.status_code == 400
    assert _account(emulator)["regenerationCount"] == 0

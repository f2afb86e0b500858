"""Contract: azure-keyvault-secrets' SecretClient against the emulator's Key Vault data plane.

The client is built exactly as the app builds it for a loopback vault:
``SecretClient(f"{emulator.url}/keyvault/{vault}", credential, verify_challenge_resource=False)``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import HttpChallengeCache

SUB = "00000000-0000-0000-0000-000000000001"
VAULT = "kv-ml-demo"
ACCOUNT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/Microsoft.Storage/storageAccounts/stmldemo"
KEY1 = "a2V5MS12YWx1ZS1mb3ItdGhlLWNvbnRyYWN0LXRlc3Rz"
MANAGED_TAGS = {"CredentialId": "key1", "ProviderAddress": ACCOUNT_ID, "ValidityPeriodDays": "60"}

SCENARIO: dict[str, Any] = {
    "subscriptionId": SUB,
    "storageAccounts": [{"resourceGroup": "rg-ml-demo", "name": "stmldemo", "keys": {"key1": KEY1}}],
    "vaults": [
        {
            "name": VAULT,
            "resourceGroup": "rg-ml-demo",
            "secrets": [
                {
                    "name": "stmldemo-key",
                    "value": {"storageKey": {"account": "stmldemo", "key": "key1"}},
                    "contentType": "text/plain",
                    "tags": MANAGED_TAGS,
                    "exp": "now+20d",
                    "nbf": "now-40d",
                    "created": "now-40d",
                },
                {"name": "app-insights-conn", "value": "InstrumentationKey=00000000-0000-0000-0000-00000000abcd"},
            ],
        }
    ],
}


@pytest.fixture(autouse=True)
def _seeded(emulator: Any) -> None:
    emulator.reset(SCENARIO)
    # The SDK caches Key Vault's challenge per host for the whole process; forgetting it makes
    # every test start from the first-contact flow instead of depending on test order.
    HttpChallengeCache.clear()


@pytest.fixture
def client(emulator: Any, credential: Any) -> SecretClient:
    return SecretClient(
        f"{emulator.url}/keyvault/{VAULT}", credential, verify_challenge_resource=False, connection_verify=emulator.ca
    )


def _kv_calls(emulator: Any) -> list[dict[str, Any]]:
    return [e for e in emulator.journal() if e["service"] == "keyvault"]


def _near(when: datetime | None, expected: datetime) -> bool:
    return when is not None and abs((when - expected).total_seconds()) < 120


def test_first_request_is_challenged_without_body_then_sent_with_a_vault_token(client: SecretClient, emulator: Any) -> None:
    created = client.set_secret("fresh", "s3cr3t-first-contact")

    calls = _kv_calls(emulator)
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("PUT", f"/keyvault/{VAULT}/secrets/fresh", 401),
        ("PUT", f"/keyvault/{VAULT}/secrets/fresh", 200),
    ]
    assert calls[0]["body"] is None, "the challenge probe must carry no body"
    assert calls[1]["body"]["value"] != "s3cr3t-first-contact", "a secret value must never be journaled"
    assert created.value == "s3cr3t-first-contact"


def test_later_requests_reuse_the_challenge_and_token(client: SecretClient, emulator: Any) -> None:
    client.get_secret("app-insights-conn")
    client.get_secret("app-insights-conn")

    assert [c["status"] for c in _kv_calls(emulator)] == [401, 200, 200]


def test_a_client_verifying_the_challenge_resource_refuses_a_loopback_vault(emulator: Any, credential: Any) -> None:
    strict = SecretClient(f"{emulator.url}/keyvault/{VAULT}", credential, connection_verify=emulator.ca)

    with pytest.raises(ValueError, match="does not match the requested domain"):
        strict.get_secret("app-insights-conn")
    assert [c["status"] for c in _kv_calls(emulator)] == [401]


def test_seeded_secret_holds_the_storage_key_with_its_rotation_tags(client: SecretClient, emulator: Any) -> None:
    secret = client.get_secret("stmldemo-key")

    storage = {a["name"]: a for a in emulator.state()["storage"]["accounts"]}
    assert secret.value == storage["stmldemo"]["keys"]["key1"] == KEY1
    assert secret.properties.tags == MANAGED_TAGS
    assert secret.properties.content_type == "text/plain"
    now = datetime.now(UTC)
    assert _near(secret.properties.expires_on, now + timedelta(days=20))
    assert _near(secret.properties.not_before, now - timedelta(days=40))
    assert _near(secret.properties.created_on, now - timedelta(days=40))
    assert secret.properties.recovery_level == "Recoverable+Purgeable"
    # Ids keep Azure's form so the SDK parses vault, name and version from them.
    assert re.fullmatch(rf"https://{VAULT}\.vault\.azure\.net/secrets/stmldemo-key/[0-9a-f]{{32}}", secret.id)
    assert secret.properties.vault_url == f"https://{VAULT}.vault.azure.net"


def test_set_makes_a_new_current_version_and_old_versions_stay_readable(client: SecretClient, emulator: Any) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=60)
    not_before = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    old = client.get_secret("stmldemo-key")

    new = client.set_secret(
        "stmldemo-key",
        "rotated-key2-value",
        tags={**MANAGED_TAGS, "CredentialId": "key2"},
        content_type="text/plain",
        expires_on=expires,
        not_before=not_before,
    )

    assert re.fullmatch(r"[0-9a-f]{32}", new.properties.version or "")
    assert new.properties.version != old.properties.version
    latest = client.get_secret("stmldemo-key")
    assert (latest.value, latest.properties.version) == ("rotated-key2-value", new.properties.version)
    assert latest.properties.tags == {**MANAGED_TAGS, "CredentialId": "key2"}
    assert (latest.properties.expires_on, latest.properties.not_before) == (expires, not_before)
    assert latest.properties.created_on == latest.properties.updated_on
    assert _near(latest.properties.created_on, datetime.now(UTC))
    assert client.get_secret("stmldemo-key", old.properties.version).value == KEY1
    body = next(c["body"] for c in _kv_calls(emulator) if c["method"] == "PUT" and c["status"] == 200)
    assert body["attributes"] == {"exp": int(expires.timestamp()), "nbf": int(not_before.timestamp())}
    assert body["tags"]["CredentialId"] == "key2"


def test_versions_are_listed_page_by_page_without_values(client: SecretClient, emulator: Any) -> None:
    for n in range(3):
        client.set_secret("paged", f"value-{n}")

    pages = [list(page) for page in client.list_properties_of_secret_versions("paged", max_page_size=2).by_page()]

    assert [len(p) for p in pages] == [2, 1]
    assert len({p.version for page in pages for p in page}) == 3
    lists = [c for c in _kv_calls(emulator) if c["path"].endswith("/secrets/paged/versions")]
    assert [c["query"].get("maxresults") for c in lists] == ["2", "2"]
    assert "$skiptoken" in lists[1]["query"] and lists[1]["status"] == 200


def test_secrets_are_listed_by_name_across_pages(client: SecretClient) -> None:
    names = [p.name for p in client.list_properties_of_secrets(max_page_size=1)]

    assert sorted(names) == ["app-insights-conn", "stmldemo-key"]


def test_update_properties_replaces_the_tag_set_and_keeps_the_value(client: SecretClient, emulator: Any) -> None:
    current = client.get_secret("stmldemo-key")
    new_expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)

    updated = client.update_secret_properties(
        "stmldemo-key", current.properties.version, tags={"Owner": "ml-platform"}, expires_on=new_expiry
    )

    assert updated.tags == {"Owner": "ml-platform"}, "Key Vault replaces tags, it does not merge them"
    assert updated.expires_on == new_expiry
    assert updated.not_before == current.properties.not_before
    assert updated.updated_on is not None and current.properties.updated_on is not None
    assert updated.updated_on > current.properties.updated_on
    again = client.get_secret("stmldemo-key")
    assert (again.value, again.properties.version, again.properties.tags) == (KEY1, current.properties.version, {"Owner": "ml-platform"})
    patch = next(c for c in _kv_calls(emulator) if c["method"] == "PATCH" and c["status"] == 200)
    assert patch["path"] == f"/keyvault/{VAULT}/secrets/stmldemo-key/{current.properties.version}"
    assert "value" not in patch["body"]


def test_a_missing_secret_is_resource_not_found_with_key_vault_error_code(client: SecretClient, emulator: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        client.get_secret("does-not-exist")

    assert caught.value.status_code == 404
    assert caught.value.error is not None and caught.value.error.code == "SecretNotFound"
    assert [c["status"] for c in _kv_calls(emulator)] == [401, 404]


def test_an_unknown_api_version_is_a_bad_parameter(client: SecretClient) -> None:
    # Through the client's own pipeline, so the challenge and token flow are the SDK's.
    response = client.send_request(HttpRequest("GET", "/secrets/app-insights-conn?api-version=1.0"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadParameter"


def test_secret_values_are_never_in_the_journal(client: SecretClient, emulator: Any) -> None:
    client.set_secret("journaled", "value-that-must-not-leak")
    client.get_secret("journaled")
    client.update_secret_properties("journaled", tags={"a": "b"})

    calls = _kv_calls(emulator)
    assert {c["method"] for c in calls} == {"PUT", "GET", "PATCH"}
    assert "value-that-must-not-leak" not in repr(calls)
    assert KEY1 not in repr(emulator.journal())


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_event_helper_describes_the_current_version_like_key_vault(client: SecretClient, emulator: Any, schema: str) -> None:
    current = client.get_secret("stmldemo-key")

    answer = requests.get(
        f"{emulator.url}/keyvault/_events/{VAULT}",
        params={"secret": "stmldemo-key", "type": "SecretNearExpiry", "schema": schema},
        verify=emulator.ca,
        timeout=10,
    )

    assert answer.status_code == 200
    event = answer.json()[0] if schema == "eventgrid" else answer.json()
    vault_id = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/Microsoft.KeyVault/vaults/{VAULT}"
    assert event["subject"] == "stmldemo-key"
    assert event["data"] == {
        "Id": current.id,
        "VaultName": VAULT,
        "ObjectType": "Secret",
        "ObjectName": "stmldemo-key",
        "Version": current.properties.version,
        "NBF": int(current.properties.not_before.timestamp()) if current.properties.not_before else None,
        "EXP": int(current.properties.expires_on.timestamp()) if current.properties.expires_on else None,
    }
    if schema == "eventgrid":
        assert (event["topic"], event["eventType"], event["dataVersion"], event["metadataVersion"]) == (
            vault_id,
            "Microsoft.KeyVault.SecretNearExpiry",
            "1",
            "1",
        )
    else:
        assert (event["source"], event["type"], event["specversion"]) == (vault_id, "Microsoft.KeyVault.SecretNearExpiry", "1.0")


def test_a_wrong_audience_token_is_refused_with_a_fresh_challenge(emulator: Any, credential: Any) -> None:
    token = credential.get_token("https://management.azure.com/.default").token

    answer = requests.get(
        f"{emulator.url}/keyvault/{VAULT}/secrets/app-insights-conn",
        params={"api-version": "7.6"},
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator.ca,
        timeout=10,
    )

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer authorization="https://login.microsoftonline.com/')
    assert 'resource="https://vault.azure.net"' in answer.headers["WWW-Authenticate"]
    assert "value" not in answer.json()


def test_sdk_errors_keep_the_key_vault_error_shape(client: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        client.set_secret("bad_name", "x")

    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "BadParameter"


def test_the_demo_vault_holds_the_demo_storage_key(emulator: Any, demo: dict[str, Any], credential: Any) -> None:
    del demo  # the fixture seeded local/emulator/scenarios/demo.json
    state = emulator.state()
    storage = {a["name"]: a for a in state["storage"]["accounts"]}
    demo_client = SecretClient(
        f"{emulator.url}/keyvault/{VAULT}", credential, verify_challenge_resource=False, connection_verify=emulator.ca
    )

    secret = demo_client.get_secret("stmldemo-key")

    assert state["keyvault"]["unresolvedStorageKeys"] == []
    assert secret.value == storage["stmldemo"]["keys"]["key1"]
    assert secret.properties.tags is not None and secret.properties.tags["CredentialId"] == "key1"
    assert "CredentialId" not in (demo_client.get_secret("app-insights-conn").properties.tags or {})

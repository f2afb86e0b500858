"""Settings fail fast, naming the setting, and default to the safe choice."""

from __future__ import annotations

import pytest

from shared.model import Mode
from shared.settings import Settings, SettingsError, startup_line

WS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
BASE = {"ALLOWED_WORKSPACES": WS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_the_default_mode_is_observe():
    assert Settings.from_env(BASE).mode is Mode.OBSERVE


def test_several_workspaces_are_read_and_matched_case_insensitively():
    other = WS.replace("/ws", "/ws2")
    s = Settings.from_env({**BASE, "ALLOWED_WORKSPACES": f" {WS} , {other} "})
    assert [w.name for w in s.workspaces] == ["ws", "ws2"]
    assert s.workspace(WS.upper()).name == "ws"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_WORKSPACES": ""}, "ALLOWED_WORKSPACES: required"),
        ({"ALLOWED_WORKSPACES": "mlw-demo"}, "ALLOWED_WORKSPACES: 'mlw-demo' is not an ARM resource id"),
        ({"ALLOWED_WORKSPACES": WS.replace("MachineLearningServices/workspaces", "Storage/storageAccounts")},
         "is not a Microsoft.MachineLearningServices/workspaces resource id"),
        ({"AUTOPILOT_MODE": "enforced"}, "AUTOPILOT_MODE: expected one of observe, enforce; got 'enforced'"),
        ({"IDLE_THRESHOLD_MINUTES": "two hours"}, "IDLE_THRESHOLD_MINUTES: expected a whole number"),
        ({"IDLE_SHUTDOWN_MINUTES": "5"}, "IDLE_SHUTDOWN_MINUTES: AML accepts 15 to 4320"),
        ({"NO_METRICS_MEANS": "maybe"}, "NO_METRICS_MEANS: expected one of busy, idle"),
        ({"ARM_ENDPOINT": "http://management.azure.com"}, "ARM_ENDPOINT: expected an https:// URL"),
        ({"KEY_VAULT_URL_TEMPLATE": "https://vault.example"}, "KEY_VAULT_URL_TEMPLATE: must contain {name}"),
        ({"EXEMPT_NAME_PATTERN": "("}, "EXEMPT_NAME_PATTERN: not a valid regular expression"),
        ({"NOTIFY_EVENTGRID_ENDPOINT": "https://t.westeurope-1.eventgrid.azure.net/api/events"}, "NOTIFY_EVENTGRID_KEY: required"),
        ({"AzureWebJobsStorage": ""}, "AzureWebJobsStorage: required"),
        # What azurerm's Flex Consumption resource writes next to the identity settings.
        ({"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=stx;AccountKey=;EndpointSuffix=core.windows.net",
          "AzureWebJobsStorage__accountName": "stx", "AzureWebJobsStorage__credential": "managedidentity"},
         "AzureWebJobsStorage: the connection string has an empty AccountKey"),
        ({"AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "stx",
          "AzureWebJobsStorage__clientId": "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70"},
         "AzureWebJobsStorage__clientId: set AzureWebJobsStorage__credential=managedidentity too"),
        ({"AZURE_TOKEN_CREDENTIALS": "ManagedIdentity\nCredential"}, "AZURE_TOKEN_CREDENTIALS: expected ManagedIdentityCredential"),
        ({"AZURE_TOKEN_CREDENTIALS": "x" * 5000}, "AZURE_TOKEN_CREDENTIALS: expected ManagedIdentityCredential"),
    ],
)
def test_a_bad_setting_fails_with_its_name(env, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, **env})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_rejected_storage_connection_string_is_never_echoed():
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, "AzureWebJobsStorage": "AccountName=stx;AccountKey= ;SharedAccessSignature=sv=s3cr3t"})
    assert "s3cr3t" not in str(err.value) and "stx" not in str(err.value)


def test_an_empty_connection_string_beside_the_identity_settings_means_the_identity():
    s = Settings.from_env({**BASE, "AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "stx",
                           "AzureWebJobsStorage__credential": "managedidentity",
                           "AzureWebJobsStorage__clientId": "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70"})
    assert (s.storage_connection, s.storage_table_endpoint, s.storage_client_id) == (
        "", "https://stx.table.core.windows.net", "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70")


def test_the_notify_key_never_shows_in_repr():
    s = Settings.from_env({**BASE, "NOTIFY_EVENTGRID_ENDPOINT": "https://t/api/events", "NOTIFY_EVENTGRID_KEY": "s3cr3t-key"})
    assert "s3cr3t-key" not in repr(s)


def test_the_start_up_line_names_the_first_bad_setting_and_never_raises():
    from shared.settings import startup_line

    ok, line = startup_line({"AUTOPILOT_MODE": "enforced", "ALLOWED_WORKSPACES": WS_ID_FOR_STARTUP, "AzureWebJobsStorage": "x"})
    assert not ok and line.startswith("settings: AUTOPILOT_MODE: expected one of observe, enforce; got 'enforced'")
    ok, line = startup_line({"ALLOWED_WORKSPACES": WS_ID_FOR_STARTUP, "AzureWebJobsStorage": "x"})
    assert ok and line == "settings: valid; mode observe, 1 workspace(s), 0 vault(s); no notification channel configured"


WS_ID_FOR_STARTUP = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


@pytest.mark.parametrize(("raw", "says"), [
    ("[1]", "NOTIFY_OWNER_WEBHOOKS: expected a JSON object"),
    ("{", "NOTIFY_OWNER_WEBHOOKS: not JSON"),
    ('{"alice": "https://x"}', "is not a user principal name"),
    ('{"alice@contoso.com": "http://hook"}', "must be an https:// URL"),
    ('{"alice@contoso.com": "https://hook/a b"}', "must be an https:// URL"),
    ('{"alice@contoso.com": 5}', "must be an https:// URL"),
    ('{"Alice@contoso.com": "https://a", "alice@contoso.com": "https://b"}', "is given twice"),
])
def test_a_hostile_owner_route_is_refused_in_one_line_naming_the_setting(raw, says):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, "NOTIFY_OWNER_WEBHOOKS": raw})
    assert says in str(err.value) and "\n" not in str(err.value)
    assert startup_line({**BASE, "NOTIFY_OWNER_WEBHOOKS": raw})[0] is False


def test_owner_routes_are_kept_by_lower_case_upn():
    s = Settings.from_env({**BASE, "NOTIFY_OWNER_WEBHOOKS": '{"Alice@Contoso.com": "https://hooks.example/alice"}'})
    assert s.notify_owner_webhooks == {"alice@contoso.com": "https://hooks.example/alice"}


@pytest.mark.parametrize(("name", "raw"), [("NOTIFY_FORMAT", "html"), ("STUDIO_TENANT_ID", "not-a-guid")])
def test_a_bad_format_or_tenant_is_refused(name, raw):
    with pytest.raises(SettingsError, match=f"^{name}: "):
        Settings.from_env({**BASE, name: raw})

"""Settings fail fast, naming the setting, and default to the safe choice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.model import Mode
from shared.settings import Settings, SettingsError, schedule_problems, startup_line

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


CLIENT_ID = "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70"


@pytest.mark.parametrize(("env", "says"), [
    ({"STUDIO_TENANT_ID": "abc"}, "STUDIO_TENANT_ID: expected an Entra tenant id (a GUID), got 'abc'"),
    ({"AZURE_CLIENT_ID": "abc"}, "AZURE_CLIENT_ID: expected a client id (a GUID), got 'abc'"),
    ({"AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "stx", "AzureWebJobsStorage__credential": "managedidentity",
      "AzureWebJobsStorage__clientId": "abc"}, "AzureWebJobsStorage__clientId: expected a client id (a GUID), got 'abc'"),
])
def test_a_malformed_guid_setting_is_named_as_the_id_it_is(env, says):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, **env})
    assert str(err.value) == says


def test_a_tenant_id_and_client_ids_that_are_guids_are_kept():
    s = Settings.from_env({**BASE, "STUDIO_TENANT_ID": CLIENT_ID.upper(), "AZURE_CLIENT_ID": CLIENT_ID})
    assert s.studio_tenant_id == CLIENT_ID.upper()


# --- timer schedules: what the Functions host will run as written ----------------------------------------------

@pytest.mark.parametrize("value", [
    "0 */15 * * * *", "0 5-59/15 * * * *", "0 10-59/15 * * * *", "0 30 2 * * *",  # the defaults
    "  0   */5 * * * *  ",                    # runs of spaces: NCrontab drops empty fields
    "5,8,10 * * * * *", "5/15 * * * * *",    # a list; n/s runs from n to the field's end
    "0 30 9 * * 1-5", "0 30 9 * Jan Mon", "0 30 9 * january,JUL monday-friday", "0 0 9 * Sep-Dec/2 Tue",
    "0 0 0 29 2 *",                           # a 29th of February comes every fourth year
    "0 0 0 31 * *", "59 59 23 31 12 6",
])
@pytest.mark.parametrize("name", ["IDLE_SWEEP_SCHEDULE", "CLUSTER_SWEEP_SCHEDULE", "DEPLOYMENT_SWEEP_SCHEDULE", "ROTATION_SCHEDULE"])
def test_a_six_field_ncrontab_schedule_is_accepted(name, value):
    assert schedule_problems({**BASE, name: value}) == []


@pytest.mark.parametrize(("value", "says"), [
    ("garbage", "expected an NCRONTAB expression of six fields {second} {minute} {hour} {day} {month} {day-of-week}"),
    ("*/15 * * * *", "got 5 field(s) in '*/15 * * * *' (a five-field cron expression lacks the seconds: put 0 in front)"),
    ("0 */15 * * * * 2025", "got 7 field(s)"),
    ("00:05:00", "'00:05:00' is a TimeSpan, which Azure runs only on an App Service plan"),
    ("1.02:00:00", "is a TimeSpan"),
    ("every:night", "got 1 field(s) in 'every:night'"),
    ("0\t*/15 * * * * *", "separates its fields with a tab or line break"),
    ("60 * * * * *", "the second field '60': 60 is outside 0-59"),
    ("0 60 * * * *", "the minute field '60': 60 is outside 0-59"),
    ("0 0 24 * * *", "the hour field '24': 24 is outside 0-23"),
    ("0 0 0 0 * *", "the day field '0': 0 is outside 1-31"),
    ("0 0 0 * 13 *", "the month field '13': 13 is outside 1-12"),
    ("0 0 0 * * 7", "the day-of-week field '7': 7 is outside 0-6 (Sunday is 0)"),
    ("0 0 0 * Foo *", "the month field 'Foo': 'Foo' is no month name (Jan, Feb,"),
    ("0 0 0 * * Funday", "'Funday' is no day-of-week name"),
    ("0 0 0 L * *", "the day field 'L': 'L' is not a number 1-31"),
    ("0 0 0 ? * *", "the day field '?'"),
    ("0 0 0 * * 1#2", "the day-of-week field '1#2'"),
    ("0 */0 * * * *", "the step in '*/0' must be a whole number from 1"),
    ("0 */ * * * *", "the step in '*/' must be a whole number from 1"),
    ("0 1/2/3 * * * *", "'1/2/3' is not *, a number, a range a-b or a list a,b"),
    ("1,,2 * * * * *", "'' is not *, a number"),
    ("0 1-2-3 * * * *", "the minute field '1-2-3'"),
    ("0 -5 * * * *", "the minute field '-5'"),
    ("0 0 22-2 * * *", "the range '22-2' runs backwards (NCrontab would read it as 2-22)"),
    ("0 0 9 * Ju *", "'Ju' could be June or July: write more of the name"),
    ("0 0 9 * * S", "'S' could be Sunday or Saturday"),
    ("0 0 0 30 2 *", "'0 0 0 30 2 *' never runs: no month it names has day 30"),
    ("0 0 0 31 4,6,9,11 *", "never runs"),
    ("99999999999 * * * * *", "the second field '99999999999'"),
])
def test_a_schedule_the_host_would_not_run_as_written_is_one_line_naming_the_setting(value, says):
    (message,) = schedule_problems({**BASE, "IDLE_SWEEP_SCHEDULE": value})
    assert message.startswith("IDLE_SWEEP_SCHEDULE: ") and says in message, message
    assert "\n" not in message and len(message) < 300
    Settings.from_env({**BASE, "IDLE_SWEEP_SCHEDULE": value})  # only the host reads it: the triggers keep working


def test_a_bad_schedule_is_said_in_the_start_up_line_without_failing_the_triggers():
    ok, line = startup_line({**BASE, "ROTATION_SCHEDULE": "nightly"})
    assert not ok and line.startswith("settings: valid;") and "ROTATION_SCHEDULE: expected an NCRONTAB expression" in line
    assert "every trigger will fail" not in line


_FIELD = st.one_of(st.just("*"), st.integers(0, 5).map(str), st.tuples(st.integers(0, 3), st.integers(3, 5)).map(lambda r: f"{r[0]}-{r[1]}"),
                   st.integers(1, 4).map(lambda n: f"*/{n}"), st.lists(st.integers(0, 5), min_size=2, max_size=3).map(
                       lambda ns: ",".join(map(str, ns))), st.sampled_from(["Jan", "mon-fri", "Sep-Dec/2", "7", "22-2", "*/0", "L"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELD, min_size=6, max_size=6).map(" ".join))
def test_every_schedule_the_settings_accept_the_dev_hosts_timer_runs(expression):
    # The dev host reads the timers' schedules with its own NCRONTAB parser, as the Functions host does.
    from local.host.timers import Schedule

    if not schedule_problems({**BASE, "IDLE_SWEEP_SCHEDULE": expression}):
        Schedule.parse(expression)

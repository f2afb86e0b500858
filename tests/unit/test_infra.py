"""The Terraform in infra/ deploys what the code reads: every setting, its default, its triggers, least privilege.

The Terraform is parsed with python-hcl2 (no provider, no Azure): these tests hold the autopilot
module's app settings equal to shared/settings.py's CATALOGUE and its wiring equal to the functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.settings import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULE = INFRA / "autopilot"

# The Function App resource writes AzureWebJobsStorage itself, from its storage arguments.
WRITTEN_BY_RESOURCE = {"AzureWebJobsStorage"}
# Settings built by joining the ids of a map variable (an empty map joins to "").
FROM_MAPS = {"ALLOWED_WORKSPACES": "workspaces", "ALLOWED_VAULTS": "vaults"}
DEPLOYED = [s for s in CATALOGUE if s.name not in WRITTEN_BY_RESOURCE]


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels; the tests compare bare values."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _load(directory: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            for kind, blocks in hcl2.load(handle).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def _variables(doc: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {_unquote(name): body for block in doc.get("variable", []) for name, body in block.items()}


def _locals(doc: dict[str, list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in doc.get("locals", []):
        out.update({k: v for k, v in block.items() if not k.startswith("__")})
    return out


def _resources(doc: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        _unquote(name): body
        for block in doc.get("resource", [])
        for rtype, named in block.items()
        if _unquote(rtype) == kind
        for name, body in named.items()
    }


def _refers_to(expression: Any, variable: str, local_values: dict[str, Any]) -> bool:
    """Whether an expression reads var.<variable>, directly or through the locals it reads."""
    text = str(expression)
    if re.search(rf"\bvar\.{re.escape(variable)}\b", text):
        return True
    return any(_refers_to(local_values[name], variable, local_values)
               for name in re.findall(r"\blocal\.(\w+)", text) if name in local_values)


@pytest.fixture(scope="module")
def module() -> dict[str, list[Any]]:
    return _load(MODULE)


@pytest.fixture(scope="module")
def app_settings(module) -> dict[str, Any]:
    settings = _locals(module).get("app_settings")
    assert isinstance(settings, dict), "infra/autopilot: expected a literal map `locals { app_settings = { ... } }`"
    return settings


def _variable_for(name: str) -> str:
    return FROM_MAPS.get(name, name.lower())


@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.tf")), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_terraform_file_parses(path):
    with path.open(encoding="utf-8") as handle:
        assert hcl2.load(handle), f"{path} is empty"


def test_the_app_settings_are_exactly_the_catalogue(app_settings):
    expected = {s.name for s in DEPLOYED}
    actual = set(app_settings)
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    assert not missing and not extra, (
        "infra/autopilot/main.tf app_settings differ from shared/settings.py CATALOGUE "
        f"(minus {sorted(WRITTEN_BY_RESOURCE)}): missing {missing or 'none'}; extra {extra or 'none'}"
    )


def test_the_app_settings_keep_the_catalogue_order(app_settings):
    assert [k for k in app_settings if k in {s.name for s in DEPLOYED}] == [s.name for s in DEPLOYED if s.name in app_settings]


def test_each_setting_has_its_own_variable_and_reads_it(module, app_settings):
    variables, local_values = _variables(module), _locals(module)
    problems = []
    for setting in DEPLOYED:
        variable = _variable_for(setting.name)
        if variable not in variables:
            problems.append(f"{setting.name}: no variable {variable!r}")
        elif setting.name in app_settings and not _refers_to(app_settings[setting.name], variable, local_values):
            problems.append(f"{setting.name}: value {app_settings[setting.name]!r} does not read var.{variable}")
    assert not problems, "infra/autopilot settings not wired to their variables:\n  " + "\n  ".join(problems)


def test_each_variable_default_is_the_catalogue_default(module):
    variables = _variables(module)
    problems = []
    for setting in DEPLOYED:
        body = variables.get(_variable_for(setting.name))
        if body is None:
            continue  # reported by the wiring test
        has_default = "default" in body
        if setting.default is None:
            if has_default:
                problems.append(f"{setting.name}: required in the catalogue, but the variable has default {body['default']!r}")
            continue
        if not has_default:
            problems.append(f"{setting.name}: the catalogue default is {setting.default!r}, the variable has none (required)")
            continue
        default = _unquote(body["default"])
        if setting.name in FROM_MAPS:
            joined = "" if default in ({}, [], None) else None
            if joined != setting.default:
                problems.append(f"{setting.name}: map default {default!r} does not join to {setting.default!r}")
        elif str(default) != setting.default:
            problems.append(f"{setting.name}: terraform default {str(default)!r} != catalogue default {setting.default!r}")
    assert not problems, "infra/autopilot variable defaults differ from shared/settings.py:\n  " + "\n  ".join(problems)


def test_each_setting_variable_says_which_setting_it_is(module):
    variables = _variables(module)
    unnamed = [
        _variable_for(s.name) for s in DEPLOYED
        if _variable_for(s.name) in variables and not _unquote(variables[_variable_for(s.name)].get("description", "")).startswith(f"{s.name}:")
    ]
    assert not unnamed, f"descriptions should start with the setting's name and a colon: {unnamed}"


def test_azurewebjobsstorage_is_written_by_the_function_app_resource(module, app_settings):
    apps = _resources(module, "azurerm_linux_function_app")
    assert list(apps) == ["this"], f"expected one azurerm_linux_function_app, got {list(apps)}"
    app = apps["this"]
    assert "AzureWebJobsStorage" not in app_settings, "the resource sets AzureWebJobsStorage; listing it too conflicts"
    assert app.get("storage_account_name") and app.get("storage_account_access_key"), (
        "the ledger reads AzureWebJobsStorage as a connection string: set storage_account_name and storage_account_access_key"
    )
    assert app.get("app_settings") == "${local.app_settings}"
    stack = app["site_config"][0]["application_stack"][0]
    assert _unquote(stack["python_version"]) == "3.11"


def _decorated(path: Path) -> dict[str, list[ast.Call]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: [d for d in node.decorator_list if isinstance(d, ast.Call)]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }


def _decorator(calls: list[ast.Call], name: str) -> ast.Call | None:
    return next((c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == name), None)


def test_the_event_grid_subscriptions_target_the_on_event_function(module):
    trigger = _decorator(_decorated(ROOT / "functions" / "events.py").get("on_event", []), "event_grid_trigger")
    assert trigger is not None, "functions/events.py no longer defines the Event Grid trigger on_event"
    assert _unquote(_locals(module)["on_event_function_id"]).endswith("/functions/on_event")
    subscriptions = _resources(module, "azurerm_eventgrid_system_topic_event_subscription")
    assert subscriptions, "no Event Grid subscriptions in infra/autopilot"
    for name, body in subscriptions.items():
        endpoint = body["azure_function_endpoint"][0]
        assert endpoint["function_id"] == "${local.on_event_function_id}", f"{name} does not deliver to on_event"
        assert body.get("retry_policy") and body.get("storage_blob_dead_letter_destination"), f"{name} needs a retry policy and dead letters"


def test_the_event_grid_filters_match_the_events_the_code_handles(module):
    subscriptions = _resources(module, "azurerm_eventgrid_system_topic_event_subscription")
    types = {name: sorted(_unquote(t) for t in body["included_event_types"]) for name, body in subscriptions.items()}
    assert types == {
        "run_status": ["Microsoft.MachineLearningServices.RunStatusChanged"],
        "run_completed": ["Microsoft.MachineLearningServices.RunCompleted"],
        "secret_expiry": ["Microsoft.KeyVault.SecretExpired", "Microsoft.KeyVault.SecretNearExpiry"],
    }
    status_filter = subscriptions["run_status"]["advanced_filter"][0]["string_in"][0]
    assert _unquote(status_filter["key"]) == "data.runStatus"
    assert sorted(_unquote(v) for v in status_filter["values"]) == ["Canceled", "Failed"]


def test_the_action_group_calls_the_alerts_route_with_the_common_schema(module):
    route = _decorator(_decorated(ROOT / "functions" / "alerts.py").get("on_alert", []), "route")
    assert route is not None, "functions/alerts.py no longer defines the HTTP trigger on_alert"
    keywords = {k.arg: k.value for k in route.keywords}
    assert ast.literal_eval(keywords["route"]) == "alerts"
    assert ast.unparse(keywords["auth_level"]) == "func.AuthLevel.FUNCTION"
    url = _locals(module)["alerts_webhook_url"]
    assert "/api/alerts?code=${data.azurerm_function_app_host_keys.this[0].default_function_key}" in url
    receiver = _resources(module, "azurerm_monitor_action_group")["autopilot"]["webhook_receiver"][0]
    assert receiver["service_uri"] == "${local.alerts_webhook_url}"
    assert receiver["use_common_alert_schema"] is True


def test_the_custom_workspace_role_grants_named_aml_actions_only(module):
    actions = [_unquote(a) for a in _locals(module)["workspace_actions"]]
    assert actions and len(set(actions)) == len(actions)
    broad = [a for a in actions if "*" in a or not a.startswith("Microsoft.MachineLearningServices/workspaces/")]
    assert not broad, f"the workspace role must list workspace actions by name: {broad}"
    assignment = _resources(module, "azurerm_role_assignment")["workspace_operator"]
    assert assignment["for_each"] == "${var.workspaces}" and assignment["scope"] == "${each.value.id}", (
        "the custom role is assigned on each workspace, not wider"
    )

"""The Terraform in infra/ deploys what the code reads: every setting, its default, its triggers, least privilege.

The Terraform is parsed with python-hcl2 (no provider, no Azure): these tests hold the autopilot
module's app settings equal to shared/settings.py's CATALOGUE and its wiring equal to the functions,
the Function App on Flex Consumption, and the modules in the seed layout (shared, mlops, autopilot).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.settings import CATALOGUE
from tests.infra_roles import load as _load
from tests.infra_roles import locals_of as _locals
from tests.infra_roles import resources as _resources
from tests.infra_roles import unquote as _unquote

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULE = INFRA / "autopilot"

# Settings of the catalogue that the app settings map leaves out, on purpose: the resource writes the
# Application Insights connection string from site_config.
NOT_IN_APP_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
WRITTEN_BY_RESOURCE = NOT_IN_APP_SETTINGS  # the name the tests below use
# Settings Terraform derives from what it creates (the identity, the storage account): no variable,
# this exact value.
IDENTITY = "azurerm_user_assigned_identity.app"
DERIVED = {
    "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
    "AZURE_CLIENT_ID": f"${{{IDENTITY}.client_id}}",
    # Empty, replacing the keyless connection string azurerm writes (see infra/autopilot/main.tf).
    "AzureWebJobsStorage": "",
    "AzureWebJobsStorage__accountName": "${azurerm_storage_account.func.name}",
    "AzureWebJobsStorage__tableServiceUri": "${azurerm_storage_account.func.primary_table_endpoint}",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": f"${{{IDENTITY}.client_id}}",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId=${{{IDENTITY}.client_id}};Authorization=AAD",
}
FUNCTION_APP = "azurerm_function_app_flex_consumption"
# Microsoft Learn, "Azure Functions Flex Consumption plan hosting", deprecated properties and
# settings: Flex Consumption rejects these app settings (their job is done by functionAppConfig,
# i.e. the resource's runtime, scale and deployment storage arguments).
REJECTED_BY_FLEX = {
    "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED", "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE", "WEBSITE_DNS_SERVER", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL", "AzureWebJobsDashboard",
}
PROVIDER_PIN = ">= 4.42, < 5.0"
AZAPI_PIN = ">= 2.0, < 3.0"
# The arguments azurerm_function_app_flex_consumption has (terraform-provider-azurerm,
# internal/services/appservice/function_app_flex_consumption_resource.go, Arguments(), 4.x), plus
# Terraform's meta-arguments. python-hcl2 parses any name; `terraform validate` would refuse one
# not in this list, and an operator would meet it first.
FLEX_ARGUMENTS = {
    "name", "resource_group_name", "location", "service_plan_id", "storage_container_type",
    "storage_container_endpoint", "storage_authentication_type", "storage_access_key",
    "storage_user_assigned_identity_id", "runtime_name", "runtime_version", "instance_memory_in_mb",
    "maximum_instance_count", "http_concurrency", "always_ready", "site_config", "site_update_strategy",
    "sticky_settings", "app_settings", "auth_settings", "auth_settings_v2", "client_certificate_enabled",
    "client_certificate_mode", "client_certificate_exclusion_paths", "connection_string", "enabled", "identity",
    "public_network_access_enabled", "https_only", "webdeploy_publish_basic_authentication_enabled",
    "virtual_network_subnet_id", "zip_deploy_file", "vnet_application_traffic_enabled", "tags",
    "depends_on", "lifecycle", "count", "for_each", "provider",
}
# Settings built by joining the ids of a map variable (an empty map joins to "").
FROM_MAPS = {"ALLOWED_WORKSPACES": "workspaces", "ALLOWED_VAULTS": "vaults"}
DEPLOYED = [s for s in CATALOGUE if s.name not in WRITTEN_BY_RESOURCE]
FROM_VARIABLES = [s for s in DEPLOYED if s.name not in DERIVED]


def _variables(doc: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {_unquote(name): body for block in doc.get("variable", []) for name, body in block.items()}


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
    for setting in FROM_VARIABLES:
        variable = _variable_for(setting.name)
        if variable not in variables:
            problems.append(f"{setting.name}: no variable {variable!r}")
        elif setting.name in app_settings and not _refers_to(app_settings[setting.name], variable, local_values):
            problems.append(f"{setting.name}: value {app_settings[setting.name]!r} does not read var.{variable}")
    assert not problems, "infra/autopilot settings not wired to their variables:\n  " + "\n  ".join(problems)


def test_each_variable_default_is_the_catalogue_default(module):
    variables = _variables(module)
    problems = []
    for setting in FROM_VARIABLES:
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
        _variable_for(s.name) for s in FROM_VARIABLES
        if _variable_for(s.name) in variables and not _unquote(variables[_variable_for(s.name)].get("description", "")).startswith(f"{s.name}:")
    ]
    assert not unnamed, f"descriptions should start with the setting's name and a colon: {unnamed}"


def test_the_identity_settings_are_derived_from_the_identity_and_the_storage(app_settings):
    wrong = {name: app_settings.get(name) for name, value in DERIVED.items() if _unquote(app_settings.get(name)) != value}
    assert not wrong, f"derived app settings differ from {DERIVED}: {wrong}"


def test_the_app_reaches_its_storage_with_the_identity_and_no_account_key(module, app_settings):
    apps = _resources(module, FUNCTION_APP)
    assert list(apps) == ["this"], f"expected one {FUNCTION_APP}, got {list(apps)}"
    assert not _resources(module, "azurerm_linux_function_app"), "the app runs on Flex Consumption, not Linux Consumption"
    app = apps["this"]
    assert _unquote(app_settings["AzureWebJobsStorage"]) == "", "azurerm's keyless connection string would win over the identity settings"
    assert _unquote(app["storage_authentication_type"]) == "UserAssignedIdentity"
    assert app["storage_user_assigned_identity_id"] == f"${{{IDENTITY}.id}}"
    assert "storage_access_key" not in app
    assert app.get("app_settings") == "${local.app_settings}"
    assert "${azurerm_role_assignment.func_storage}" in app.get("depends_on", []), "the host starts with its storage roles in place"
    storage = _resources(module, "azurerm_storage_account")["func"]
    assert storage["shared_access_key_enabled"] is False and storage["default_to_oauth_authentication"] is True
    assert "primary_access_key" not in str(module) and "primary_connection_string" not in str(module)
    assert "application_insights_connection_string" in str(app["site_config"])


def test_the_function_app_uses_only_arguments_azurerm_has(module):
    app = _resources(module, FUNCTION_APP)["this"]
    unknown = sorted(name for name in set(app) - FLEX_ARGUMENTS if not name.startswith("__"))  # python-hcl2 metadata
    assert not unknown, f"{FUNCTION_APP} has no argument {unknown}: terraform validate would stop here"


def test_key_vault_references_resolve_with_the_user_assigned_identity(module):
    (action,) = _resources(module, "azapi_resource_action").values()
    assert _unquote(action["type"]).startswith("Microsoft.Web/sites@")
    assert action["resource_id"] == f"${{{FUNCTION_APP}.this.id}}"
    assert _unquote(action["method"]) == "PATCH", "an update of one property, not a PUT of the whole site"
    assert action["body"]["properties"] == {"keyVaultReferenceIdentity": f"${{{IDENTITY}.id}}"}


def test_secrets_reach_the_app_only_as_key_vault_references(module, app_settings):
    local_values, variables = _locals(module), _variables(module)
    for setting, variable in (("NOTIFY_WEBHOOK_URL", "notify_webhook_url"), ("NOTIFY_EVENTGRID_KEY", "notify_eventgrid_key")):
        value = app_settings[setting]
        name = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        assert name, f"{setting} should be built by a local (a Key Vault reference), got {value!r}"
        built = str(local_values[name.group(1)])
        assert f"@Microsoft.KeyVault(SecretUri=${{var.{variable}}})" in built, f"{setting}: {built}"
        assert "validation" in variables[variable], f"var.{variable} must refuse a plain secret"


def test_the_function_app_runs_on_flex_consumption_python_3_11(module):
    app = _resources(module, FUNCTION_APP)["this"]
    plan = _resources(module, "azurerm_service_plan")["func"]
    assert app["service_plan_id"] == "${azurerm_service_plan.func.id}"
    assert _unquote(plan["sku_name"]) == "FC1" and _unquote(plan["os_type"]) == "Linux"
    assert (_unquote(app["runtime_name"]), _unquote(app["runtime_version"])) == ("python", "3.11")
    assert app["instance_memory_in_mb"] == "${var.instance_memory_in_mb}"
    assert app["maximum_instance_count"] == "${var.maximum_instance_count}"
    variables = _variables(module)
    assert variables["instance_memory_in_mb"]["default"] == 2048
    assert variables["maximum_instance_count"]["default"] == 40
    assert app["https_only"] is True
    assert app["webdeploy_publish_basic_authentication_enabled"] is False
    assert _unquote(app["identity"][0]["type"]) == "UserAssigned", "one user-assigned identity, granted in rbac.tf"
    assert app["identity"][0]["identity_ids"] == [f"${{{IDENTITY}.id}}"]
    assert _locals(module)["principal_id"] == f"${{{IDENTITY}.principal_id}}"


def test_the_package_lives_in_a_blob_container_of_the_apps_storage(module):
    app = _resources(module, FUNCTION_APP)["this"]
    container = _resources(module, "azurerm_storage_container")["deployment"]
    assert container["storage_account_id"] == "${azurerm_storage_account.func.id}"
    assert _unquote(container["container_access_type"]) == "private"
    assert _unquote(app["storage_container_type"]) == "blobContainer"
    assert _unquote(app["storage_container_endpoint"]) == (
        "${azurerm_storage_account.func.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
    )


def test_no_app_setting_flex_consumption_rejects(module, app_settings):
    app = _resources(module, FUNCTION_APP)["this"]
    rejected = sorted(REJECTED_BY_FLEX & set(app_settings))
    assert not rejected, f"Flex Consumption rejects these app settings: {rejected}"
    ignored = str(app.get("lifecycle", ""))
    assert not [name for name in REJECTED_BY_FLEX if name in ignored], "nothing to ignore: Flex sets no such setting"
    assert "python_version" not in str(app.get("site_config")), "the runtime is runtime_name/runtime_version"
    assert "ftps_state" not in str(app.get("site_config")), "Flex Consumption rejects ftpsState"


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
    assert sorted(_unquote(v) for v in status_filter["values"]) == ["Canceled", "Failed", "NotResponding"]


def test_the_five_baseline_workspace_alerts_exist_with_the_metric_names_the_intake_acts_on(module):
    from shared.events import ALERT_METRICS

    table = _locals(module)["baseline_alerts"]
    assert sorted(_unquote(a["metric"]).lower() for a in table.values()) == sorted(ALERT_METRICS)
    for key, variable in (("model-deploy-failed", "model_deploy_failed_alert_threshold"),
                          ("not-responding-runs", "not_responding_runs_alert_threshold"),
                          ("failed-runs", "failed_runs_alert_threshold"), ("quota", "quota_alert_threshold_percent")):
        assert str(table[key]["threshold"]) == f"${{var.{variable}}}"  # a variable, not a constant
    assert [_unquote(d) for d in table["model-deploy-failed"]["dimensions"]] == ["Scenario", "StatusCode"]
    assert [_unquote(d) for d in table["unusable-nodes"]["dimensions"]] == ["ClusterName"]
    (alert,) = _resources(module, "azurerm_monitor_metric_alert").values()
    criteria = alert["criteria"][0]
    assert _unquote(criteria["metric_namespace"]) == "Microsoft.MachineLearningServices/workspaces"
    assert str(criteria["metric_name"]) == "${each.value.metric}" and str(alert["for_each"]) == "${local.workspace_alerts}"


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


def test_the_workspaces_discovered_under_an_allowed_scope_inherit_the_workspace_and_subscription_roles(module):
    """ALLOWED_SCOPES workspaces are not known to Terraform: the roles are assigned at each scope instead."""
    local_values, variables = _locals(module), _variables(module)
    assignments, roles = _resources(module, "azurerm_role_assignment"), _resources(module, "azurerm_role_definition")
    for assignment, role, scopes in (("workspace_operator_at_allowed_scope", "workspace_operator", "workspace_operator_scopes"),
                                     ("subscription_reader_at_allowed_scope", "subscription_reader", "subscription_reader_scopes")):
        body = assignments[assignment]
        assert body["for_each"] == f"${{local.{scopes}}}" and body["scope"] == "${each.value}", assignment
        # By name: the provider resolves the definition at the assignment's scope and keeps the id ARM returns there.
        assert body["role_definition_name"] == f"${{azurerm_role_definition.{role}.name}}", assignment
        assert "role_definition_id" not in body, assignment
        assert body["principal_id"] == "${local.principal_id}"
        # A custom role can be assigned only within its assignable scopes.
        assert roles[role]["assignable_scopes"] == (
            "${concat([data.azurerm_subscription.current.id], local.extra_assignable_scopes)}"), role
    assert _refers_to(local_values["workspace_operator_scopes"], "allowed_scopes", local_values)
    assert _refers_to(local_values["workspace_operator_scopes"], "assign_roles_at_allowed_scopes", local_values)
    # The subscription reader is assigned at this subscription already: a second identical assignment is refused.
    assert "local.this_subscription" in str(local_values["subscription_reader_scopes"])
    assert "local.this_subscription" in str(local_values["extra_assignable_scopes"])
    # Azure accepts one management group among a custom role's assignable scopes: the plan says so first.
    (precondition,) = roles["workspace_operator"]["lifecycle"][0]["precondition"]
    assert precondition["condition"] == "${length(local.management_group_scopes) <= 1}"
    assert variables["assign_roles_at_allowed_scopes"]["default"] is False  # write roles over a whole scope: asked for, never assumed
    assert "validation" in variables["allowed_scopes"], "a scope is refused at plan time, before it becomes a role assignment's scope"
    # Vaults are never discovered, and a role with data actions cannot be assigned at a management group.
    rotator = [name for name, body in assignments.items() if "secret_rotator" in str(body.get("role_definition_id"))]
    assert rotator == ["secret_rotator"]


# --- The root reaches every variable of the autopilot module ---------------------------------------

# Set by the root from what infra/shared creates, not from a root variable.
WIRED_FROM_SHARED = {"location", "resource_group_name", "application_insights_connection_string", "app_insights_id",
                     "log_analytics_workspace_id"}
# Root variables that the other modules read too: described for the whole fleet; name has a default there.
FLEET_WIDE = {"name", "tags"}
# Passed with the sample's entries merged in (main.tf's locals).
MERGED_WITH_THE_SAMPLE = {"workspaces": "local.sample_workspaces", "vaults": "local.sample_vaults",
                          "rotated_storage_account_ids": "local.sample_storage"}


def _plain(value: Any) -> Any:
    """A parsed value without python-hcl2's metadata keys, for comparing two declarations."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_every_variable_of_the_autopilot_module_can_be_set_from_the_root(module):
    """A module variable the root does not declare and pass keeps its default: terraform.tfvars cannot set it."""
    root = _load(INFRA)
    root_variables, passed = _variables(root), _module_blocks(root)["autopilot"]
    problems = []
    for name, child in _variables(module).items():
        argument = passed.get(name)
        if name in WIRED_FROM_SHARED:
            if argument != f"${{module.shared.{name}}}":
                problems.append(f"{name}: expected module.shared.{name}, got {argument!r}")
            continue
        expected = f"${{merge({MERGED_WITH_THE_SAMPLE[name]}, var.{name})}}" if name in MERGED_WITH_THE_SAMPLE else f"${{var.{name}}}"
        if argument != expected:
            problems.append(f"{name}: infra/main.tf passes {argument!r} to module.autopilot, expected {expected!r}")
        declared = root_variables.get(name)
        if declared is None:
            problems.append(f"{name}: not declared in infra/variables.tf")
            continue
        for key in ("type", "validation", "sensitive", "nullable"):
            if _plain(child.get(key)) != _plain(declared.get(key)):
                problems.append(f"{name}: {key} differs: module {child.get(key)!r}, root {declared.get(key)!r}")
        if "default" in child and _plain(child["default"]) != _plain(declared.get("default", "<none>")):
            problems.append(f"{name}: default differs: module {child['default']!r}, root {declared.get('default', '<none>')!r}")
        if name not in FLEET_WIDE and child.get("description") != declared.get("description"):
            problems.append(f"{name}: description differs from the module's")
    unknown = sorted(set(passed) - set(_variables(module)) - {"source"} - {k for k in passed if k.startswith("__")})
    problems += [f"{name}: passed to module.autopilot, which has no such variable" for name in unknown]
    assert not problems, "infra/ root and infra/autopilot variables disagree:\n  " + "\n  ".join(problems)


def test_the_tfvars_example_names_every_root_variable_and_nothing_else():
    text = (INFRA / "terraform.tfvars.example").read_text(encoding="utf-8")
    named = re.findall(r"^(?:# )?([a-z][a-z0-9_]*)\s*=", text, re.MULTILINE)
    declared = set(_variables(_load(INFRA)))
    assert not sorted(set(named) - declared), f"not root variables (Terraform would refuse them): {sorted(set(named) - declared)}"
    assert not sorted(declared - set(named)), f"root variables the example does not show: {sorted(declared - set(named))}"
    assert len(named) == len(set(named)), "a variable shown twice"
    # The lines left uncommented are a valid tfvars file of root variables.
    live = hcl2.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    assert set(live) <= declared


# --- Seed layout: shared (vault, logs, App Insights), mlops (workspace, storage, registry, cluster) ---


def _module_blocks(doc: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {_unquote(name): body for block in doc.get("module", []) for name, body in block.items()}


def test_shared_holds_the_vault_the_logs_and_workspace_based_app_insights():
    shared = _load(INFRA / "shared")
    vault = _resources(shared, "azurerm_key_vault")["this"]
    assert vault["purge_protection_enabled"] is True
    assert vault["rbac_authorization_enabled"] is True
    assert "enable_rbac_authorization" not in vault, "deprecated in azurerm 4.x, removed in 5.0"
    assert _resources(shared, "azurerm_log_analytics_workspace")
    insights = _resources(shared, "azurerm_application_insights")["this"]
    assert insights["workspace_id"] == "${azurerm_log_analytics_workspace.this.id}", "workspace-based Application Insights"
    outputs = {_unquote(name) for block in shared.get("output", []) for name in block}
    assert {"key_vault_id", "app_insights_id"} <= outputs


def test_app_insights_takes_only_entra_telemetry_and_the_apps_identity_publishes_it(module):
    insights = _resources(_load(INFRA / "shared"), "azurerm_application_insights")["this"]
    assert insights["local_authentication_disabled"] is True, "an instrumentation key alone must not send telemetry"
    publisher = _resources(module, "azurerm_role_assignment")["telemetry_publisher"]
    assert _unquote(publisher["role_definition_name"]) == "Monitoring Metrics Publisher"
    assert publisher["scope"] == "${var.app_insights_id}" and publisher["principal_id"] == "${local.principal_id}"
    settings = _locals(module)["app_settings"]
    assert "Authorization=AAD" in _unquote(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])


def test_mlops_holds_the_workspace_its_storage_a_registry_and_a_cluster_scaling_to_zero():
    mlops = _load(INFRA / "mlops")
    assert not _resources(mlops, "azurerm_key_vault"), "the vault lives in infra/shared"
    assert not _resources(mlops, "azurerm_application_insights"), "Application Insights lives in infra/shared"
    workspace = _resources(mlops, "azurerm_machine_learning_workspace")["this"]
    assert workspace["key_vault_id"] == "${var.key_vault_id}"
    assert workspace["application_insights_id"] == "${var.app_insights_id}"
    assert workspace["storage_account_id"] == "${azurerm_storage_account.ml.id}"
    assert workspace["container_registry_id"] == "${azurerm_container_registry.ml.id}"
    assert _resources(mlops, "azurerm_container_registry")["ml"]["admin_enabled"] is False
    cluster = _resources(mlops, "azurerm_machine_learning_compute_cluster")["cpu"]
    assert cluster["local_auth_enabled"] is False
    assert _variables(mlops)["cluster_min_nodes"]["default"] == 0
    assert cluster["scale_settings"][0]["min_node_count"] == "${var.cluster_min_nodes}"


def test_the_root_passes_the_shared_ids_into_the_other_modules():
    modules = _module_blocks(_load(INFRA))
    assert set(modules) == {"shared", "mlops", "autopilot"}
    assert modules["mlops"]["key_vault_id"] == "${module.shared.key_vault_id}"
    assert modules["mlops"]["app_insights_id"] == "${module.shared.app_insights_id}"
    assert "shared.key_vault_id" in str(_locals(_load(INFRA))["sample_vaults"]), "the sample's vault is the shared one"


@pytest.mark.parametrize("path", sorted(INFRA.rglob("versions.tf")), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_module_pins_the_provider(path):
    with path.open(encoding="utf-8") as handle:
        (terraform,) = hcl2.load(handle)["terraform"]
    (providers,) = terraform["required_providers"]
    assert _unquote(providers["azurerm"]["version"]) == PROVIDER_PIN
    uses_azapi = "azapi_" in "".join(p.read_text(encoding="utf-8") for p in path.parent.rglob("*.tf"))
    if uses_azapi:
        assert _unquote(providers["azapi"]["source"]) == "Azure/azapi" and _unquote(providers["azapi"]["version"]) == AZAPI_PIN


def test_no_deprecated_storage_account_name_on_containers():
    for directory in (INFRA / "autopilot", INFRA / "mlops", INFRA / "shared"):
        for name, body in _resources(_load(directory), "azurerm_storage_container").items():
            assert "storage_account_name" not in body and "storage_account_id" in body, f"{directory.name}: {name}"


def test_log_alerts_on_log_analytics_can_be_created_before_their_tables_exist(module):
    """A new workspace has no StorageQueueLogs or StorageBlobLogs until logs arrive; Azure validates the query at creation."""
    rules = _resources(module, "azurerm_monitor_scheduled_query_rules_alert_v2")
    on_workspace = {name: rule for name, rule in rules.items() if rule["scopes"] == ["${var.log_analytics_workspace_id}"]}
    assert set(on_workspace) == {"poison", "dead_letters"}
    for name, rule in on_workspace.items():
        heredoc = _unquote(rule["criteria"][0]["query"]).strip().splitlines()  # python-hcl2 keeps <<-KQL ... KQL
        query = "\n".join(line.strip() for line in heredoc if line.strip() not in ("<<-KQL", "KQL"))
        assert query.startswith("union isfuzzy=true Storage") and "datatable(" in query.splitlines()[0], f"{name}: {query}"
        assert rule.get("skip_query_validation") is True, name
        assert 'tostring(split(ObjectKey, "/")[2]) ==' in query, f"{name}: compare the queue or container exactly"

"""`azd up` deploys everything in one run: azure.yaml follows azd's schema and names what infra/ creates.

azure.yaml is validated against azd's schema (restated in infra/schemas/ from the published
file, its source and date noted there); the service is the Function App that infra/ tags and
outputs; the postdeploy hook provisions again with CONNECT_TRIGGERS=true, which main.tfvars.json
hands to Terraform as connect_triggers; the package leaves out everything the app does not run.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import hcl2
import jsonschema
import pytest
import yaml

from tests.infra_roles import load, resources, unquote

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SCHEMA = INFRA / "schemas" / "azure.yaml.schema.json"
# azd substitutes ${NAME} and ${NAME=default} in main.tfvars.json from its environment.
SUBSTITUTION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<default>[^}]*))?\}")


@pytest.fixture(scope="module")
def azure_yaml() -> dict:
    return yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))


def _root_outputs() -> set[str]:
    return {unquote(name) for block in load(INFRA).get("output", []) for name in block}


def _root_variables() -> dict[str, dict]:
    return {unquote(name): body for block in load(INFRA).get("variable", []) for name, body in block.items()}


def test_azure_yaml_follows_azds_schema(azure_yaml):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(azure_yaml)]
    assert not errors, errors
    assert "Azure/azure-dev" in schema["$comment"] and "schemas/v1.0/azure.yaml.json" in schema["$comment"], "the source is noted"


def test_the_schema_refuses_what_azd_refuses(azure_yaml):
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    service = azure_yaml["services"]["autopilot"]
    broken = [
        {**azure_yaml, "name": "AML_Autopilot"},
        {**azure_yaml, "services": {"autopilot": {k: v for k, v in service.items() if k != "project"}}},
        {**azure_yaml, "services": {"autopilot": {**service, "host": "containerapp"}}},  # remoteBuild is for functions only
        {**azure_yaml, "hooks": {"afterdeploy": {"run": "x"}}},
        {**azure_yaml, "hooks": {"postdeploy": {"shell": "sh"}}},  # a shell without a script
    ]
    assert [not validator.is_valid(doc) for doc in broken] == [True] * len(broken)


def test_one_python_function_service_deployed_to_the_app_infra_creates(azure_yaml):
    assert azure_yaml["infra"] == {"provider": "terraform", "path": "infra", "module": "main"}
    assert (INFRA / "main.tf").exists()
    (name, service), = azure_yaml["services"].items()
    assert (service["host"], service["language"], service["project"], service["remoteBuild"]) == ("function", "python", ".", True)
    assert (ROOT / service["project"] / "function_app.py").exists()
    for key in ("resourceGroup", "resourceName"):
        (output,) = SUBSTITUTION.findall(service[key])
        assert output[0] in _root_outputs(), f"{key} reads ${{{output[0]}}}, which infra/ does not output"
    app = resources(load(INFRA / "autopilot"), "azurerm_function_app_flex_consumption")["this"]
    assert f'"azd-service-name" = "{name}"' in str(app["tags"]) or f"'azd-service-name': '{name}'" in str(app["tags"])


def test_main_tfvars_json_sets_only_root_variables_and_leaves_triggers_to_the_hook():
    text = (INFRA / "main.tfvars.json").read_text(encoding="utf-8")
    defaults = json.loads(SUBSTITUTION.sub(lambda m: m.group("default") or f"<{m.group('name')}>", text))
    variables = _root_variables()
    assert set(defaults) <= set(variables), f"not root variables: {sorted(set(defaults) - set(variables))}"
    assert defaults["connect_triggers"] == "false", "the first provision runs before the code exists"
    assert "${CONNECT_TRIGGERS" in text
    assert "{AZURE_SUBSCRIPTION_ID}" in text and "{AZURE_LOCATION}" in text, "azd's own environment picks them"


def test_the_postdeploy_hook_provisions_again_with_the_triggers_connected(azure_yaml, tmp_path):
    hook = azure_yaml["hooks"]["postdeploy"]
    script = ROOT / hook["posix"]["run"]
    assert script.exists() and script.stat().st_mode & 0o111, f"{script} must exist and be executable"
    assert (ROOT / hook["windows"]["run"]).exists()
    # Run it with a stand-in `azd` on PATH that records its calls: what azd would be asked to do.
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "azd"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1 $2" = "env get-value" ] && cat {tmp_path}/state 2>/dev/null\nexit 0\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
    subprocess.run([str(script)], env=env, check=True, capture_output=True)
    assert calls.read_text().splitlines() == ["env get-value CONNECT_TRIGGERS", "env set CONNECT_TRIGGERS true", "provision --no-prompt"]
    (tmp_path / "state").write_text("true\n")
    calls.unlink()
    subprocess.run([str(script)], env=env, check=True, capture_output=True)
    assert calls.read_text().splitlines() == ["env get-value CONNECT_TRIGGERS"], "once wired, no second provision"


def test_the_package_holds_the_app_and_nothing_else():
    ignored = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for needed in ("function_app.py", "host.json", "requirements.txt", "functions/", "shared/"):
        assert not any(pattern.rstrip("/") == needed.rstrip("/") for pattern in ignored), f"{needed} must be deployed"
    for left_out in (".venv/", "local/", "tests/", "infra/", "bench/", ".venv-checkov/"):
        assert left_out in ignored, f"{left_out} must stay out of the package"
    assert "azure-monitor-opentelemetry" in (ROOT / "requirements.txt").read_text(), "the telemetry distro is deployed"


def test_every_output_azd_reads_is_in_the_root_module():
    with (INFRA / "outputs.tf").open(encoding="utf-8") as handle:
        outputs = {unquote(name) for block in hcl2.load(handle)["output"] for name in block}
    assert {"AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME"} <= outputs

"""What infra/ grants the app's identity, read from the Terraform with python-hcl2: (action, scope) pairs.

Each ``azurerm_role_assignment`` of the autopilot module is resolved to its role's actions and data
actions (a custom ``azurerm_role_definition`` of the module, or a built-in role listed below) and to
the kind of scope it is assigned at. Assignments that serve no request of the code are listed in
``NOT_FOR_THE_CODE`` with the reason; anything else unknown is reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hcl2

from shared.adapters.permissions import Scope

MODULE = Path(__file__).resolve().parents[1] / "infra" / "autopilot"

# Built-in roles the module assigns, with their actions as Microsoft publishes them.
BUILTIN_ROLES: dict[str, list[str]] = {
    # "Azure built-in roles for Storage", Storage Account Key Operator Service Role
    # (81a9662b-bebf-436f-a333-f67b29880f12): Actions listkeys/action and regeneratekey/action, no
    # NotActions, no DataActions.
    "Storage Account Key Operator Service Role": [
        "Microsoft.Storage/storageAccounts/listkeys/action",
        "Microsoft.Storage/storageAccounts/regeneratekey/action",
    ],
}

# Role assignments that no request of the code needs, and why they exist anyway.
NOT_FOR_THE_CODE: dict[str, str] = {
    "notify_key_reader": "the platform resolves the notification secrets' Key Vault references with the identity",
    "func_storage": "the app's own storage (host blobs and queues, the ledger table, dead letters), reached with the "
                    "identity; data-plane requests that go to Azurite in the tests, not to the emulator",
    "telemetry_publisher": "Application Insights ingestion with an Entra token (the host and the OpenTelemetry "
                           "exporter), not a request of the adapters",
}

# (for_each, scope) of an assignment → the kind of scope it grants at. An assignment at an allowed
# scope (ALLOWED_SCOPES: a subscription or a management group) grants at the workspaces, or the
# subscriptions, found under it: each of its roles has its own set of scopes, so the kind follows.
SCOPES: dict[tuple[str | None, str], Scope] = {
    ("${var.workspaces}", "${each.value.id}"): Scope.WORKSPACE,
    ("${local.workspace_operator_scopes}", "${each.value}"): Scope.WORKSPACE,
    (None, "${data.azurerm_subscription.current.id}"): Scope.SUBSCRIPTION,
    ("${local.subscription_reader_scopes}", "${each.value}"): Scope.SUBSCRIPTION,
    ("${var.rotated_storage_account_ids}", "${each.value}"): Scope.STORAGE_ACCOUNT,
    ("${var.vaults}", "${each.value.id}"): Scope.VAULT,
}


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(directory: Path = MODULE) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            for kind, blocks in hcl2.load(handle).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def locals_of(doc: dict[str, list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in doc.get("locals", []):
        out.update({k: v for k, v in block.items() if not k.startswith("__")})
    return out


def resources(doc: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        unquote(name): body
        for block in doc.get("resource", [])
        for rtype, named in block.items()
        if unquote(rtype) == kind
        for name, body in named.items()
    }


def _names(value: Any, local_values: dict[str, Any], where: str, problems: list[str]) -> list[str]:
    """A literal list of action names, directly or through one `local.` reference."""
    if isinstance(value, str) and value.startswith("${local.") and value.endswith("}"):
        value = local_values.get(value[len("${local."):-1])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: not a literal list of action names ({value!r})")
        return []
    return [unquote(v) for v in value]


def _custom_roles(doc: dict[str, list[Any]], problems: list[str]) -> dict[str, list[str]]:
    local_values = locals_of(doc)
    roles: dict[str, list[str]] = {}
    for name, body in resources(doc, "azurerm_role_definition").items():
        (permissions,) = body["permissions"]
        actions: list[str] = []
        for key in ("actions", "data_actions"):
            if key in permissions:
                actions += _names(permissions[key], local_values, f"role {name} {key}", problems)
        for key in ("not_actions", "not_data_actions"):
            if permissions.get(key, []) != []:
                problems.append(f"role {name}: {key} is not empty; list what is granted, not what is taken away")
        roles[name] = actions
    return roles


def granted(doc: dict[str, list[Any]] | None = None) -> tuple[set[tuple[str, Scope]], list[str]]:
    """Every (action, scope kind) the module's role assignments grant, and what could not be read."""
    doc = load() if doc is None else doc
    problems: list[str] = []
    custom = _custom_roles(doc, problems)
    out: set[tuple[str, Scope]] = set()
    for name, body in resources(doc, "azurerm_role_assignment").items():
        if name in NOT_FOR_THE_CODE:
            continue
        scope = SCOPES.get((body.get("for_each"), body.get("scope")))
        if scope is None:
            problems.append(f"assignment {name}: unknown scope (for_each {body.get('for_each')!r}, scope {body.get('scope')!r})")
            continue
        named_custom = str(body.get("role_definition_name", ""))
        if named_custom.startswith("${azurerm_role_definition.") and named_custom.endswith(".name}"):
            # A custom role of the module, named so that the provider resolves it at the assignment's scope.
            role = named_custom.removeprefix("${azurerm_role_definition.").removesuffix(".name}")
            if role not in custom:
                problems.append(f"assignment {name}: role {named_custom!r} is not a role definition of the module")
                continue
            actions: Iterable[str] = custom[role]
        elif "role_definition_name" in body:
            role = unquote(body["role_definition_name"])
            if role not in BUILTIN_ROLES:
                problems.append(f"assignment {name}: built-in role {role!r} has no action list in tests/infra_roles.py")
                continue
            actions = BUILTIN_ROLES[role]
        else:
            reference = str(body.get("role_definition_id", ""))
            role = reference.removeprefix("${azurerm_role_definition.").removesuffix(".role_definition_resource_id}")
            if role not in custom:
                problems.append(f"assignment {name}: role {reference!r} is not a role definition of the module")
                continue
            actions = custom[role]
        out.update((action, scope) for action in actions)
    return out, problems


def difference(used: set[tuple[str, Scope]], grants: set[tuple[str, Scope]]) -> list[str]:
    """What differs between the actions used and those granted, each at its scope (actions compare without case)."""
    def fold(pairs: set[tuple[str, Scope]]) -> dict[tuple[str, Scope], str]:
        return {(action.lower(), scope): action for action, scope in pairs}

    u, g = fold(used), fold(grants)
    missing = [f"missing: {u[k]} at the {k[1]} (used, not granted in infra/)" for k in sorted(u.keys() - g.keys())]
    extra = [f"extra: {g[k]} at the {k[1]} (granted in infra/, never used)" for k in sorted(g.keys() - u.keys())]
    return missing + extra

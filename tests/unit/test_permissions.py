"""The request → RBAC action map: each path shape with an example, what it refuses, and infra/ granting exactly it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.adapters.permissions import NO_ACTION, ROUTES, Scope, Unmapped, action_for, grants, route_for
from tests.infra_roles import MODULE, difference, granted, load, locals_of, unquote

SUB = "00000000-0000-0000-0000-000000000001"
WS = f"/subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlw-prod"
LOC = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/westeurope"
SA = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01"
ML = "Microsoft.MachineLearningServices"

# (service, method, path as sent, including query strings the SDKs add) → action. One example or more per route.
EXAMPLES = [
    ("arm", "GET", f"{WS}?api-version=2025-12-01", f"{ML}/workspaces/read"),
    ("arm", "GET", f"{WS}/computes?api-version=2025-12-01", f"{ML}/workspaces/computes/read"),
    ("arm", "GET", f"{WS}/computes?api-version=2025-12-01&$skipToken=abc", f"{ML}/workspaces/computes/read"),
    ("arm", "GET", f"{WS}/computes/ci-alice", f"{ML}/workspaces/computes/read"),
    ("arm", "PATCH", f"{WS}/computes/cpu-cluster", f"{ML}/workspaces/computes/write"),
    ("arm", "POST", f"{WS}/computes/ci-alice/stop", f"{ML}/workspaces/computes/stop/action"),
    ("arm", "POST", f"{WS}/computes/ci-alice/updateIdleShutdownSetting", f"{ML}/workspaces/computes/updateIdleShutdownSetting/action"),
    ("arm", "GET", f"{WS}/jobs?api-version=2025-12-01&listViewType=ActiveOnly", f"{ML}/workspaces/jobs/read"),
    ("arm", "GET", f"{WS}/jobs/score-0107?api-version=2025-12-01", f"{ML}/workspaces/jobs/read"),
    ("arm", "POST", f"{WS}/jobs/score-0107/cancel", f"{ML}/workspaces/jobs/cancel/action"),
    ("arm", "GET", f"{WS}/onlineEndpoints", f"{ML}/workspaces/onlineEndpoints/read"),
    ("arm", "GET", f"{WS}/onlineEndpoints/scoring-api", f"{ML}/workspaces/onlineEndpoints/read"),
    ("arm", "GET", f"{WS}/onlineEndpoints/scoring-api/deployments", f"{ML}/workspaces/onlineEndpoints/deployments/read"),
    ("arm", "GET", f"{WS}/onlineEndpoints/scoring-api/deployments/canary", f"{ML}/workspaces/onlineEndpoints/deployments/read"),
    ("arm", "DELETE", f"{WS}/onlineEndpoints/scoring-api/deployments/canary", f"{ML}/workspaces/onlineEndpoints/deployments/delete"),
    ("arm", "POST", f"{WS}/onlineEndpoints/scoring-api/deployments/canary/getLogs",
     f"{ML}/workspaces/onlineEndpoints/deployments/getLogs/action"),
    ("arm", "GET", f"{LOC}/mfeOperationsStatus/9a8b7c6d?api-version=2025-12-01", f"{ML}/locations/mfeOperationsStatus/read"),
    ("arm", "GET", f"{LOC}/mfeOperationResults/9a8b7c6d?api-version=2025-12-01", f"{ML}/locations/mfeOperationResults/read"),
    ("arm", "GET", f"{WS}/datastores", f"{ML}/workspaces/datastores/read"),
    ("arm", "PUT", f"{WS}/datastores/workspaceblobstore", f"{ML}/workspaces/datastores/write"),
    ("arm", "POST", f"{WS}/datastores/trainingdata/listSecrets", f"{ML}/workspaces/datastores/listsecrets/action"),
    ("arm", "POST", f"{WS}/resyncKeys", f"{ML}/workspaces/resynckeys/action"),
    ("arm", "GET", f"{LOC}/usages?api-version=2025-12-01", f"{ML}/locations/usages/read"),
    ("arm", "GET", f"{LOC}/vmSizes", f"{ML}/locations/vmsizes/read"),
    ("arm", "GET", f"{LOC}/computeOperationsStatus/2b6c4f0e-1d7e-4c59-9a53-0c3f1f4f7a11?api-version=2025-12-01&type=async",
     f"{ML}/locations/computeoperationsstatus/read"),
    ("arm", "GET", f"{LOC}/workspaceOperationsStatus/f0e1d2c3", f"{ML}/locations/workspaceOperationsStatus/read"),
    ("arm", "POST", f"{SA}/listKeys?api-version=2024-01-01", "Microsoft.Storage/storageAccounts/listkeys/action"),
    ("arm", "POST", f"{SA}/regenerateKey", "Microsoft.Storage/storageAccounts/regeneratekey/action"),
    ("monitor", "POST", f"/subscriptions/{SUB}/metrics:getBatch?metricnamespace=Microsoft.MachineLearningServices%2Fworkspaces",
     "Microsoft.Insights/metrics/read"),
    ("runhistory", "GET", "/history/v1.0/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/"
     "w/computes/CPU-Cluster/runs?api-version=v1.0&$filter=Status%20ne%20%27Completed%27",
     "Microsoft.MachineLearningServices/workspaces/experiments/runs/read"),
    ("keyvault", "GET", "/secrets?api-version=7.6", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ("keyvault", "GET", "/secrets?api-version=7.6&$skiptoken=eyJ", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ("keyvault", "GET", "/secrets/stdata01-key/", "Microsoft.KeyVault/vaults/secrets/getSecret/action"),
    ("keyvault", "GET", "/secrets/stdata01-key", "Microsoft.KeyVault/vaults/secrets/getSecret/action"),
    ("keyvault", "PUT", "/secrets/stdata01-key", "Microsoft.KeyVault/vaults/secrets/setSecret/action"),
    # ARM paths compare without case, as Azure compares them.
    ("arm", "post", WS.lower() + "/computes/ci-alice/stop", f"{ML}/workspaces/computes/stop/action"),
    ("arm", "GET", LOC.lower() + "/computeoperationsstatus/abc", f"{ML}/locations/computeoperationsstatus/read"),
    # No RBAC action: a token request, notifications.
    ("identity", "GET", "/msi/token?api-version=2019-08-01&resource=https://management.azure.com", None),
    ("notify", "POST", "/hooks/ops", None),
    ("notify", "POST", "/api/events?api-version=2018-01-01", None),
    # Resource Graph (discovery) answers with what the identity may already read: no action of its own.
    ("arm", "POST", "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01", None),
]


@pytest.mark.parametrize(("service", "method", "path", "action"), EXAMPLES, ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_each_request_maps_to_its_action(service, method, path, action):
    assert action_for(service, method, path) == action


def test_every_route_has_an_example():
    covered = {route_for(s, m, p) for s, m, p, _ in EXAMPLES}
    missing = [f"{r.service} {r.method} {r.pattern}" for r in ROUTES if r not in covered]
    assert not missing, f"routes without an example: {missing}"


@pytest.mark.parametrize(("service", "method", "path"), [
    pytest.param("arm", "POST", f"{WS}/computes/gpu-cluster/listNodes", id="listNodes is not used"),
    pytest.param("arm", "DELETE", f"{WS}/computes/ci-alice", id="no delete"),
    pytest.param("arm", "PUT", f"{WS}/computes/ci-alice", id="PUT of a compute is not a PATCH"),
    pytest.param("arm", "POST", f"{WS}/computes/ci-alice/start", id="start"),
    pytest.param("arm", "POST", f"{WS}/listKeys", id="workspace keys"),
    pytest.param("arm", "GET", f"{WS}/computes/ci-alice/stop", id="GET of an action"),
    pytest.param("arm", "POST", f"{WS}/computes/ci-alice/stop/more", id="a deeper path"),
    pytest.param("arm", "DELETE", f"{WS}/jobs/job-1", id="delete a job"),
    pytest.param("arm", "DELETE", f"{WS}/onlineEndpoints/scoring-api", id="delete an endpoint"),
    pytest.param("arm", "PUT", f"{WS}/onlineEndpoints/scoring-api", id="change an endpoint's traffic"),
    pytest.param("arm", "GET", f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Insights/metrics", id="ARM metrics"),
    pytest.param("keyvault", "DELETE", "/secrets/stdata01-key", id="delete a secret"),
    pytest.param("keyvault", "GET", "/secrets/stdata01-key/versions", id="list versions"),
    pytest.param("keyvault", "GET", "/deletedsecrets/stdata01-key", id="deleted secrets"),
    pytest.param("keyvault", "PATCH", "/secrets/stdata01-key/3f1c", id="update properties"),
    pytest.param("monitor", "POST", "/v1/workspaces/abc/query", id="Log Analytics"),
    pytest.param("graph", "GET", "/me", id="unknown service"),
    pytest.param("arm", "GET", "/providers/Microsoft.ResourceGraph/resources", id="Resource Graph takes POST only"),
])
def test_a_request_outside_the_map_raises_naming_it(service, method, path):
    with pytest.raises(Unmapped, match=re.escape(f"{service} {method} {path.split('?')[0]}")):
        action_for(service, method, path)


def test_each_action_has_one_scope_and_data_actions_are_key_vaults():
    by_action: dict[str, set[Scope]] = {}
    for route in ROUTES:
        by_action.setdefault(route.grant.action, set()).add(route.grant.scope)
        assert route.grant.data_action == (route.service == "keyvault"), route
        assert re.fullmatch(r"Microsoft\.\w+(/\w+)+/(read|write|delete|action)", route.grant.action), route.grant.action
        assert route.grant.reason
    assert all(len(scopes) == 1 for scopes in by_action.values()), by_action
    assert set(NO_ACTION) == {"identity", "notify"}


def test_infra_grants_exactly_the_actions_of_the_map_at_their_scopes():
    grants_in_infra, problems = granted()
    assert not problems, "infra/autopilot role assignments that could not be read:\n  " + "\n  ".join(problems)
    in_map = {(g.action, g.scope) for g in grants().values()}
    differences = difference(in_map, grants_in_infra)
    assert not differences, "infra/ grants differ from shared/adapters/permissions.py:\n  " + "\n  ".join(differences)


ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_the_map():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Permissions\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$", section, re.MULTILINE)
    assert [(a, s.strip(), r.strip()) for a, s, r in rows] == [(g.action, str(g.scope), g.reason) for g in grants().values()]


def test_the_readme_counts_the_actions_of_the_map():
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Permissions\n", 1)[1].split("\n## ", 1)[0]
    counts = re.findall(r"These (\d+) actions\s+are the whole set", section)
    assert counts == [str(len(grants()))], f"README says {counts} actions; the map has {len(grants())}"


@pytest.mark.parametrize(("role", "actions"), [("workspace operator", "workspace_actions"),
                                               ("subscription reader", "subscription_actions")])
def test_infra_readme_lists_every_action_each_custom_role_carries(role, actions):
    """infra/README.md's role table names each action of rbac.tf's lists (whole, or by its last segments)."""
    readme = (ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| custom *AML Autopilot {role}* |")]
    named = [n for n in re.findall(r"`([^`]+)`", row) if "/" in n]
    listed = [unquote(a) for a in locals_of(load(MODULE))[actions]]
    absent = sorted(a for a in listed if not any(a == n or a.endswith("/" + n) for n in named))
    assert not absent, f"infra/README.md's {role} row does not name {absent}"

"""Discovery through azure-mgmt-resourcegraph against the emulator's Resource Graph query API."""

from __future__ import annotations

import pytest

from local.emulator.client import EmulatorClient
from shared.adapters.discovery import ResourceGraph
from shared.errors import AzureError
from shared.settings import Settings

SUBS = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 4)]


def fleet(per_subscription: int, tagged_every: int = 2) -> dict:
    workspaces = [
        {"subscriptionId": sub, "resourceGroup": f"rg-{s}", "name": f"mlw-{s}-{i:04d}", "location": "westeurope",
         "tags": {"Autopilot": "On"} if i % tagged_every == 0 else {}}
        for s, sub in enumerate(SUBS) for i in range(per_subscription)
    ]
    return {"subscriptionId": SUBS[0], "workspaces": workspaces,
            "managementGroups": {"Prod-MG": SUBS[1:]}}


def graph(emulator: EmulatorClient, credential, scopes: str, tag: str = "") -> tuple[ResourceGraph, Settings]:
    settings = Settings.from_env({"ALLOWED_SCOPES": scopes, "DISCOVERY_TAG": tag, "ARM_ENDPOINT": emulator.url},
                                 require_storage=False)
    return ResourceGraph(settings, credential), settings


def test_a_subscription_scope_finds_every_workspace_of_that_subscription_across_pages(emulator, credential):
    emulator.reset(fleet(1100))
    rg, settings = graph(emulator, credential, f"/subscriptions/{SUBS[0]}")
    found = rg.workspaces(settings.scopes, settings.discovery_tag)
    assert len(found) == 1100
    assert {w.subscription for w in found} == {SUBS[0]}
    assert rg.requests == 2  # 1000 rows, then the rest with the $skipToken
    bodies = [e["body"] for e in emulator.journal(path="Microsoft.ResourceGraph")]
    assert bodies[0]["options"]["$top"] == 1000 and bodies[0]["options"]["resultFormat"] == "objectArray"
    assert bodies[1]["options"]["$skipToken"]
    assert all(e["api_version"] == "2021-03-01" for e in emulator.journal(path="Microsoft.ResourceGraph"))


def test_a_management_group_scope_finds_the_workspaces_of_its_subscriptions_and_the_tag_filter_ignores_the_values_case(
        emulator, credential):
    emulator.reset(fleet(10))
    rg, settings = graph(emulator, credential, "/providers/Microsoft.Management/managementGroups/prod-mg", "Autopilot=on")
    found = rg.workspaces(settings.scopes, settings.discovery_tag)
    assert sorted(w.name for w in found) == sorted(f"mlw-{s}-{i:04d}" for s in (1, 2) for i in range(0, 10, 2))


def test_subscriptions_and_management_groups_together_are_one_set_without_repeats(emulator, credential):
    emulator.reset(fleet(3, tagged_every=1))
    rg, settings = graph(emulator, credential,
                         f"/subscriptions/{SUBS[0]},/subscriptions/{SUBS[1]},/providers/Microsoft.Management/managementGroups/Prod-MG")
    assert len(rg.workspaces(settings.scopes, settings.discovery_tag)) == 9


def test_a_query_the_emulator_does_not_understand_is_refused_in_resource_graphs_error_shape(emulator, credential):
    emulator.reset(fleet(1))
    answer = emulator.arm(credential, "POST", "/providers/Microsoft.ResourceGraph/resources",
                          {"subscriptions": SUBS, "query": "Resources | summarize count() by type"}, api_version="2022-10-01")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "BadRequest"
    assert [d["code"] for d in error["details"]] == ["InvalidQuery", "UnsupportedQuery"]


def test_a_refused_discovery_is_an_error_naming_resource_graph(emulator, credential):
    emulator.reset(fleet(1))
    emulator.fault(method="POST", path="ResourceGraph", status=403, times=1)
    rg, settings = graph(emulator, credential, f"/subscriptions/{SUBS[0]}")
    with pytest.raises(AzureError, match="Resource Graph: discover workspaces: HTTP 403"):
        rg.workspaces(settings.scopes, settings.discovery_tag)


def test_resource_graph_says_each_principals_quota_and_refuses_the_sixteenth_query_in_five_seconds(emulator, credential):
    emulator.reset(fleet(1))
    body = {"subscriptions": SUBS, "query": "Resources | where type =~ 'microsoft.machinelearningservices/workspaces'"}
    with emulator.arm_client(credential, retry_total=0) as client:
        from azure.core.rest import HttpRequest

        answers = [client.send_request(HttpRequest("POST", f"{emulator.url}/providers/Microsoft.ResourceGraph/resources",
                                                   params={"api-version": "2021-03-01"}, json=body)) for _ in range(16)]
    assert [a.status_code for a in answers] == [200] * 15 + [429]
    assert [a.headers["x-ms-user-quota-remaining"] for a in answers[:3]] == ["14", "13", "12"]
    assert answers[0].headers["x-ms-user-quota-resets-after"] == "00:00:05"
    assert answers[15].json()["error"]["code"] == "RateLimiting" and int(answers[15].headers["Retry-After"]) >= 1

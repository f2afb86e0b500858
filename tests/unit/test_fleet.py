"""The allowed workspaces: explicit ones plus those discovered in scopes, cached for the refresh interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.discovery import query_text
from shared.errors import AzureError
from shared.fleet import Resolver, cache_key
from shared.model import ResourceId
from shared.settings import Scope, Settings, SettingsError

SUB = "00000000-0000-0000-0000-0000000000a1"
WS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/explicit"
BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def ws(name: str, sub: str = SUB) -> ResourceId:
    return ResourceId.parse(f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/{name}")


class Table:
    """The ledger's discovery rows, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[datetime, list[str]]] = {}
        self.fail = False

    def discovered(self, key: str) -> tuple[datetime, list[str]] | None:
        if self.fail:
            raise AzureError("ledger: down", transient=True)
        return self.rows.get(key)

    def put_discovered(self, key: str, at: datetime, ids: list[str]) -> None:
        self.rows[key] = (at, ids)


class Graph:
    def __init__(self, found: tuple[ResourceId, ...]) -> None:
        self.found = found
        self.calls = 0
        self.error: AzureError | None = None

    def workspaces(self, scopes, tag):
        self.calls += 1
        if self.error:
            raise self.error
        return self.found


def resolver(table: Table, graph: Graph, **env: str) -> Resolver:
    settings = Settings.from_env({**BASE, "ALLOWED_SCOPES": f"/subscriptions/{SUB}", "ALLOWED_WORKSPACES": WS, **env})
    return Resolver(settings, lambda: table, lambda: graph)


def test_without_scopes_the_settings_are_used_as_they_are_and_nothing_is_asked():
    graph, table = Graph(()), Table()
    settings = Settings.from_env({**BASE, "ALLOWED_WORKSPACES": WS})
    assert Resolver(settings, lambda: table, lambda: graph).settings(NOW) is settings
    assert graph.calls == 0 and not table.rows


def test_discovered_workspaces_join_the_explicit_ones_each_once_whatever_the_spelling():
    graph = Graph((ws("EXPLICIT"), ws("found")))
    allowed = resolver(Table(), graph).settings(NOW).workspaces
    assert [w.name for w in allowed] == ["explicit", "found"]


def test_the_set_is_trusted_for_the_refresh_interval_then_asked_again():
    graph, table = Graph((ws("a"),)), Table()
    r = resolver(table, graph, DISCOVERY_REFRESH_MINUTES="30")
    r.settings(NOW)
    r.settings(NOW + timedelta(minutes=29))
    assert graph.calls == 1
    graph.found = (ws("a"), ws("b"))
    assert [w.name for w in r.settings(NOW + timedelta(minutes=30)).workspaces] == ["explicit", "a", "b"]
    assert graph.calls == 2


def test_a_cold_process_reads_the_ledgers_fresh_set_instead_of_asking_resource_graph():
    table = Table()
    resolver(table, Graph((ws("a"),))).settings(NOW)
    second = Graph(())
    assert [w.name for w in resolver(table, second).settings(NOW + timedelta(minutes=5)).workspaces] == ["explicit", "a"]
    assert second.calls == 0


def test_a_workspace_that_left_the_scope_is_no_longer_allowed_after_the_interval():
    graph = Graph((ws("a"),))
    r = resolver(Table(), graph)
    assert r.settings(NOW).workspace(ws("a").id)
    graph.found = ()
    with pytest.raises(SettingsError, match="is not an allowed workspace"):
        r.settings(NOW + timedelta(hours=1)).workspace(ws("a").id)


def test_a_ledger_set_dated_after_this_clock_is_not_trusted_and_resource_graph_is_asked():
    table = Table()
    table.rows[cache_key(resolver(table, Graph(())).base)] = (datetime(9999, 1, 1, tzinfo=UTC), [ws("left").id])
    graph = Graph((ws("a"),))
    assert [w.name for w in resolver(table, graph).settings(NOW).workspaces] == ["explicit", "a"] and graph.calls == 1


def test_a_ledger_set_keeps_only_aml_workspaces_of_the_scopes_subscriptions():
    table = Table()
    other = "00000000-0000-0000-0000-0000000000b2"
    vault = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    table.rows[cache_key(resolver(table, Graph(())).base)] = (NOW, [ws("a").id, ws("b", other).id, vault])
    graph = Graph(())
    assert [w.name for w in resolver(table, graph).settings(NOW + timedelta(minutes=1)).workspaces] == ["explicit", "a"]


def test_resource_graph_rows_outside_the_scopes_subscriptions_are_dropped():
    from shared.fleet import in_scopes

    settings = resolver(Table(), Graph(())).base
    assert in_scopes(ws("A"), settings.scopes) and not in_scopes(ws("a", "00000000-0000-0000-0000-0000000000b2"), settings.scopes)


def test_while_one_caller_refreshes_the_set_the_others_go_on_with_the_known_one_without_waiting():
    import threading

    graph = Graph((ws("a"),))
    r = resolver(Table(), graph)
    r.settings(NOW)
    asked, release = threading.Event(), threading.Event()

    def slow(scopes, tag):
        asked.set()
        release.wait(10)
        return (ws("a"), ws("b"))

    graph.workspaces = slow
    later = NOW + timedelta(hours=1)
    refresher = threading.Thread(target=r.settings, args=(later,))
    refresher.start()
    assert asked.wait(10)
    try:
        assert [w.name for w in r.settings(later).workspaces] == ["explicit", "a"]  # answered while Resource Graph is asked
    finally:
        release.set()
        refresher.join(10)
    assert [w.name for w in r.settings(later).workspaces] == ["explicit", "a", "b"]


def test_a_resource_graph_outage_keeps_the_last_known_set_and_asks_again_a_minute_later():
    graph = Graph((ws("a"),))
    r = resolver(Table(), graph)
    r.settings(NOW)
    graph.error = AzureError("Resource Graph: HTTP 503", transient=True, status=503)
    later = NOW + timedelta(hours=2)
    assert [w.name for w in r.settings(later).workspaces] == ["explicit", "a"]
    r.settings(later + timedelta(seconds=30))
    assert graph.calls == 2
    r.settings(later + timedelta(minutes=1))
    assert graph.calls == 3


def test_with_no_set_known_a_resource_graph_failure_is_transient_for_the_platform_to_retry():
    graph = Graph(())
    graph.error = AzureError("Resource Graph: HTTP 429", transient=True, status=429)
    with pytest.raises(AzureError, match="discovery: no workspace set known yet") as caught:
        resolver(Table(), graph).settings(NOW)
    assert caught.value.transient


def test_changing_the_scopes_or_the_tag_starts_a_new_cache_row():
    one = Settings.from_env({**BASE, "ALLOWED_SCOPES": f"/subscriptions/{SUB}"})
    tagged = Settings.from_env({**BASE, "ALLOWED_SCOPES": f"/subscriptions/{SUB}", "DISCOVERY_TAG": "autopilot=on"})
    assert cache_key(one) != cache_key(tagged)
    assert cache_key(one) == cache_key(Settings.from_env({**BASE, "ALLOWED_SCOPES": f"/SUBSCRIPTIONS/{SUB.upper()}/"}))


@pytest.mark.parametrize(("raw", "scopes"), [
    (f"/subscriptions/{SUB}", (Scope("subscription", SUB),)),
    (f" /subscriptions/{SUB.upper()} , /providers/Microsoft.Management/managementGroups/Prod-MG ",
     (Scope("subscription", SUB), Scope("managementGroup", "Prod-MG"))),
])
def test_scopes_are_subscriptions_or_management_groups(raw, scopes):
    assert Settings.from_env({**BASE, "ALLOWED_SCOPES": raw}).scopes == scopes


@pytest.mark.parametrize("raw", [
    "/subscriptions/not-a-guid",
    f"/subscriptions/{SUB}/resourceGroups/rg",
    "/providers/Microsoft.Management/managementGroups/bad/../x",
    "/providers/Microsoft.Management/managementGroups/ends-with.",
    "tenant",
])
def test_anything_else_as_a_scope_is_refused_with_the_settings_name(raw):
    with pytest.raises(SettingsError, match=r"^ALLOWED_SCOPES: .* is neither /subscriptions/<guid> nor"):
        Settings.from_env({**BASE, "ALLOWED_SCOPES": raw})


def test_neither_workspaces_nor_scopes_is_refused():
    with pytest.raises(SettingsError, match=r"^ALLOWED_WORKSPACES: required: .* unless ALLOWED_SCOPES"):
        Settings.from_env(BASE)


@pytest.mark.parametrize("raw", ["a'b=c", "k=it's", "a/b=c", "=v", "k=ends\\", "k=a\\'b", "k=line\nbreak", "ta\tb=v"])
def test_a_tag_filter_that_could_break_out_of_the_query_is_refused(raw):
    with pytest.raises(SettingsError, match=r"^DISCOVERY_TAG: expected key=value or key"):
        Settings.from_env({**BASE, "ALLOWED_SCOPES": f"/subscriptions/{SUB}", "DISCOVERY_TAG": raw})


@pytest.mark.parametrize(("tag", "kql"), [
    (None, "Resources | where type =~ 'microsoft.machinelearningservices/workspaces' | project id, subscriptionId, location"),
    (("autopilot", "on"), "Resources | where type =~ 'microsoft.machinelearningservices/workspaces' | "
                          "where tags['autopilot'] =~ 'on' | project id, subscriptionId, location"),
    (("autopilot", None), "Resources | where type =~ 'microsoft.machinelearningservices/workspaces' | "
                          "where isnotempty(tags['autopilot']) | project id, subscriptionId, location"),
])
def test_the_discovery_query_asks_for_aml_workspaces_with_the_tag_filter(tag, kql):
    assert query_text(tag) == kql


def test_the_query_refuses_a_tag_filter_that_is_no_kql_literal_whatever_reached_it():
    with pytest.raises(ValueError, match="cannot be a KQL literal"):
        query_text(("k", "ends\\"))


def test_a_fleets_allow_list_finds_any_of_its_thousand_workspaces_whatever_the_spelling_and_nothing_else():
    from shared.events import Allowed

    fleet = tuple(ws(f"mlw-{i:04d}", f"00000000-0000-0000-0000-{i % 50:012d}") for i in range(1000))
    allowed = Allowed(fleet)
    assert allowed.workspace(fleet[999].id.upper().replace("PROVIDERS", "providers") + "/ ") is fleet[999]
    assert allowed.workspace(fleet[0].id + "x") is None
    assert allowed.vault(fleet[0].id) is None

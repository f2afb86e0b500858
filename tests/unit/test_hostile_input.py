"""Hostile input at every door: names that try to steer a URL, poison payloads, forged queue messages.

Each is refused with one line naming what is wrong, and nothing downstream of the refusal runs.
"""

from __future__ import annotations

import copy
import json

import pytest

from shared import names
from shared.events import Allowed, Ignored, Rejected, parse_alert, parse_any, parse_event
from shared.model import ResourceId, path_segment
from shared.payload import MAX_EVENT_BYTES, PayloadError, load_json
from shared.work import MAX_ITEM_BYTES, BadWorkItem, Kind, WorkItem
from tests.unit.test_events import ALLOWED, KV, WS, event, load

STEERING = [
    "../../mlw-prod/computes/gpu-cluster",
    "gpu-cluster?api-version=2020-01-01&x=",
    "gpu-cluster#frag",
    "gpu%2F..%2Fother",
    "..",
    ".",
    "gpu cluster",
    "gpu-clüster",
    "",
    "a" * 40,
]


def alert_with(**dims: str) -> dict:
    payload = copy.deepcopy(load("alert-unusable-nodes.json"))
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [{"name": k, "value": v} for k, v in dims.items()]
    return payload


@pytest.mark.parametrize("name", [n for n in STEERING if n])
def test_a_cluster_name_that_is_not_an_aml_compute_name_is_refused_as_forged(name):
    parsed = parse_alert(alert_with(ClusterName=name), ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security and "ClusterName" in parsed.reason


@pytest.mark.parametrize("family", ["../x", "standardNCSv3Family?x=1", "x" * 200])
def test_a_vm_family_that_is_not_a_family_name_is_refused_as_forged(family):
    payload = copy.deepcopy(load("alert-quota.json"))
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [{"name": "VmFamilyName", "value": family}]
    parsed = parse_alert(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security


@pytest.mark.parametrize("name", ["demo_cluster1_dsv2", "gpu-cluster", "CPU-Cluster", "ci"])
def test_compute_names_as_azure_spells_them_pass(name):
    assert names.COMPUTE.check(name) is None


@pytest.mark.parametrize("run_id", ["../computes/x", "run?x=1", "run/1", "a" * 300])
def test_a_run_id_that_is_not_a_job_name_is_refused_as_forged(run_id):
    payload = event("run-failed.eventgrid.json")
    payload["data"]["runId"] = run_id
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security and "run id" in parsed.reason


@pytest.mark.parametrize(("field", "value"), [("ObjectName", "../keys/x"), ("ObjectName", "secret?api-version=1"),
                                              ("Version", "../x"), ("VaultName", "other-vault")])
def test_a_key_vault_event_naming_an_impossible_secret_is_refused_as_forged(field, value):
    payload = event("secret-near-expiry.eventgrid.json")
    payload["data"][field] = value
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security


@pytest.mark.parametrize("exp", [1e18, -1e18, "soon", [1], {"a": 1}, True])
def test_an_expiry_no_clock_can_hold_is_refused_with_one_line(exp):
    payload = event("secret-near-expiry.eventgrid.json")
    payload["data"]["EXP"] = exp
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "EXP" in parsed.reason and "\n" not in parsed.reason


def deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize("where", ["data", "root", "batch"])
def test_a_deeply_nested_payload_is_refused_without_recursing(where):
    payload = event("run-failed.eventgrid.json")
    if where == "data":
        payload["data"] = deep(5000)
        parsed = parse_event(payload, ALLOWED)
    elif where == "root":
        payload["extra"] = deep(5000)
        parsed = parse_event(payload, ALLOWED)
    else:
        (parsed,) = parse_any([payload, deep(5000)], ALLOWED)
    assert isinstance(parsed, Rejected) and "nested deeper" in parsed.reason


def test_a_deeply_nested_data_string_is_refused_without_recursing():
    payload = event("run-failed.eventgrid.json")
    payload["data"] = "[" * 100_000
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "nested deeper" in parsed.reason


def test_a_lone_surrogate_in_an_id_is_refused_not_crashed_on():
    payload = event("run-failed.eventgrid.json")
    payload["id"] = "abc\ud800"
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "not valid Unicode" in parsed.reason


def test_an_oversized_field_is_refused_before_it_becomes_a_queue_message():
    payload = event("run-failed.eventgrid.json")
    payload["subject"] = "experiments/x/runs/" + "r" * 70_000
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "longer than" in parsed.reason


def test_an_oversized_status_is_cut_so_the_work_item_fits_the_queue():
    payload = event("run-failed.eventgrid.json")
    payload["data"]["runStatus"] = "Failed" + " " * 70_000 + "x"
    parsed = parse_event(payload, ALLOWED)
    from shared.work import from_event

    item = from_event(parsed) if not isinstance(parsed, Rejected | Ignored) else None
    assert item is None or len(item.to_json()) <= MAX_ITEM_BYTES


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"[" * 50_000, "nested deeper"),
    (b'{"a": NaN}', "NaN is not JSON"),
    (b"x" * (MAX_EVENT_BYTES + 1), "over the"),
    (b'"\\ud800"', "not valid Unicode"),
    (b"", "not JSON"),
])
def test_raw_bytes_are_bounded_before_they_are_parsed(raw, reason):
    with pytest.raises(PayloadError, match=reason):
        load_json(raw)


def test_the_subscription_validation_handshake_is_recognised_as_such():
    handshake = {"id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": "/subscriptions/x/resourceGroups/y",
                 "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                 "eventTime": "2018-01-25T22:12:19.4556811Z", "dataVersion": "1",
                 "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}
    parsed = parse_event(handshake, ALLOWED)
    assert isinstance(parsed, Ignored) and "subscription" in parsed.reason.lower()


# --- URLs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", ""])
def test_no_name_can_be_a_dot_segment_in_a_url(name):
    with pytest.raises(ValueError):
        WS.path("computes", name)


def test_every_segment_of_a_resource_url_is_quoted():
    assert WS.path("computes", "x?api-version=1").endswith("/computes/x%3Fapi-version%3D1")
    assert path_segment("a/b") == "a%2Fb"
    rg = ResourceId.parse("/subscriptions/s/resourceGroups/rg(1)/providers/Microsoft.MachineLearningServices/workspaces/w")
    assert rg.path() == "/subscriptions/s/resourceGroups/rg%281%29/providers/Microsoft.MachineLearningServices/workspaces/w"


# --- the queue -----------------------------------------------------------------------------------------


def item(**overrides: object) -> bytes:
    body = {"kind": "unusable-nodes", "target": WS.id, "trigger": "t-1", "params": {"cluster": "gpu-cluster"}, **overrides}
    return json.dumps(body).encode()


def test_a_valid_work_item_comes_back_with_the_allowed_spelling_of_its_target():
    back = WorkItem.from_json(item(target=WS.id.lower()), ALLOWED)
    assert back == WorkItem(Kind.UNUSABLE_NODES, WS.id, "t-1", {"cluster": "gpu-cluster"})


@pytest.mark.parametrize(("case", "body", "security"), [
    ("a workspace that is not allowed",
     item(target="/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/evil"), True),
    ("a rotation of a vault that is not allowed", item(kind="rotate", target=WS.id, params={}), True),
    ("a cluster name that steers a URL", item(params={"cluster": "../../other/computes/x"}), True),
    ("a parameter the kind does not have", item(params={"cluster": "gpu", "max_nodes": 0}), True),
    ("a run id that is a path", item(kind="run-ended", params={"run": "a/../b"}), True),
    ("a field a work item does not have", item(kind="deployment-sweep", params={}, max_deletes=0), True),
    ("a not-responding run that steers a URL", item(kind="not-responding", params={"run": "a%2F..%2Fb"}), True),
    ("a deployment sweep's label that is not plain", item(kind="deployment-sweep", params={"scenario": "x\nERROR forged"}), True),
    ("a not-responding count that is text", item(kind="not-responding", params={"value": "1"}), True),
    ("an unknown kind", item(kind="delete-workspace"), False),
    ("not JSON", b"{", False),
    ("not UTF-8", b"\xff\xff", False),
    ("a list", b"[]", False),
    ("too large", item(trigger="t" * 70_000), False),
    ("a run-ended item that names no run", item(kind="run-ended", params={}), False),
    ("a run-ended item whose run is empty", item(kind="run-ended", params={"run": "", "status": "Failed"}), True),
])
def test_a_queue_message_that_is_not_an_allowed_work_item_is_refused(case, body, security):
    with pytest.raises(BadWorkItem) as refused:
        WorkItem.from_json(body, ALLOWED)
    assert refused.value.security is security and "\n" not in str(refused.value)


def test_a_rotation_work_item_is_checked_against_the_vaults():
    body = item(kind="rotate", target=KV.id, params={"secret": "stmldemo-key", "forced": True})
    assert WorkItem.from_json(body, ALLOWED).target == KV.id
    assert WorkItem.from_json(item(kind="rotate", target=KV.id, params={}), Allowed((WS,), (KV,))).params == {}


def test_a_metric_value_beyond_a_float_is_no_value_not_a_crash():
    payload = copy.deepcopy(load("alert-unusable-nodes.json"))
    payload["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] = 10 ** 400
    parsed = parse_alert(payload, ALLOWED)
    assert not isinstance(parsed, Rejected) and parsed.value is None


def test_alert_dimensions_are_cut_and_escaped_before_they_reach_a_log_line():
    payload = copy.deepcopy(load("alert-unusable-nodes.json"))
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"].append(
        {"name": "Note", "value": "x\nWARNING autopilot.intake: security: forged" + "y" * 200_000})
    line = parse_alert(payload, ALLOWED).describe()
    assert "\n" not in line and len(line) < 1000


@pytest.mark.parametrize("tag", ["²", "9999999999999", "-5", "1e3", " 60 "])
def test_an_idle_threshold_tag_no_clock_can_hold_falls_back_to_the_setting(tag):
    from datetime import timedelta

    from shared.policy.common import Exemptions
    from shared.policy.idle import IdleRules, threshold_for
    from tests.unit.builders import instance

    rules = IdleRules(timedelta(hours=2), timedelta(hours=1), timedelta(0), False, "autopilot-idle-minutes", 0, Exemptions("x"))
    got, _ = threshold_for(instance(tags={"Autopilot-Idle-Minutes": tag}), rules)
    assert got == (timedelta(minutes=60) if tag.strip() == "60" else timedelta(hours=2))


@pytest.mark.parametrize("days", ["²", "99999999", "0", "-1", "3651"])
def test_a_validity_tag_that_is_not_a_sane_number_of_days_is_no_validity(days):
    from datetime import UTC, datetime

    from shared.policy.rotation import ManagedSecret

    secret = ManagedSecret("kv", "s", "v1", {"ValidityPeriodDays": days}, datetime(2026, 1, 1, tzinfo=UTC), None)
    assert secret.validity is None


def test_the_exempt_name_pattern_ignores_case_as_arm_names_do():
    from shared.settings import Settings

    s = Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "x", "EXEMPT_NAME_PATTERN": "^prod-"})
    assert s.exempt_name_pattern is not None and s.exempt_name_pattern.search("Prod-gpu")


def test_an_event_over_event_grids_1_mb_is_refused_whole():
    payload = event("run-failed.eventgrid.json")
    payload["data"]["padding"] = "x" * (MAX_EVENT_BYTES + 1)
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "larger than the 1,048,576-byte limit" in parsed.reason


def test_a_key_given_twice_in_one_object_is_refused_not_guessed():
    with pytest.raises(PayloadError, match="key 'dryRun' appears twice"):
        load_json(b'{"vault": "kv", "secret": "s", "dryRun": true, "dryRun": false}')


@pytest.mark.parametrize("address", [
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/..",
    "/subscriptions/s/resourceGroups/../providers/Microsoft.Storage/storageAccounts/st1",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/st1?api-version=1",
    "/subscriptions/s/resourceGroups/g%2F..%2Fx/providers/Microsoft.Storage/storageAccounts/st1",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/st_1",
])
def test_a_provider_address_that_could_reach_another_url_names_no_storage_account(address):
    from shared.policy.rotation import ManagedSecret

    account = ManagedSecret("kv", "s", "v1", {"ProviderAddress": address}, None, None).account()
    assert isinstance(account, str) and account.startswith("ProviderAddress")


def test_a_provider_address_in_another_case_is_the_same_storage_account():
    from shared.policy.rotation import ManagedSecret

    address = "/subscriptions/s/resourcegroups/RG-ml/providers/microsoft.storage/storageaccounts/StMlDemo"
    account = ManagedSecret("kv", "s", "v1", {"ProviderAddress": address}, None, None).account()
    assert isinstance(account, ResourceId) and account.name == "StMlDemo"


@pytest.mark.parametrize("address", [
    "/subscriptions/s/resourceGroups/rg\ud800/providers/Microsoft.Storage/storageAccounts/acct",
    "/subscriptions/\udfff/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/\u212aacct",
])
def test_a_provider_address_that_is_not_text_or_folds_into_ascii_names_no_storage_account(address):
    from shared.policy.rotation import ManagedSecret

    account = ManagedSecret("kv", "s", "v1", {"ProviderAddress": address}, None, None).account()
    assert isinstance(account, str) and account.startswith("ProviderAddress") and "\n" not in account


@pytest.mark.parametrize("fixture", ["run-not-responding.eventgrid.json", "run-failed.eventgrid.json"])
def test_a_run_event_whose_run_id_is_not_the_run_its_subject_names_is_refused_as_forged(fixture):
    payload = event(fixture)
    payload["data"]["runId"] = "someone-elses-run"
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security and "is not the run its subject names" in parsed.reason
    payload["data"]["runId"] = payload["subject"].rsplit("/", 1)[1].upper()  # a name in another case is the same run
    assert not isinstance(parse_event(payload, ALLOWED), Rejected)


LOOK_ALIKES = ["\u212a", "\u0130", "\u017f"]  # Kelvin sign, dotted capital I, long s: str.lower() folds them towards ASCII


def test_a_look_alike_letter_never_folds_into_an_allowed_id_or_name():
    from shared.model import ResourceId, fold, name_key
    vault = ResourceId.parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                             "Microsoft.KeyVault/vaults/kv-ml-demo")
    allowed = Allowed((), (vault,))
    kelvin = vault.id.replace("KeyVault", "\u212aeyVault").replace("kv-ml", "\u212av-ml")
    assert "\u212a".lower() == "k"  # what str.lower would have let through
    assert allowed.vault(kelvin) is None and not vault.same_as(kelvin)
    assert allowed.vault(vault.id.upper()) == vault  # ASCII case still folds, as ARM compares
    assert name_key("\u212av-ml-demo") != name_key("kv-ml-demo")
    assert fold("RG-Équipe") == "rg-équipe"  # other letters fold as ARM (and the ledger's keys) fold them
    for letter in LOOK_ALIKES:
        assert not fold(letter).isascii() and not fold(f"kv-ml-demo{letter}").isascii()


@pytest.mark.parametrize("value", [{"a": 1}, ["cpu-cluster"], None, True, "", "  "])
def test_a_resource_naming_dimension_whose_value_is_no_text_is_refused_not_read_as_every_cluster(value):
    parsed = parse_alert(alert_with(ClusterName=value), ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security and "ClusterName" in parsed.reason
    other = parse_alert(alert_with(ClusterName="cpu-cluster", Region=value), ALLOWED)  # a dimension naming nothing: read as it is
    assert not isinstance(other, Rejected)


def test_a_resource_naming_dimension_given_twice_is_refused_whatever_its_spelling():
    payload = alert_with(ClusterName="gpu-cluster")
    dims = payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"]
    dims.insert(0, {"name": "clustername", "value": "cpu-cluster"})
    parsed = parse_alert(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and "twice" in parsed.reason


@pytest.mark.parametrize(("signal", "service"), [("Metric", "Prometheus"), ("Metric", "CostAlerts"), (None, "CostAlerts"),
                                                 ("Log", "Log Analytics"), ("ActivityLog", "ServiceHealth")])
def test_an_alert_of_a_kind_not_acted_on_is_acknowledged_whatever_it_targets(signal, service):
    payload = alert_with(ClusterName="gpu-cluster")
    essentials = payload["data"]["essentials"]
    essentials.update(signalType=signal, monitoringService=service,
                      alertTargetIDs=["/subscriptions/ffffffff-0000-0000-0000-00000000dead"])
    assert isinstance(parse_alert(payload, ALLOWED), Ignored)
    essentials.update(signalType="Metric", monitoringService="Platform")  # the kind acted on: its target is checked
    forged = parse_alert(payload, ALLOWED)
    assert isinstance(forged, Rejected) and forged.security


def test_a_named_dimension_padded_past_the_dimension_bound_is_the_named_dimension():
    # Cut to 256 characters and trimmed, the name is "ClusterName" where the worker looks the dimension up.
    padded = "ClusterName" + " " * 250 + "x"
    assert isinstance(parse_alert(alert_with(**{padded: ""}), ALLOWED), Rejected)
    twice = parse_alert(alert_with(**{"ClusterName": "a-c", padded: "b-c"}), ALLOWED)
    assert isinstance(twice, Rejected) and "twice" in twice.reason


@pytest.mark.parametrize("field", ["signalType", "monitoringService"])
@pytest.mark.parametrize("value", [["Prometheus"], {"a": "Log"}])
def test_an_alert_kind_that_is_no_text_is_refused_not_read_as_a_metric_alert(field, value):
    payload = alert_with(ClusterName="gpu-cluster")
    payload["data"]["essentials"][field] = value
    parsed = parse_alert(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and field in parsed.reason

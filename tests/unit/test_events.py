"""Parsing and authenticating inbound payloads: every schema, every way a payload can be wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from shared.events import (
    AlertFired,
    Allowed,
    Ignored,
    Rejected,
    RunEnded,
    RunNotResponding,
    SecretExpiring,
    parse_alert,
    parse_any,
    parse_event,
)
from shared.model import ResourceId
from shared.work import BadWorkItem, Kind, WorkItem, from_event

PAYLOADS = Path(__file__).parent.parent / "payloads"
WS = ResourceId.parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                      "Microsoft.MachineLearningServices/workspaces/mlw-demo")
KV = ResourceId.parse("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                      "Microsoft.KeyVault/vaults/kv-ml-demo")
ALLOWED = Allowed((WS,), (KV,))


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


def event(name: str):
    data = load(name)
    return data[0] if isinstance(data, list) else data


def test_a_failed_run_in_event_grid_schema_is_accepted():
    parsed = parse_event(event("run-failed.eventgrid.json"), ALLOWED)
    assert isinstance(parsed, RunEnded)
    assert (parsed.run_id, parsed.status, parsed.workspace) == ("train-cpu-failed", "Failed", WS)


def test_a_canceled_run_as_a_cloudevent_is_accepted_with_keys_in_any_case():
    parsed = parse_event(event("run-failed.cloudevent.json"), ALLOWED)
    assert isinstance(parsed, RunEnded) and parsed.status == "Canceled" and parsed.envelope.schema == "cloudevents"


@pytest.mark.parametrize("status", ["Running", "Queued", "Preparing", "Paused", "Completed", ""])
def test_run_status_changes_other_than_failed_canceled_or_not_responding_are_ignored(status):
    payload = event("run-failed.eventgrid.json")
    payload["data"]["runStatus"] = status
    assert isinstance(parse_event(payload, ALLOWED), Ignored)


@pytest.mark.parametrize("status", ["NotResponding", "notresponding", " NOTRESPONDING "])
def test_a_run_that_stopped_responding_is_accepted_in_any_spelling(status):
    payload = event("run-failed.eventgrid.json")
    payload["data"]["runStatus"] = status
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, RunNotResponding) and parsed.run_id == "train-cpu-failed"
    assert from_event(parsed) == WorkItem(Kind.NOT_RESPONDING, parsed.workspace.id, parsed.envelope.key, {"run": "train-cpu-failed"})


def test_run_completed_is_accepted():
    payload = event("run-failed.eventgrid.json")
    payload["eventType"] = "Microsoft.MachineLearningServices.RunCompleted"
    del payload["data"]["runStatus"]
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, RunEnded) and parsed.status == "Completed"


def test_a_topic_in_other_casing_is_still_the_workspace():
    payload = event("run-failed.eventgrid.json")
    payload["topic"] = payload["topic"].lower()
    assert isinstance(parse_event(payload, ALLOWED), RunEnded)


def test_other_aml_types_are_ignored_not_rejected():
    assert isinstance(parse_event(event("model-registered.eventgrid.json"), ALLOWED), Ignored)


@pytest.mark.parametrize(
    ("case", "mutate", "security", "reason_part"),
    [
        ("a topic that is not an allowed workspace is forged", lambda e: e.update(topic=e["topic"].replace("rg-ml-demo", "rg-other")),
         True, "not an allowed workspace"),
        ("an unknown AML event type is rejected", lambda e: e.update(eventType="Microsoft.MachineLearningServices.RunExploded"), False,
         "unknown Azure ML event type"),
        ("a foreign event type is rejected", lambda e: e.update(eventType="Microsoft.Storage.BlobCreated"), True, "unknown event type"),
        ("a missing id is malformed", lambda e: e.pop("id"), False, "lacks id"),
        ("a missing topic is malformed", lambda e: e.pop("topic"), False, "lacks topic"),
        ("data that is a list is malformed", lambda e: e.update(data=[1]), False, "expected an object"),
        ("data that is a non-JSON string is malformed", lambda e: e.update(data="{"), False, "not JSON"),
        ("a run with no id anywhere is malformed", lambda e: (e["data"].pop("runId"), e.update(subject="")), False, "without runId"),
    ],
)
def test_bad_events_are_rejected_with_one_clear_line(case, mutate, security, reason_part):
    payload = event("run-failed.eventgrid.json")
    mutate(payload)
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected)
    assert parsed.security is security
    assert reason_part in parsed.reason and "\n" not in parsed.reason


def test_a_non_object_event_is_rejected():
    assert isinstance(parse_event("hello", ALLOWED), Rejected)
    assert isinstance(parse_any([], ALLOWED)[0], Rejected)


def test_an_unsupported_cloudevents_version_is_rejected():
    payload = event("run-failed.cloudevent.json")
    payload["specversion"] = "0.3"
    assert isinstance(parse_event(payload, ALLOWED), Rejected)


def test_the_same_event_has_the_same_key_and_a_different_one_another():
    a = parse_event(event("run-failed.eventgrid.json"), ALLOWED)
    b = parse_event(event("run-failed.eventgrid.json"), ALLOWED)
    other = event("run-failed.eventgrid.json")
    other["id"] = "another"
    c = parse_event(other, ALLOWED)
    assert a.envelope.key == b.envelope.key != c.envelope.key  # type: ignore[union-attr]


def test_an_unusable_nodes_alert_names_the_cluster():
    parsed = parse_alert(load("alert-unusable-nodes.json"), ALLOWED)
    assert isinstance(parsed, AlertFired) and parsed.metric == "unusable nodes"
    item = from_event(parsed)
    assert item.kind is Kind.UNUSABLE_NODES and item.params["cluster"] == "gpu-cluster"


def test_a_quota_alert_names_the_family():
    parsed = parse_alert(load("alert-quota.json"), ALLOWED)
    item = from_event(parsed)  # type: ignore[arg-type]
    assert item.kind is Kind.QUOTA and item.params["family"] == "standardDSv2Family"


def test_a_resolved_alert_is_a_no_op():
    assert isinstance(parse_alert(load("alert-resolved.json"), ALLOWED), Ignored)


def test_an_alert_on_another_workspace_is_forged():
    parsed = parse_alert(load("alert-forged.json"), ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security


def test_an_alert_on_another_metric_is_ignored():
    payload = load("alert-unusable-nodes.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["metricName"] = "Active Cores"
    assert isinstance(parse_alert(payload, ALLOWED), Ignored)


@pytest.mark.parametrize(
    ("case", "mutate", "reason_part"),
    [
        ("another schema", lambda a: a.update(schemaId="Microsoft.Insights/activityLogs"), "schemaId"),
        ("no essentials", lambda a: a["data"].pop("essentials"), "essentials"),
        ("no targets", lambda a: a["data"]["essentials"].update(alertTargetIDs=[]), "alertTargetIDs"),
        ("no condition", lambda a: a["data"]["alertContext"].pop("condition"), "allOf"),
        ("an odd monitor condition", lambda a: a["data"]["essentials"].update(monitorCondition="Maybe"), "monitorCondition"),
    ],
)
def test_malformed_alerts_are_rejected(case, mutate, reason_part):
    payload = copy.deepcopy(load("alert-unusable-nodes.json"))
    mutate(payload)
    parsed = parse_alert(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and reason_part in parsed.reason and not parsed.security


def test_a_secret_near_expiry_is_accepted_with_trimmed_fields():
    payload = event("secret-near-expiry.eventgrid.json")
    payload["data"] = {f" {k} ": f" {v} " for k, v in payload["data"].items()}
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, SecretExpiring)
    assert parsed.secret == "stmldemo-key" and parsed.expires is not None and parsed.expires.year == 2025


def test_a_secret_event_from_another_vault_is_forged():
    payload = event("secret-near-expiry.eventgrid.json")
    payload["topic"] = payload["topic"].replace("kv-ml-demo", "kv-evil")
    parsed = parse_event(payload, ALLOWED)
    assert isinstance(parsed, Rejected) and parsed.security


def test_a_secret_event_whose_vault_name_disagrees_with_its_topic_is_forged():
    payload = event("secret-near-expiry.eventgrid.json")
    payload["data"]["VaultName"] = "kv-other"
    assert isinstance(parse_event(payload, ALLOWED), Rejected)


def test_a_new_secret_version_is_ignored():
    payload = event("secret-near-expiry.eventgrid.json")
    payload["eventType"] = "Microsoft.KeyVault.SecretNewVersionCreated"
    assert isinstance(parse_event(payload, ALLOWED), Ignored)


@pytest.mark.parametrize(("name", "kind", "params"), [
    ("alert-model-deploy-failed.json", Kind.DEPLOYMENT_SWEEP,
     {"scenario": "ManagedOnlineEndpoint", "status_code": "InternalServerError", "value": 1.0}),
    ("alert-not-responding-runs.json", Kind.NOT_RESPONDING, {"value": 1.0}),
    ("alert-failed-runs.json", Kind.CLUSTER_SWEEP, {}),
])
def test_the_new_baseline_alerts_become_work_of_the_kind_that_handles_them(name, kind, params):
    parsed = parse_alert(event(name), ALLOWED)
    assert isinstance(parsed, AlertFired)
    item = from_event(parsed)
    assert (item.kind, item.params) == (kind, params)
    assert WorkItem.from_json(item.to_json(), ALLOWED) == item  # the queue's re-authentication accepts it


def test_a_model_deploy_failed_alert_with_an_overlong_dimension_is_cut_to_what_the_queue_accepts():
    payload = event("alert-model-deploy-failed.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][1]["value"] = "5" * 200
    item = from_event(parse_alert(payload, ALLOWED))
    assert item.params["status_code"] == "5" * 64 and WorkItem.from_json(item.to_json(), ALLOWED) == item


def test_a_dimension_with_line_breaks_or_markup_is_told_as_a_plain_label():
    payload = event("alert-model-deploy-failed.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][1]["value"] = "500\n<b>forged log line</b>"
    item = from_event(parse_alert(payload, ALLOWED))
    assert item.params["status_code"] == "500??b?forged log line?/b?"
    assert WorkItem.from_json(item.to_json(), ALLOWED) == item


@pytest.mark.parametrize("params", [{"status_code": "x" * 65}, {"scenario": ["a"]}, {"run": "../../other"}, {"extra": 1},
                                    {"status_code": "500\nforged"}, {"scenario": ""}])
def test_a_queued_deployment_or_not_responding_item_with_bad_parameters_is_refused(params):
    kind = Kind.NOT_RESPONDING if "run" in params else Kind.DEPLOYMENT_SWEEP
    raw = json.dumps({"kind": kind.value, "target": ALLOWED.workspaces[0].id, "trigger": "t", "params": params})
    with pytest.raises(BadWorkItem):
        WorkItem.from_json(raw, ALLOWED)

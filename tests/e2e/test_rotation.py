"""Dual-key rotation end to end: the real Rotator and SDKs against the emulator's storage, ML and Key Vault.

The demo scenario: vault kv-ml-demo holds stmldemo-key (CredentialId=key1, ProviderAddress=stmldemo,
ValidityPeriodDays=60, value = stmldemo's key1); workspace mlw-demo has two account-key datastores on
stmldemo (workspaceblobstore, trainingdata, both on key1) and two that are not (curated: SAS, lake:
service principal).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local import drive
from local.stack import DEMO_VAULT
from shared.engine import Report, TransientFailure
from shared.model import Status
from shared.work import Kind, WorkItem
from tests.e2e.conftest import World

SECRET = "stmldemo-key"
VAULT = "kv-ml-demo"
ACCOUNT_KEY_STORES = ("workspaceblobstore", "trainingdata")
OTHER_STORES = ("curated", "lake")
WS_PATH = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/Microsoft.MachineLearningServices/workspaces/mlw-demo"
ML_API = "2025-12-01"


# --- helpers shared by the rotation suites ------------------------------------------------------

def rotation(trigger: str = "test", **params: Any) -> WorkItem:
    """A forced rotation of the demo secret (what an operator or a Key Vault event hands the worker)."""
    return WorkItem(Kind.ROTATE, DEMO_VAULT, trigger, {"secret": SECRET, "forced": True, **params})


def account(state: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in state["storage"]["accounts"] if a["name"] == "stmldemo")


def versions(state: dict[str, Any], name: str = SECRET) -> list[dict[str, Any]]:
    vault = next(v for v in state["keyvault"]["vaults"] if v["name"] == VAULT)
    return next(s for s in vault["secrets"] if s["name"] == name)["versions"]


def datastores(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ws = next(w for w in state["ml"]["workspaces"] if w["name"] == "mlw-demo")
    return {d["name"]: d for d in ws["datastores"]}


def key_in_use(state: dict[str, Any]) -> str | None:
    """Which account key the secret's latest version holds (None: neither, i.e. a revoked key)."""
    value = versions(state)[-1]["value"]
    return next((name for name, v in account(state)["keys"].items() if v == value), None)


def assert_every_datastore_and_the_secret_hold_a_valid_key(state: dict[str, Any]) -> None:
    stores = datastores(state)
    invalid = [name for name in ACCOUNT_KEY_STORES if stores[name]["keyValid"] is not True]
    assert not invalid, f"datastores on a revoked key: {invalid}"
    assert key_in_use(state) is not None, "the secret's latest value is not a current key of stmldemo"


UNTOUCHED = "not an account-key datastore"  # the reason of the outcomes that report a datastore left alone


def outcome(report: Report) -> Any:
    """The rotation's own outcome (not the 'left untouched' reports)."""
    (found,) = [o for o in report.outcomes if o.action.reason != UNTOUCHED]
    return found


def untouched(report: Report) -> list[str]:
    return sorted(o.detail for o in report.outcomes if o.action.reason == UNTOUCHED)


def datastore_keys(world: World, credential: Any) -> dict[str, str]:
    """The key each account-key datastore holds, read back with listSecrets (test-side, after the run)."""
    out = {}
    for name in ACCOUNT_KEY_STORES:
        response = world.emulator.arm(credential, "POST", f"{WS_PATH}/datastores/{name}/listSecrets", {}, api_version=ML_API)
        out[name] = response.json()["key"]
    return out


def call(entry: dict[str, Any]) -> str:
    """A journal entry as "service METHOD path-suffix" (the suffix after the provider namespace or the vault prefix)."""
    path = entry["path"].rstrip("/")
    if entry["service"] == "keyvault":
        tail = path.split("/keyvault/", 1)[1]
    elif "/providers/" in path:
        tail = path.rsplit("/providers/", 1)[1].split("/", 1)[1]
    else:
        tail = path
    tail = re.sub(r"OperationsStatus/[^/]+$", "OperationsStatus/*", tail)
    return f"{entry['service']} {entry['method']} {tail}"


def azure_calls(world: World, since: int) -> list[str]:
    """Every ARM and Key Vault call after `since`, in order; Key Vault's 401 challenge (an auth handshake) left out."""
    return [call(e) for e in world.emulator.journal(since) if e["service"] in ("arm", "keyvault") and e["status"] != 401]


def fast(world: World) -> None:
    """Long-running operations finish at their first poll (no 1 s Retry-After per resync)."""
    world.emulator.lro(polls=0)


# --- a full rotation ----------------------------------------------------------------------------

READS = [
    f"keyvault GET {VAULT}/secrets/{SECRET}",  # properties, value and content type in one read
    "arm POST storageAccounts/stmldemo/listKeys",
    "arm GET workspaces/mlw-demo/datastores",
    "arm POST workspaces/mlw-demo/datastores/workspaceblobstore/listSecrets",
    "arm POST workspaces/mlw-demo/datastores/trainingdata/listSecrets",
]
WRITES = [
    "arm POST storageAccounts/stmldemo/regenerateKey",
    # A plain PUT of the listed properties with the new key: no GET of the datastore before it.
    "arm PUT workspaces/mlw-demo/datastores/trainingdata",
    "arm PUT workspaces/mlw-demo/datastores/workspaceblobstore",
    "arm POST workspaces/mlw-demo/resyncKeys",
    "arm GET locations/westeurope/workspaceOperationsStatus/*",  # 202: in progress (the emulator's one poll)
    "arm GET locations/westeurope/workspaceOperationsStatus/*",  # 200: done
    f"keyvault PUT {VAULT}/secrets/{SECRET}",
]
VERIFY = [
    "arm POST workspaces/mlw-demo/datastores/workspaceblobstore/listSecrets",
    "arm POST workspaces/mlw-demo/datastores/trainingdata/listSecrets",
    f"keyvault GET {VAULT}/secrets/{SECRET}",
]


def test_a_full_rotation_makes_the_minimum_calls_in_the_right_order(world: World):
    before = world.emulator.state()
    start = world.mark()
    report = world.rotator(world.settings()).run(rotation(), datetime.now(UTC))

    assert outcome(report).status is Status.DONE
    assert azure_calls(world, start) == READS + WRITES + VERIFY
    journal = world.emulator.journal(start)
    # Key Vault's 401 challenge (left out above) comes at most once: azure-keyvault caches it per vault URL.
    assert sum(1 for e in journal if e["service"] == "keyvault" and e["status"] == 401) <= 1
    (regenerate,) = [e for e in journal if e["path"].endswith("/regenerateKey")]
    assert regenerate["body"] == {"keyName": "key2"}, "the key not in use, and only that one"
    key2 = world.emulator.state()["storage"]["accounts"][0]["keys"]["key2"]
    assert key2 != account(before)["keys"]["key2"]
    for put in (e for e in journal if e["method"] == "PUT" and "/datastores/" in e["path"]):
        creds = put["body"]["properties"]["credentials"]
        assert creds == {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": key2}}


def test_a_full_rotation_moves_the_secret_and_every_account_key_datastore_to_key2_and_leaves_the_others_untouched(
        world: World, credential: Any):
    fast(world)
    before = world.emulator.state()
    listed_before = {d["name"]: d for d in world.emulator.arm(credential, "GET", f"{WS_PATH}/datastores", api_version=ML_API).json()["value"]}
    now = datetime.now(UTC)
    report = world.rotator(world.settings()).run(rotation(), now)

    done = outcome(report)
    assert done.status is Status.DONE
    assert done.detail.startswith("rotated to key2; 2 datastore(s) and the secret verified; new version ")
    assert untouched(report) == ["datastore mlw-demo/curated (Sas) not rotated and left untouched",
                                 "datastore mlw-demo/lake (ServicePrincipal) not rotated and left untouched"]
    assert all(o.status is Status.SKIPPED and o.action.target == SECRET for o in report.outcomes if o.action.reason == UNTOUCHED)

    state = world.emulator.state()
    keys = account(state)["keys"]
    assert account(state)["regenerations"] == {"key1": 0, "key2": 1}
    assert keys["key1"] == account(before)["keys"]["key1"], "the key in use is never regenerated"
    old, new = versions(before)[-1], versions(state)[-1]
    assert len(versions(state)) == 2 and versions(state)[0] == old, "a new version; the old one is kept as it was"
    assert new["value"] == keys["key2"]
    assert new["tags"] == {**old["tags"], "CredentialId": "key2"}
    assert new["contentType"] == old["contentType"] == "text/plain"
    assert abs(new["attributes"]["exp"] - (now + timedelta(days=60)).timestamp()) < 5
    assert old["value"] == keys["key1"], "the previous version still holds a valid key until the next rotation"

    assert datastore_keys(world, credential) == dict.fromkeys(ACCOUNT_KEY_STORES, keys["key2"])
    stores = datastores(state)
    assert all(stores[name]["keyValid"] is True for name in ACCOUNT_KEY_STORES)
    listed_after = {d["name"]: d for d in world.emulator.arm(credential, "GET", f"{WS_PATH}/datastores", api_version=ML_API).json()["value"]}
    for name in OTHER_STORES:
        assert listed_after[name] == listed_before[name], f"{name} was changed"
    for name in ACCOUNT_KEY_STORES:
        kept = {k: v for k, v in listed_before[name]["properties"].items() if k != "credentials"}
        assert {k: listed_after[name]["properties"][k] for k in kept} == kept, f"{name}: more than the credential changed"
    assert world.emulator.ml_workspace()["keysSyncCount"] == 1


def test_three_rotations_alternate_key1_key2_key1_key2_and_a_trigger_inside_the_minimum_interval_is_not_due(world: World):
    fast(world)
    rotator = world.rotator(world.settings())
    now = datetime.now(UTC)
    regenerated = {"key1": 0, "key2": 0}
    previous_value = None
    # Key Vault stamps each version with its own clock (real time here); advancing `now` past the
    # 24 h minimum interval is what makes the next rotation due again.
    for i, key in enumerate(("key2", "key1", "key2")):
        at = now + timedelta(hours=25 * i)
        done = outcome(rotator.run(rotation(f"cycle-{i}"), at))
        assert done.status is Status.DONE and done.detail.startswith(f"rotated to {key};")
        regenerated[key] += 1
        state = world.emulator.state()
        assert account(state)["regenerations"] == regenerated
        latest = versions(state)[-1]
        assert latest["tags"]["CredentialId"] == key and latest["value"] == account(state)["keys"][key]
        assert_every_datastore_and_the_secret_hold_a_valid_key(state)
        if previous_value is not None:
            assert previous_value in account(state)["keys"].values(), "the previous key stays valid until the next rotation"
        previous_value = latest["value"]
        if i == 0:
            again = outcome(rotator.run(rotation("again"), now + timedelta(minutes=90)))
            assert again.status is Status.SKIPPED and again.detail.startswith("not due: rotated 1h") and again.detail.endswith("ago; minimum interval 1d")
    assert len(versions(world.emulator.state())) == 4
    assert account(world.emulator.state())["regenerations"] == {"key1": 1, "key2": 2}


def test_a_vault_sweep_rotates_only_the_managed_secret_that_is_due(world: World):
    fast(world)
    rotator = world.rotator(world.settings())
    sweep = WorkItem(Kind.ROTATE, DEMO_VAULT, "sweep-1")  # the timer: no secret named, nothing forced
    now = datetime.now(UTC)
    done = outcome(rotator.run(sweep, now))
    assert done.status is Status.DONE, "stmldemo-key expires in 20 days: within the 30-day window"
    assert outcome(rotator.run(WorkItem(Kind.ROTATE, DEMO_VAULT, "sweep-2"), now + timedelta(days=2))).status is Status.SKIPPED
    assert account(world.emulator.state())["regenerations"] == {"key1": 0, "key2": 1}


def test_two_triggers_racing_rotate_once(world: World):
    fast(world)
    settings = world.settings()
    rotators = [world.rotator(settings), world.rotator(settings)]
    # Both runs read the keys before either claims: the ledger claim alone must keep them apart.
    world.emulator.fault(method="POST", path=r"/listKeys$", delay_ms=600, times=2)
    barrier = threading.Barrier(2)
    reports: list[Report | None] = [None, None]
    errors: list[BaseException] = []
    now = datetime.now(UTC)

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            reports[i] = rotators[i].run(rotation(f"race-{i}"), now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    outcomes = sorted((outcome(r) for r in reports if r), key=lambda o: o.status.value)
    assert [o.status for o in outcomes] == [Status.DONE, Status.SKIPPED]
    assert outcomes[1].detail.startswith("duplicate: rotation of stmldemo already claimed")
    state = world.emulator.state()
    assert account(state)["regenerations"] == {"key1": 0, "key2": 1}
    assert len(versions(state)) == 2
    assert_every_datastore_and_the_secret_hold_a_valid_key(state)


# --- faults at each step -------------------------------------------------------------------------

FAULT_STEPS = {
    "listKeys": ("POST", r"/storageAccounts/stmldemo/listKeys$"),
    "regenerateKey": ("POST", r"/storageAccounts/stmldemo/regenerateKey$"),
    "datastore-PUT": ("PUT", r"/datastores/(workspaceblobstore|trainingdata)$"),
    "resyncKeys": ("POST", r"/workspaces/mlw-demo/resyncKeys$"),
    "secret-PUT": ("PUT", rf"^/keyvault/{VAULT}/secrets/{SECRET}$"),
}
FAULTS = {
    "429": {"status": 429, "headers": {"Retry-After": "1"}},
    "500": {"status": 500},
    "drop": {"drop": True},
}
MAX_RETRIES = 1


def claim_rows(world: World) -> list[dict[str, Any]]:
    return list(world.ledger().table.query_entities("PartitionKey eq 'claim'"))


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("step", list(FAULT_STEPS))
def test_a_fault_at_each_step_fails_transiently_and_a_re_run_converges(world: World, step: str, fault: str):
    fast(world)
    settings = world.settings(ARM_MAX_RETRIES=str(MAX_RETRIES))
    method, pattern = FAULT_STEPS[step]
    now = datetime.now(UTC)
    start = world.mark()
    world.emulator.fault(method=method, path=pattern, times=10, **FAULTS[fault])  # more than any retry budget
    with pytest.raises(TransientFailure):
        world.rotator(settings).run(rotation(), now)
    attempts = [e for e in world.emulator.journal(start, method=method) if re.search(pattern, e["path"])]
    # azure-core retries a POST only on an answer, never on a dropped connection (it may have been applied).
    assert len(attempts) == (1 if fault == "drop" and method == "POST" else MAX_RETRIES + 1)
    (failed,) = [r for r in world.ledger().history(now - timedelta(minutes=1)) if r["Reason"] != UNTOUCHED]
    assert failed["Status"] == "failed" and failed["Detail"].startswith("transient, will retry: ")
    claims = claim_rows(world)
    if step == "listKeys":
        assert claims == [], "a failed read happens before the claim"
    else:
        assert [c["Status"] for c in claims] == ["retry"], "the claim is released for the retry"
    assert_every_datastore_and_the_secret_hold_a_valid_key(world.emulator.state())

    world.emulator.control("DELETE", "faults")
    report = world.rotator(settings).run(rotation(), now + timedelta(minutes=1))  # the same work item, redelivered
    assert outcome(report).status is Status.DONE
    state = world.emulator.state()
    assert account(state)["regenerations"] == {"key1": 0, "key2": 1}, "key2 regenerated exactly once overall"
    assert key_in_use(state) == "key2" and versions(state)[-1]["tags"]["CredentialId"] == "key2"
    assert_every_datastore_and_the_secret_hold_a_valid_key(state)
    assert [c["Status"] for c in claim_rows(world)] == ["done"]


# --- what is not rotated ---------------------------------------------------------------------------

def test_a_secret_without_the_tags_is_skipped_as_not_a_managed_credential(world: World):
    start = world.mark()
    report = world.rotator(world.settings()).run(rotation(secret="app-insights-conn"), datetime.now(UTC))
    (skipped,) = report.outcomes
    assert skipped.status is Status.SKIPPED
    assert skipped.detail == "not a managed credential: no CredentialId, ProviderAddress, ValidityPeriodDays tag"
    assert azure_calls(world, start) == [f"keyvault GET {VAULT}/secrets/app-insights-conn"]


def test_an_event_for_an_older_version_is_skipped_as_already_rotated(world: World):
    fast(world)
    old_version = versions(world.emulator.state())[-1]["version"]
    rotator = world.rotator(world.settings(ROTATION_MIN_INTERVAL_HOURS="0"))
    now = datetime.now(UTC)
    assert outcome(rotator.run(rotation("event-1", version=old_version), now)).status is Status.DONE
    start = world.mark()
    late = outcome(rotator.run(rotation("event-2", version=old_version), now + timedelta(minutes=5)))
    assert late.status is Status.SKIPPED and late.detail.startswith(f"already rotated: the event names version {old_version[:8]}…")
    assert world.writes(start) == []
    assert account(world.emulator.state())["regenerations"] == {"key1": 0, "key2": 1}


@pytest.mark.parametrize("how", ["dry-run", "observe-mode"])
def test_a_dry_run_and_observe_mode_plan_the_whole_rotation_and_write_nothing(world: World, how: str):
    settings = world.settings(mode="observe" if how == "observe-mode" else "enforce")
    start = world.mark()
    report = world.rotator(settings).run(rotation(), datetime.now(UTC), dry_run=how == "dry-run")
    planned = outcome(report)
    assert planned.status is Status.PLANNED
    label = "dry run" if how == "dry-run" else "observe mode"
    assert planned.detail == f"{label}: would regenerate → point-datastore → point-datastore → resync → write-secret"
    assert world.writes(start) == []
    assert azure_calls(world, start) == READS
    assert account(world.emulator.state())["regenerations"] == {"key1": 0, "key2": 0}


# --- through the dev host --------------------------------------------------------------------------

def test_key_vault_events_through_the_dev_host_rotate_the_key_in_event_grid_and_cloudevents_form(world: World, app):
    fast(world)
    stack = app(mode="enforce", ROTATION_MIN_INTERVAL_HOURS="0")
    event = world.emulator.key_vault_event(VAULT, SECRET)
    assert event[0]["eventType"] == "Microsoft.KeyVault.SecretNearExpiry"
    assert drive.event_grid(stack, event).status == 202
    drive.wait_quiet(stack)
    state = world.emulator.state()
    assert key_in_use(state) == "key2" and account(state)["regenerations"] == {"key1": 0, "key2": 1}
    assert_every_datastore_and_the_secret_hold_a_valid_key(state)

    cloud = world.emulator.key_vault_event(VAULT, SECRET, schema="cloudevents")
    assert cloud["type"] == "Microsoft.KeyVault.SecretNearExpiry" and cloud["specversion"] == "1.0"
    assert drive.event_grid(stack, cloud, cloud=True).status == 202
    drive.wait_quiet(stack)
    state = world.emulator.state()
    assert key_in_use(state) == "key1" and account(state)["regenerations"] == {"key1": 1, "key2": 1}
    assert_every_datastore_and_the_secret_hold_a_valid_key(state)
    done = [r for r in world.ledger().history(datetime.now(UTC) - timedelta(minutes=5)) if r["Reason"] != UNTOUCHED]
    assert [r["Status"] for r in done] == ["done", "done"]


def test_the_admin_rotate_function_answers_a_dry_run_refuses_bad_bodies_and_the_function_key(world: World, app):
    stack = app(mode="enforce")
    assert stack.host
    url = f"{stack.host.url}/api/rotate"
    master = {"x-functions-key": stack.host.master_key}
    start = world.mark()
    answer = requests.post(url, json={"vault": VAULT, "secret": SECRET, "dryRun": True}, headers=master, timeout=60)
    assert answer.status_code == 200, answer.text
    (planned,) = [o for o in answer.json()["outcomes"] if o["reason"] != UNTOUCHED]
    assert planned["status"] == "planned" and planned["detail"].startswith("dry run: would regenerate → ")
    assert world.writes(start) == []

    bad = [
        (b"{not json", "request body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"vault": "kv-ml-demo"}', "secret: required"),
        (b'{"secret": "stmldemo-key"}', "vault: required"),
        (b'{"vault": "kv-ml-demo", "secret": "stmldemo-key", "dryRun": "yes"}', "dryRun: must be true or false"),
        (b'{"vault": "kv-elsewhere", "secret": "stmldemo-key"}', "vault: 'kv-elsewhere' is not in ALLOWED_VAULTS"),
    ]
    for body, error in bad:
        answer = requests.post(url, data=body, headers={**master, "Content-Type": "application/json"}, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        message = answer.json()["error"]
        assert message.startswith(error) and "\n" not in message, (body, message)

    refused = requests.post(url, json={"vault": VAULT, "secret": SECRET, "dryRun": True},
                            headers={"x-functions-key": stack.host.function_key}, timeout=30)
    assert refused.status_code == 401
    assert world.writes(start) == []
    assert account(world.emulator.state())["regenerations"] == {"key1": 0, "key2": 0}


def test_the_rotation_notification_names_the_secret_under_its_vault(world: World):
    fast(world)
    world.rotator(world.settings()).run(rotation(), datetime.now(UTC))
    (event,) = world.emulator.state()["sinks"]["eventgrid"]["autopilot-events"]
    assert event["event"]["type"] == "AmlAutopilot.rotate-credential.done"
    assert event["event"]["subject"] == f"{DEMO_VAULT}/secrets/{SECRET}"


def test_a_sweep_that_repairs_a_datastore_on_a_revoked_key_records_it_as_done_not_failed(world: World):
    fast(world)
    scenario = json.loads(json.dumps(world.scenario))
    for store in scenario["workspaces"][0]["datastores"]:
        if store["name"] == "trainingdata":
            store["key"] = "revoked"
    secret = next(s for s in scenario["vaults"][0]["secrets"] if s["name"] == SECRET)
    secret["tags"]["ValidityPeriodDays"] = "365"  # 40 days old, expiring in 20: not due with a 1-day window
    world.emulator.reset(scenario)
    rotator = world.rotator(world.settings(ROTATION_NEAR_EXPIRY_DAYS="1"))
    done = outcome(rotator.run(WorkItem(Kind.ROTATE, DEMO_VAULT, "sweep-repair"), datetime.now(UTC)))
    assert done.status is Status.DONE, done.detail
    assert "repaired mlw-demo/trainingdata" in done.detail and "rotation not due" in done.detail
    assert done.action.reason == "repair: datastore(s) on a revoked key"
    state = world.emulator.state()
    assert datastores(state)["trainingdata"]["keyValid"] is True
    assert account(state)["regenerations"] == {"key1": 0, "key2": 0}

"""A rotation interrupted after any step converges when run again, and no datastore is ever on a revoked key.

The crash is simulated with the Rotator's `checkpoint` callback, called after each executed step: raising
from it stops the run there, as a killed worker would, and leaves the ledger claim "claimed". The re-run
comes after the claim's lease (shared/ports.py LEASE, 10 minutes), as the platform's redelivery would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.model import Status
from shared.policy.rotation import Step
from shared.ports import LEASE
from tests.e2e.conftest import World
from tests.e2e.test_rotation import (
    ACCOUNT_KEY_STORES,
    ML_API,
    WS_PATH,
    account,
    assert_every_datastore_and_the_secret_hold_a_valid_key,
    datastore_keys,
    fast,
    key_in_use,
    outcome,
    rotation,
    versions,
)

FULL = ["regenerate key2", "point-datastore mlw-demo/trainingdata", "point-datastore mlw-demo/workspaceblobstore",
        "resync", "write-secret"]
# What the re-run does after a crash following step k: the rest, except that a resync is repeated (whether the
# workspaces were resynced is not visible in Azure) and nothing at all once the secret was written.
RERUN = {1: FULL[1:], 2: FULL[2:], 3: FULL[3:], 4: FULL[3:], 5: []}


class Crash(Exception):
    """The process died here."""


def label(step: Step) -> str:
    if step.kind.value == "regenerate":
        return f"regenerate {step.key}"
    return f"{step.kind.value} {step.datastore}" if step.datastore else step.kind.value


@pytest.mark.parametrize("k", list(RERUN), ids=[f"after-{i + 1}-{s.split()[0]}" for i, s in enumerate(FULL)])
def test_a_crash_after_each_step_then_a_re_run_converges_with_every_datastore_on_a_valid_key_throughout(
        world: World, credential: Any, k: int):
    fast(world)
    settings = world.settings()
    executed: list[str] = []
    seen_regenerations: list[dict[str, int]] = []
    crash_after = [k]  # steps into the run; 0: never

    def checkpoint(step: Step) -> None:
        executed.append(label(step))
        state = world.emulator.state()
        assert_every_datastore_and_the_secret_hold_a_valid_key(state)
        seen_regenerations.append(account(state)["regenerations"])
        if len(executed) == crash_after[0]:
            raise Crash(f"killed after {executed[-1]}")

    now = datetime.now(UTC)
    with pytest.raises(Crash):
        world.rotator(settings, checkpoint=checkpoint).run(rotation(), now)
    assert executed == FULL[:k]
    assert account(world.emulator.state())["regenerations"] == {"key1": 0, "key2": 1}
    claims = list(world.ledger().table.query_entities("PartitionKey eq 'claim'"))
    assert [c["Status"] for c in claims] == ["claimed"], "a crash leaves the claim held"

    if RERUN[k]:
        # Within the lease the crashed run may still be alive: a redelivery must not start a second rotation.
        early = outcome(world.rotator(settings).run(rotation(), now + timedelta(minutes=1)))
        assert early.status is Status.SKIPPED and early.detail.startswith("duplicate: rotation of stmldemo already claimed")

    executed.clear()
    crash_after[0] = 0
    rerun = outcome(world.rotator(settings, checkpoint=checkpoint).run(rotation(), now + LEASE + timedelta(minutes=1)))
    assert executed == RERUN[k]
    if RERUN[k]:
        assert rerun.status is Status.DONE and rerun.detail.startswith("rotated to key2; 2 datastore(s) and the secret verified")
    else:
        assert rerun.status is Status.SKIPPED and rerun.detail.startswith("not due: rotated ") and "m ago; minimum interval" in rerun.detail

    state = world.emulator.state()
    assert account(state)["regenerations"] == {"key1": 0, "key2": 1}, "neither the key in use nor the fresh key is regenerated"
    assert all(r == {"key1": 0, "key2": 1} for r in seen_regenerations)
    assert key_in_use(state) == "key2" and versions(state)[-1]["tags"]["CredentialId"] == "key2"
    assert len(versions(state)) == 2, "exactly one new secret version"
    assert datastore_keys(world, credential) == dict.fromkeys(ACCOUNT_KEY_STORES, account(state)["keys"]["key2"])
    assert_every_datastore_and_the_secret_hold_a_valid_key(state)


def put_datastore_key(world: World, credential: Any, name: str, key: str) -> None:
    """Out of band, as an operator would: point a datastore at a given key."""
    path = f"{WS_PATH}/datastores/{name}"
    body = world.emulator.arm(credential, "GET", path, api_version=ML_API).json()
    body["properties"]["credentials"] = {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": key}}
    assert world.emulator.arm(credential, "PUT", path, {"properties": body["properties"]}, api_version=ML_API).status_code == 200


def test_a_datastore_found_on_the_key_about_to_be_regenerated_is_moved_to_the_key_in_use_first(world: World, credential: Any):
    fast(world)
    put_datastore_key(world, credential, "trainingdata", account(world.emulator.state())["keys"]["key2"])
    executed: list[str] = []

    def checkpoint(step: Step) -> None:
        executed.append(label(step))
        assert_every_datastore_and_the_secret_hold_a_valid_key(world.emulator.state())

    report = world.rotator(world.settings(), checkpoint=checkpoint).run(rotation(), datetime.now(UTC))
    assert outcome(report).status is Status.DONE
    assert executed == ["align-datastore mlw-demo/trainingdata", *FULL]
    state = world.emulator.state()
    assert account(state)["regenerations"] == {"key1": 0, "key2": 1}
    assert datastore_keys(world, credential) == dict.fromkeys(ACCOUNT_KEY_STORES, account(state)["keys"]["key2"])


def test_a_secret_holding_a_revoked_key_blocks_the_rotation_for_an_operator_and_writes_nothing(world: World, credential: Any):
    sub_rg = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo"
    regenerated = world.emulator.arm(credential, "POST", f"{sub_rg}/providers/Microsoft.Storage/storageAccounts/stmldemo/regenerateKey",
                                     {"keyName": "key1"}, api_version="2025-06-01")
    assert regenerated.status_code == 200
    start = world.mark()
    report = world.rotator(world.settings()).run(rotation(), datetime.now(UTC))
    blocked = outcome(report)
    assert blocked.status is Status.FAILED
    assert blocked.detail == ("blocked: the secret's value matches neither account key: it holds a revoked key; "
                              "an operator must repair it")
    assert world.writes(start) == []
    assert [c for c in world.ledger().table.query_entities("PartitionKey eq 'claim'")] == []

"""Exactly the permissions the code uses: what the scenarios send maps to actions, and those are what infra/ grants.

One run, in enforce mode, of the scenarios that between them make every kind of request the
adapters send: an idle sweep that marks, then (grace passed) stops an instance and sets AML's idle
shutdown; an unusable-nodes recycle and the cluster sweep that restores it (PATCH); a quota alert
(usages, VM sizes); a deployment sweep that reads a failed deployment's logs and, after the grace, deletes it;
a not-responding run cancelled (with the opt-in); a rotation sweep of the vault and a forced rotation. Every request the emulator
journaled is mapped with ``shared.adapters.permissions.action_for`` (an unmapped request fails,
named), and the set of (action, scope) used must equal the set the Terraform grants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.stack import DEMO_VAULT
from shared.adapters.permissions import Scope, Unmapped, action_for, grant_for
from shared.model import Status, compute_key
from shared.work import Kind, WorkItem, sweep
from tests.e2e.conftest import WS, World
from tests.infra_roles import difference, granted

# The emulator's names for the services and its vault prefix; in Azure each vault is its own host.
EMULATOR_SERVICES = {"sinks": "notify"}
VAULT_PREFIX = "/keyvault/"


def as_azure(entry: dict[str, Any]) -> tuple[str, str, str]:
    """A journal entry as the request Azure would see: (service, method, path)."""
    service = EMULATOR_SERVICES.get(entry["service"], entry["service"])
    path = entry["path"]
    if service == "keyvault" and path.startswith(VAULT_PREFIX):
        path = "/" + path[len(VAULT_PREFIX):].split("/", 1)[1]
    return service, entry["method"], path


def used(entries: list[dict[str, Any]]) -> tuple[set[tuple[str, Scope]], list[str]]:
    """The (action, scope) of every journaled request, and the requests the map does not know."""
    pairs: set[tuple[str, Scope]] = set()
    unmapped = []
    for entry in entries:
        request = as_azure(entry)
        try:
            action = action_for(*request)
        except Unmapped as exc:
            unmapped.append(str(exc))
            continue
        if action is not None:  # None: a token request or a notification
            grant = grant_for(*request)
            assert grant is not None
            pairs.add((action, grant.scope))
    return pairs, sorted(set(unmapped))


def run_every_scenario(world: World) -> list[dict[str, Any]]:
    """The scenarios, enforce mode; returns what they sent."""
    world.emulator.lro(polls=0)  # each long-running operation is done at its first poll (still polled)
    settings = world.settings("enforce")  # IDLE_SHUTDOWN_MINUTES 60: the sweep also sets AML's idle shutdown
    engine, rotator = world.engine(settings), world.rotator(settings)
    start = world.mark()
    now = datetime.now(UTC)
    outcomes = []

    # Idle instances: one sweep marks ci-alice and sets idle shutdown; after the grace one stops her.
    outcomes += engine.run(sweep(Kind.IDLE_SWEEP, WS.id, now), now).outcomes
    assert compute_key(WS, "ci-alice") in world.ledger(settings).marks()
    later = now + timedelta(minutes=61)
    outcomes += engine.run(sweep(Kind.IDLE_SWEEP, WS.id, later), later).outcomes

    # Unusable nodes: recycle gpu-cluster (max 0), then the cluster sweep gives its max back.
    outcomes += engine.run(WorkItem(Kind.UNUSABLE_NODES, WS.id, "permissions-unusable", {"cluster": "gpu-cluster"}), now).outcomes
    outcomes += engine.run(sweep(Kind.CLUSTER_SWEEP, WS.id, now + timedelta(minutes=2)), now + timedelta(minutes=2)).outcomes

    # Quota: relieve the DSv2 family (usages, VM sizes).
    quota = WorkItem(Kind.QUOTA, WS.id, "permissions-quota", {"family": "standardDSv2Family", "cluster": "cpu-cluster", "value": 90.0})
    outcomes += engine.run(quota, now).outcomes

    # Failed deployments: the sweep marks (logs, sizes), and after the grace deletes scoring-api's canary.
    # Not-responding runs: the event's job is read and, with the opt-in, cancelled.
    failing = world.settings("enforce", FAILED_DEPLOYMENT_GRACE_MINUTES="0", NOT_RESPONDING_CANCEL_MINUTES="15")
    deployments = world.engine(failing)
    outcomes += deployments.run(sweep(Kind.DEPLOYMENT_SWEEP, WS.id, now), now).outcomes
    outcomes += deployments.run(sweep(Kind.DEPLOYMENT_SWEEP, WS.id, later), later).outcomes
    outcomes += deployments.run(WorkItem(Kind.NOT_RESPONDING, WS.id, "permissions-silent", {"run": "score-serverless-0107"}), now).outcomes

    # Rotation: the vault's sweep (lists the managed credentials), then a forced rotation.
    outcomes += rotator.run(WorkItem(Kind.ROTATE, DEMO_VAULT, "permissions-sweep"), now).outcomes
    outcomes += rotator.run(WorkItem(Kind.ROTATE, DEMO_VAULT, "permissions-forced", {"secret": "stmldemo-key", "forced": True}), now).outcomes

    done = {(o.action.kind.value, o.action.target) for o in outcomes if o.status is Status.DONE}
    for expected in [("mark-idle", "ci-alice"), ("set-idle-shutdown", "ci-alice"), ("stop-instance", "ci-alice"),
                     ("scale-cluster", "gpu-cluster"), ("rotate-credential", "stmldemo-key"),
                     ("delete-deployment", "scoring-api/deployments/canary"), ("cancel-job", "score-serverless-0107")]:
        assert expected in done, f"scenario did not do {expected}: {sorted(done)}"
    return world.emulator.journal(start)


def test_every_request_is_mapped_and_the_actions_used_are_exactly_those_granted(world: World):
    journal = run_every_scenario(world)
    pairs, unmapped = used(journal)
    assert not unmapped, "requests with no RBAC action in shared/adapters/permissions.py:\n  " + "\n  ".join(unmapped)

    # Token requests, notifications and AML's public discovery document need no action; Key Vault's token-less challenge maps as the request it
    # precedes. (Tokens and challenges are cached per process: a run after other tests may send neither.)
    services = {as_azure(e)[0] for e in journal}
    assert {"arm", "runhistory", "monitor", "keyvault", "notify"} <= services <= {"arm", "runhistory", "monitor", "keyvault", "notify",
                                                                                 "identity"}, services
    free = {(as_azure(e)[0], e["path"] if e["service"] == "runhistory" else "") for e in journal if action_for(*as_azure(e)) is None}
    assert {service for service, _ in free} <= {"identity", "notify", "runhistory"}
    assert {path for service, path in free if service == "runhistory"} <= {"/discovery"}, "run history's runs need their action"
    challenges = [e for e in journal if e["service"] == "keyvault" and e["status"] == 401]
    assert all(action_for(*as_azure(e)) is not None for e in challenges)

    grants, problems = granted()
    assert not problems, "infra/autopilot role assignments that could not be read:\n  " + "\n  ".join(problems)
    differences = difference(pairs, grants)
    assert not differences, "infra/ grants differ from what the code uses:\n  " + "\n  ".join(differences)


def test_a_missing_an_extra_and_a_misplaced_grant_each_fail():
    grants, _ = granted()
    used_now = set(grants)  # as if the scenarios had used exactly what is granted
    stop = ("Microsoft.MachineLearningServices/workspaces/computes/stop/action", Scope.WORKSPACE)
    assert difference(used_now, grants - {stop}) == [f"missing: {stop[0]} at the workspace (used, not granted in infra/)"]
    nodes = ("Microsoft.MachineLearningServices/workspaces/computes/listNodes/action", Scope.WORKSPACE)
    assert difference(used_now, grants | {nodes}) == [f"extra: {nodes[0]} at the workspace (granted in infra/, never used)"]
    metrics = "Microsoft.Insights/metrics/read"
    moved = (grants - {(metrics, Scope.SUBSCRIPTION)}) | {(metrics, Scope.WORKSPACE)}
    assert difference(used_now, moved) == [f"missing: {metrics} at the subscription (used, not granted in infra/)",
                                           f"extra: {metrics} at the workspace (granted in infra/, never used)"]


def test_a_request_the_map_does_not_know_fails_naming_it():
    entry = {"service": "arm", "method": "POST", "path": WS.path("computes", "gpu-cluster", "listNodes")}
    _, unmapped = used([entry])
    assert unmapped == [f"arm POST {entry['path']}: no RBAC action mapped in shared/adapters/permissions.py"]

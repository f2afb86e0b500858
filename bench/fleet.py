"""A fleet's idle sweep through the dev host, with the emulator throttling like ARM.

The fleet: ``workspaces`` AML workspaces spread evenly over ``subscriptions``, each with
``computes`` computes (three quarters running compute instances, a quarter clusters), allowed by
scope only (``ALLOWED_SCOPES`` = every subscription, so discovery runs through Resource Graph as
in production). The ``idle_sweep`` timer is fired once through the host's admin URL; the timer
fans one work item per workspace out to the Azurite queue and the host's queue workers sweep
them in observe mode, each inside the process's share of ARM's budget (``ARM_BUDGET_PERCENT``).
The wall time runs from the timer's call until the queue is empty and no function runs.

What is counted, from the emulator's journal and the host's log: ARM requests (and their 429s),
Monitor and Resource Graph requests, the workspaces whose sweep reported, and the work items
left in the queue or moved to the poison queue.

The budget's lower bound: ARM counts reads per subscription (250 at once, then 25 a second), so
the sweep cannot end before ``max over subscriptions of max(0, reads - 250) / 25`` seconds, where
``reads`` are the read requests it needed there (those ARM served: a 429 is not needed). When every
subscription's reads fit its burst the bound is 0 and the sweep is bound by the app's own CPU.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.localstack import LocalAzure, deferred_signals, environment
from bench.report import Table

BURST, REFILL = 250, 25  # ARM's read bucket per subscription and identity (Learn: ARM throttling)
TARGET_RATIO = 1.5


def subscription(i: int) -> str:
    return f"00000000-0000-0000-0000-{0xF1EE7000 + i:012x}"


def scenario(workspaces: int, computes: int, subscriptions: int) -> dict[str, Any]:
    """The fleet as an emulator scenario: names unique across the fleet, spread round-robin over subscriptions."""
    fleet = []
    for w in range(workspaces):
        items = []
        for c in range(computes):
            if c % 4 == 3:
                items.append({"name": f"cluster-{c:02d}", "type": "AmlCompute", "size": "Standard_DS3_v2",
                              "minNodes": 0, "maxNodes": 4, "nodes": []})
            else:
                items.append({"name": f"ci-{c:02d}", "type": "ComputeInstance", "size": "Standard_DS3_v2", "state": "Running",
                              "createdBy": {"userName": f"user{c}@contoso.com", "userId": f"00000000-0000-4000-8000-{c:012d}"},
                              "lastOperation": {"name": "Start", "time": "now-5h", "status": "Succeeded"},
                              "idleTimeBeforeShutdown": "PT60M", "tags": {}, "createdAt": "now-30d"})
        fleet.append({"subscriptionId": subscription(w % subscriptions), "resourceGroup": f"rg-fleet-{w % subscriptions:02d}",
                      "name": f"mlw-fleet-{w:04d}", "location": "westeurope", "tags": {"autopilot": "on"}, "computes": items})
    return {"subscriptionId": subscription(0), "workspaces": fleet}


_SWEPT = re.compile(r" INFO autopilot\.worker: idle-sweep (mlw-fleet-\d+): ")


def _workspace_id(spec: dict[str, Any]) -> str:
    return (f"/subscriptions/{spec['subscriptionId']}/resourceGroups/{spec['resourceGroup']}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{spec['name']}")


def lower_bound_s(reads_by_subscription: Counter[str]) -> float:
    """The least time ARM's read buckets allow for these reads (see the module rules)."""
    return max((max(0, n - BURST) / REFILL for n in reads_by_subscription.values()), default=0.0)


def _subscription_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[2].lower() if len(parts) > 2 and parts[1].lower() == "subscriptions" else None


def figures(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests by service, ARM's 429s, and the reads ARM served per subscription."""
    arm = [e for e in entries if e["service"] == "arm"]
    reads = Counter(_subscription_of(e["path"]) for e in arm if e["method"] in ("GET", "HEAD") and e["status"] != 429)
    reads.pop(None, None)
    return {
        "arm_requests": len(arm),
        "arm_reads_served": sum(reads.values()),
        "arm_429": sum(1 for e in arm if e["status"] == 429),
        "resource_graph_requests": sum(1 for e in arm if "microsoft.resourcegraph" in e["path"].lower()),
        "monitor_requests": sum(1 for e in entries if e["service"] == "monitor"),
        "busiest_subscription_reads": max(reads.values(), default=0),
        "lower_bound_s": lower_bound_s(reads),
    }


def run_all(azure: LocalAzure, stack: contextlib.ExitStack, env: dict[str, str], fleets: list[tuple[int, int, int]],
            budget_percent: int, json_path: Path) -> list[Table]:
    """Each fleet in turn (a fresh host each); every fleet's figures in one JSON list at `json_path`."""
    results = [run(azure, stack, env, workspaces=w, computes=c, subscriptions=s, budget_percent=budget_percent,
                   log_path=json_path.with_suffix(f".{w}x{c}x{s}.host.log")) for w, c, s in fleets]
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return [table(r, json_path) for r in results]


def run(azure: LocalAzure, stack: contextlib.ExitStack, env: dict[str, str], *, workspaces: int, computes: int,
        subscriptions: int, budget_percent: int, log_path: Path) -> dict[str, Any]:
    from local import drive
    from local.host import server as host_server
    from local.stack import REPO, Stack

    fleet = scenario(workspaces, computes, subscriptions)
    azure.client.reset(fleet)
    throttle = azure.client.control("GET", "throttle")
    # One workspace named explicitly too (the explicit and discovered sets merge), the rest by scope.
    env = {**env, "ALLOWED_WORKSPACES": _workspace_id(fleet["workspaces"][0]), "ALLOWED_SCOPES": ",".join(f"/subscriptions/{subscription(i)}" for i in range(subscriptions)),
           "DISCOVERY_TAG": "autopilot=on", "ARM_BUDGET_PERCENT": str(budget_percent), "AUTOPILOT_MODE": "observe",
           "WORK_QUEUE": f"fleet-{int(time.time())}"}
    with environment(AZUREML_CURRENT_CLOUD=None), deferred_signals():
        handle = host_server.start(REPO, env=env, log_path=azure.workdir / f"host-fleet-{workspaces}x{computes}x{subscriptions}.log")
        stack.callback(handle.stop)
    if handle.errors:
        raise RuntimeError(f"functions failed to index: {handle.errors}")
    app = Stack(azure.client, azure.storage, env, handle)
    before = azure.journal_seq()
    log_from = len(handle.logs())
    started = time.perf_counter()
    answer = drive.timer(app, "idle_sweep")
    drive.wait_quiet(app, settle=2.0, timeout=max(600.0, workspaces * 2.0))
    wall = time.perf_counter() - started - 2.0  # wait_quiet's settle time is not the sweep's
    found = figures(azure.journal(before))
    lines = handle.logs()[log_from:].splitlines()
    swept = {m.group(1).lower() for m in map(_SWEPT.search, lines) if m}
    poisoned = _poisoned(app)
    missing = workspaces - len(swept & {w["name"].lower() for w in fleet["workspaces"]})
    bound = found["lower_bound_s"]
    ratio = wall / bound if bound else None
    result = {"workspaces": workspaces, "computes_per_workspace": computes, "subscriptions": subscriptions,
              "arm_budget_percent": budget_percent, "timer_status": answer.status, "wall_s": round(wall, 2),
              **found, "lower_bound_s": round(bound, 2), "ratio_to_lower_bound": None if ratio is None else round(ratio, 2),
              "workspaces_swept": len(swept), "work_items_missing": missing, "work_items_poisoned": poisoned,
              "emulator_throttle": throttle}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(handle.logs(), encoding="utf-8")  # the bench's workdir is removed at the end
    handle.stop()
    return result


def _poisoned(app: Any) -> int:
    from azure.storage.queue import QueueClient

    poison = QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], app.env["WORK_QUEUE"] + "-poison")
    try:
        return int(poison.get_queue_properties().approximate_message_count)
    except Exception:  # no poison queue: nothing was ever poisoned
        return 0


def table(r: dict[str, Any], json_path: Path) -> Table:
    t = Table(f"5. Fleet idle sweep through the dev host, emulator throttling like ARM ({r['workspaces']:,} workspaces × "
              f"{r['computes_per_workspace']} computes in {r['subscriptions']} subscriptions)",
              ["wall s", "ARM requests", "ARM reads served", "429s", "Resource Graph", "Monitor", "busiest subscription reads",
               "budget lower bound s", "ratio", "swept", "lost", "poisoned"])
    t.add(r["wall_s"], r["arm_requests"], r["arm_reads_served"], r["arm_429"], r["resource_graph_requests"], r["monitor_requests"],
          r["busiest_subscription_reads"], r["lower_bound_s"], r["ratio_to_lower_bound"], r["workspaces_swept"],
          r["work_items_missing"], r["work_items_poisoned"])
    t.notes.append(f"lower bound: max over subscriptions of max(0, reads - {BURST}) / {REFILL} s (ARM's read bucket per subscription "
                   f"and identity); 0 means every subscription's reads fit its burst and the sweep is bound by the app's CPU")
    t.notes.append(f"the app keeps to ARM_BUDGET_PERCENT={r['arm_budget_percent']} of each bucket; figures also in {json_path}")
    complete = r["work_items_missing"] == 0 and r["work_items_poisoned"] == 0 and r["timer_status"] == 202
    within = r["ratio_to_lower_bound"] is None or r["ratio_to_lower_bound"] <= TARGET_RATIO
    bound = "no budget bound (every subscription within its burst)" if r["ratio_to_lower_bound"] is None else \
        f"{r['ratio_to_lower_bound']:.2f}x the budget's lower bound {r['lower_bound_s']:.1f} s (target ≤ {TARGET_RATIO}x)"
    t.verdict = (f"{'PASS' if complete and within else 'FAIL'}: {r['workspaces_swept']:,}/{r['workspaces']:,} workspaces swept, "
                 f"{r['work_items_missing']} lost, {r['work_items_poisoned']} poisoned, {r['arm_429']} 429s; "
                 f"{r['wall_s']:.1f} s, {bound}")
    return t

"""`make demo`: the autopilot's main job, end to end, on the local Azure.

Starts Azurite, the emulator (seeded with a demo workspace) and the dev host in enforce mode,
shows `autopilot plan`, then drives timers, Event Grid events and Azure Monitor alerts through
the same URLs Azure would call, and prints what was decided and done — then stops everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from local import drive
from local import stack as stack_mod

PAYLOADS = stack_mod.REPO / "tests" / "payloads"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _payload(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def _arm_writes(stack: stack_mod.Stack, since: int) -> list[str]:
    """Writes the app sent to Azure since journal entry `since` (token requests and reads excluded)."""
    return [f"{e['method']} {e['path'].rsplit('/', 2)[-2]}/{e['path'].rsplit('/', 1)[-1]} → {e['status']}"
            for e in stack.emulator.journal(since)
            if e["method"] in WRITES and e["service"] in ("arm", "keyvault") and not e["path"].endswith("/listKeys")
            and not e["path"].endswith(("/listSecrets", "/listNodes", "/getLogs"))]


def _journal_end(stack: stack_mod.Stack) -> int:
    entries = stack.emulator.journal()
    return entries[-1]["seq"] if entries else 0


def _app_log(stack: stack_mod.Stack, since: int) -> list[str]:
    """What the app logged since byte `since` (triage and summaries; outcomes are printed from the ledger)."""
    assert stack.host
    with stack.host.log_path.open("rb") as handle:
        handle.seek(since)
        text = handle.read().decode("utf-8", errors="replace")
    wanted = (" autopilot.intake: ", " autopilot.worker: ", " autopilot.rotation: ")
    return [line.split(": ", 1)[1][:220] for line in text.splitlines() if any(w in line for w in wanted)]


def _outcomes(stack: stack_mod.Stack) -> list[dict[str, object]]:
    from datetime import UTC, datetime, timedelta

    from shared.adapters.ledger import Ledger

    ledger = Ledger(stack.env["AzureWebJobsStorage"], stack.env.get("LEDGER_TABLE", "autopilotledger"))
    return list(ledger.history(datetime.now(UTC) - timedelta(hours=1), limit=500))


def _step(stack: stack_mod.Stack, title: str, action, seen: set[str]) -> None:  # type: ignore[no-untyped-def]
    _say(title)
    mark = _journal_end(stack)
    log_mark = stack.host.log_path.stat().st_size if stack.host else 0
    answer = action()
    drive.wait_quiet(stack)
    print(f"   answer: HTTP {answer.status} {answer.body.strip()[:160]}")
    for line in _app_log(stack, log_mark):
        print(f"   log: {line}")
    for line in _arm_writes(stack, mark):
        print(f"   azure write: {line}")
    new = [o for o in reversed(_outcomes(stack)) if f"{o['At']}{o['Target']}{o['Action']}{o['Status']}" not in seen]
    for o in new:
        seen.add(f"{o['At']}{o['Target']}{o['Action']}{o['Status']}")
        print(f"   {o['Status']!s:8} {o['Action']!s:22} {o['Target']!s:12} {o['Detail']}")
        print(f"   {'':8} {'':22} {'':12} why: {o['Reason']}")
    if not new:
        print("   (no outcome: nothing to do, or rejected before any work)")


def main() -> int:
    started = time.monotonic()
    print("aml-autopilot demo — starting Azurite, the Azure emulator and the Functions dev host …", flush=True)
    # The demo shows warn-then-stop and tell-then-delete in two sweeps each.
    overrides = {"IDLE_GRACE_MINUTES": "0", "FAILED_DEPLOYMENT_GRACE_MINUTES": "0"}
    stack = stack_mod.start(mode="enforce", extra=overrides, host=False)
    seen: set[str] = set()
    try:
        # Messages as Teams Adaptive Cards; alice's warnings also reach her own webhook (a sink of the emulator).
        stack.restart_host(NOTIFY_FORMAT="teams",
                           NOTIFY_OWNER_WEBHOOKS=json.dumps({"alice@contoso.com": f"{stack.emulator.url}/_sinks/webhook/alice"}))
        print(f"   host {stack.host.url if stack.host else '-'} · emulator {stack.emulator.url} · mode enforce · grace 0m"
              " · messages as Teams cards")
        _say("autopilot plan (read-only: what every rule thinks right now)")
        env = {**os.environ, **stack.env}
        subprocess.run([sys.executable, "-m", "shared.cli", "plan", "--workspace", stack_mod.DEMO_WORKSPACE], env=env, check=True)

        _step(stack, "timer idle_sweep #1: idle instances are marked and their owners warned; native idle shutdown enforced",
              lambda: drive.timer(stack, "idle_sweep"), seen)
        _step(stack, "Event Grid: RunStatusChanged Failed on cpu-cluster → the cluster is checked at once",
              lambda: drive.event_grid(stack, _retarget(_payload("run-failed.eventgrid.json"))), seen)
        _step(stack, "the same event delivered again → re-checked, nothing left to change, no second write",
              lambda: drive.event_grid(stack, _retarget(_payload("run-failed.eventgrid.json"))), seen)
        _step(stack, "Azure Monitor alert: Quota Utilization on standardDSv2Family → free idle cores, most first",
              lambda: drive.alert(stack, _payload("alert-quota.json")), seen)
        _step(stack, "timer idle_sweep #2: still idle after the grace period → stopped (and stale marks cleared)",
              lambda: drive.timer(stack, "idle_sweep"), seen)
        _step(stack, "Azure Monitor alert: Unusable Nodes on gpu-cluster → recycled (scale to 0)",
              lambda: drive.alert(stack, _payload("alert-unusable-nodes.json")), seen)
        _step(stack, "timer cluster_sweep: the recycled cluster has drained → max nodes restored",
              lambda: drive.timer(stack, "cluster_sweep"), seen)
        _step(stack, "Azure Monitor alert: Failed Runs → every cluster of the workspace is checked, as for a failed-run event",
              lambda: drive.alert(stack, _payload("alert-failed-runs.json")), seen)
        _step(stack, "Azure Monitor alert: Model Deploy Failed → each failed deployment told why (log tail, secrets redacted), "
                     "the share of traffic at risk and who could take it; a Kubernetes one only reported",
              lambda: drive.alert(stack, _payload("alert-model-deploy-failed.json")), seen)
        _step(stack, "timer deployment_sweep: scoring-api/canary still failed with 0 % traffic and 0 % mirror traffic after the "
                     "grace → deleted, its quota released; deployments receiving traffic or mirror traffic are never deleted",
              lambda: drive.timer(stack, "deployment_sweep"), seen)
        _step(stack, "Event Grid: RunStatusChanged NotResponding → its owner and the operator told, with the job's studio link "
                     "(cancelling is opt-in: NOT_RESPONDING_CANCEL_MINUTES=0)",
              lambda: drive.event_grid(stack, _payload("run-not-responding.eventgrid.json")), seen)
        _step(stack, "a forged event (another subscription's workspace) → rejected, zero actions",
              lambda: drive.event_grid(stack, _payload("run-forged.eventgrid.json")), seen)
        _step(stack, "an alert whose ClusterName tries to reach another workspace (../../mlw-prod/…) → refused, nothing read",
              lambda: drive.alert(stack, _steering(_payload("alert-unusable-nodes.json"))), seen)
        _step(stack, "a CloudEvents 1.0 delivery of a model registration → understood and ignored",
              lambda: drive.event_grid(stack, _cloud(_payload("model-registered.eventgrid.json")), cloud=True), seen)
        before = _keys_state(stack)
        _step(stack, "Key Vault: SecretNearExpiry for stmldemo-key → dual-key rotation of the datastores' storage key",
              lambda: drive.event_grid(stack, stack.emulator.key_vault_event("kv-ml-demo", "stmldemo-key")), seen)
        _show_rotation(stack, before)

        _say("the ledger: every outcome, newest first (autopilot history)")
        subprocess.run([sys.executable, "-m", "shared.cli", "history", "--hours", "1"], env=env, check=True)
        state = stack.emulator.state()["ml"]
        _say("the workspace afterwards")
        for ws in state.get("workspaces", []):
            for c in ws.get("computes", []):
                print(f"   {c.get('name'):14} {c.get('type', ''):18} {_brief(c)}")
        for endpoints in stack.emulator.state()["endpoints"].values():
            for name, endpoint in endpoints.items():
                deployments = ", ".join(f"{d} {state}" for d, state in endpoint["deployments"].items())
                print(f"   {name:14} {'online endpoint':18} traffic={endpoint['traffic']} mirror={endpoint['mirrorTraffic']} "
                      f"deployments: {deployments}")
        _say("messages: Teams cards to the operators, and alice's warning on her own webhook")
        _show_owner_cards(stack)
        _say("autopilot report (what it did and saved; money from the Retail Prices API, here the emulator's stand-in)")
        subprocess.run([sys.executable, "-m", "shared.cli", "report", "--since", "1d"], env=env, check=True)
        page = stack_mod.RUN_DIR / "artifacts" / "demo-report.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "shared.cli", "report", "--since", "1d", "--output", "html", "--file", str(page)],
                       env=env, check=True)
        writes = _arm_writes(stack, 0)
        print(f"\n{len(writes)} Azure writes in all; demo took {time.monotonic() - started:.1f}s")
    finally:
        stack.stop()
    return 0


def _show_owner_cards(stack: stack_mod.Stack) -> None:
    """What reached alice's own webhook: Teams cards, who they mention, the time left and the studio link."""
    hooks = stack.emulator.state()["sinks"]["webhooks"]
    for call in hooks.get("alice", []):
        card = call["body"]["attachments"][0]["content"]
        mentioned = [e["mentioned"]["id"] for e in card.get("msteams", {}).get("entities", [])]
        facts = {f["title"]: f["value"] for f in card["body"][-1]["facts"]}
        link = card.get("actions", [{}])[0].get("url", "")
        print(f"   alice's own webhook got an Adaptive Card {card['version']} mentioning {', '.join(mentioned) or 'nobody'};"
              f" time left {facts.get('Time left', '-')}; studio {link[:60]}…")
    print(f"   the operators' webhook got {len(hooks.get('ops', []))} Teams card(s)")


def _keys_state(stack: stack_mod.Stack) -> dict[str, object]:
    state = stack.emulator.state()
    account = next(a for a in state["storage"]["accounts"] if a["name"] == "stmldemo")
    secret = next(s for v in state["keyvault"]["vaults"] for s in v["secrets"] if s["name"] == "stmldemo-key")
    return {"regenerations": dict(account["regenerations"]), "versions": len(secret.get("versions", [])),
            "datastores": {d["name"]: d.get("keyValid") for ws in state["ml"]["workspaces"] for d in ws["datastores"]}}


def _show_rotation(stack: stack_mod.Stack, before: dict[str, object]) -> None:
    after = _keys_state(stack)
    was, now = before["regenerations"], after["regenerations"]
    assert isinstance(was, dict) and isinstance(now, dict)
    counts = ", ".join(f"{key} {was.get(key, 0)} → {now[key]}" for key in sorted(now))
    print(f"   storage key regenerations: {counts}")
    print(f"   secret versions: {before['versions']} → {after['versions']}")
    stores = after["datastores"]
    assert isinstance(stores, dict)
    for valid, said in ((True, "on a valid key"), (False, "NOT on a valid key"), (None, "left untouched (not an account-key datastore)")):
        names = sorted(name for name, v in stores.items() if v is valid)
        if names:
            print(f"   datastores {said}: {', '.join(names)}")


def _retarget(events: object) -> object:
    """The failed run in the demo workspace is etl-nightly-0412 on cpu-cluster."""
    assert isinstance(events, list)
    for event in events:
        event["data"]["runId"] = "etl-nightly-0412"
        event["subject"] = "experiments/etl/runs/etl-nightly-0412"
    return events


def _steering(alert: object) -> object:
    """The unusable-nodes alert with a ClusterName crafted to climb out of its workspace in the URL path."""
    assert isinstance(alert, dict)
    criteria = alert["data"]["alertContext"]["condition"]["allOf"][0]
    criteria["dimensions"] = [{"name": "ClusterName", "value": "../../mlw-prod/computes/gpu-cluster"}]
    return alert


def _cloud(events: object) -> list[dict[str, object]]:
    assert isinstance(events, list)
    return [{"specversion": "1.0", "id": e["id"], "source": e["topic"], "type": e["eventType"], "subject": e["subject"],
             "time": e["eventTime"], "datacontenttype": "application/json", "data": e["data"]} for e in events]


def _brief(compute: dict[str, object]) -> str:
    keys = ("state", "minNodes", "maxNodes", "idleTimeBeforeScaleDown", "idleTimeBeforeShutdown", "currentNodes")
    return " ".join(f"{k}={compute[k]}" for k in keys if compute.get(k) is not None)


if __name__ == "__main__":
    sys.exit(main())

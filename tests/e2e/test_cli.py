"""The operator's `autopilot` command, run as a separate process against the emulator and Azurite."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local.stack import REPO
from shared.model import ResourceId
from shared.work import Kind, sweep
from tests.e2e.conftest import WS, World

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
RULES_AND_TARGETS = [(rule, name) for rule in ("idle-instance", "native-idle-shutdown")
                     for name in ("ci-alice", "ci-bob", "ci-carol", "ci-dave", "ci-erin", "ci-frank")]
RULES_AND_TARGETS += [("cluster-size", "cpu-cluster"), ("cluster-size", "gpu-cluster")]
RULES_AND_TARGETS += [("failed-deployment", f"{e}/deployments/{d}") for e, d in (
    ("churn-api", "blue"), ("churn-api", "green"), ("fraud-api", "v1"), ("fraud-api", "v2"), ("scoring-api", "prod"),
    ("scoring-api", "canary"), ("edge-api", "blue"))]
# Every compute of the demo workspace, by name and type as ARM names it; serverless jobs; online deployments.
INVENTORY = {"ci-alice": "ComputeInstance", "ci-bob": "ComputeInstance", "ci-carol": "ComputeInstance", "ci-dave": "ComputeInstance",
             "ci-erin": "ComputeInstance", "ci-frank": "ComputeInstance", "cpu-cluster": "AmlCompute", "gpu-cluster": "AmlCompute",
             "aks-inference": "AKS", "k8s-arc": "Kubernetes", "vm-gpu-box": "VirtualMachine", "dbx-prod": "Databricks",
             "hdi-spark": "HDInsight", "syn-pool": "SynapseSpark", "adf-pipelines": "DataFactory", "adla-legacy": "DataLakeAnalytics",
             "fabric-pool": "FabricSpark", "sweep-serverless-0031": "Serverless", "score-serverless-0107": "Serverless",
             **{target: "OnlineDeployment (Managed)" for rule, target in RULES_AND_TARGETS if rule == "failed-deployment"},
             "edge-api/deployments/blue": "OnlineDeployment (Kubernetes)"}
INVENTORY_COLUMNS = ["workspace", "name", "type", "state", "size", "nodes", "cores", "owner", "verdict"]
PLAN_COLUMNS = ["workspace", "rule", "target", "decision", "actions", "reason"]
HISTORY_COLUMNS = ["at", "status", "action", "workspace", "target", "reason", "detail", "owner", "trigger"]


def autopilot(world: World, *args: str, stdin: str | None = None, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **world.env(), **settings}
    # azure-ai-ml records its cloud in the environment; an in-process test may have left one the command cannot know.
    env.pop("AZUREML_CURRENT_CLOUD", None)
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], env=env, cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60)


def table_rows(lines: list[str], columns: int) -> list[list[str]]:
    """A printed table's rows, its last cell joined from the continuation lines it was wrapped onto."""
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith(" "):
            rows[-1][-1] += " " + line.strip()
        elif line and not line.startswith("note: "):
            rows.append(line.split(None, columns - 1))
    return rows


def test_plan_prints_a_row_per_rule_and_target_and_writes_nothing(world: World):
    start = world.mark()
    done = autopilot(world, "plan", "--workspace", WS.id)
    assert done.returncode == 0, done.stderr
    verdicts, inventory = done.stdout.split("\n\ninventory of mlw-demo: every compute, serverless job and online deployment\n")
    head, columns, rule, *rows = verdicts.splitlines()
    assert head.startswith("workspace mlw-demo — mode enforce — ")
    assert columns.split() == ["RULE", "TARGET", "DECISION", "ACTIONS", "REASON"] and set(rule) <= {"-", " "}
    table = table_rows(rows, 5)
    assert sorted((r[0], r[1]) for r in table) == sorted(RULES_AND_TARGETS)
    by_key = {(r[0], r[1]): r for r in table}
    assert by_key[("idle-instance", "ci-alice")][2:4] == ["wait", "mark-idle"]
    assert by_key[("idle-instance", "ci-dave")][2:] == ["skip", "-", "exempt: tagged autopilot-exempt=true"]
    assert by_key[("cluster-size", "cpu-cluster")][2:4] == ["act", "scale-cluster"]
    assert world.emulator.journal(start, service="arm"), "plan read the live state"
    assert world.writes(start) == [], "plan is read-only, even in enforce mode"
    inventory_head, _, *inventory_rows = inventory.splitlines()
    assert inventory_head.split() == ["NAME", "TYPE", "STATE", "SIZE", "NODES", "CORES", "OWNER", "VERDICT"]
    names = [line.split()[0] for line in inventory_rows if line and not line.startswith((" ", "note: "))]
    assert sorted(names) == sorted(INVENTORY)


def test_every_compute_type_appears_in_the_plan(world: World):
    start = world.mark()
    as_json = autopilot(world, "plan", "--workspace", WS.id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = {r["name"]: r for r in json.loads(as_json.stdout)["inventory"]}
    assert {name: r["type"] for name, r in rows.items()} == INVENTORY
    for name in ("aks-inference", "k8s-arc", "vm-gpu-box", "dbx-prod", "hdi-spark", "syn-pool", "adf-pipelines", "adla-legacy"):
        assert rows[name]["verdict"].startswith("left alone: ") and "not one this version knows" not in rows[name]["verdict"], name
    assert rows["fabric-pool"]["verdict"] == "left alone: compute type FabricSpark is not one this version knows: listed, never changed"
    assert (rows["aks-inference"]["nodes"], rows["aks-inference"]["cores"]) == (3, 12)  # 3 × Standard_D4s_v3
    assert rows["k8s-arc"]["state"] == "Succeeded (attached)" and rows["k8s-arc"]["cores"] is None
    assert (rows["sweep-serverless-0031"]["cores"], rows["sweep-serverless-0031"]["owner"]) == (8, "alice@contoso.com")
    assert "holds 8 cores of standardDSv2Family (family at " in rows["sweep-serverless-0031"]["verdict"]
    assert rows["ci-alice"]["verdict"] == "idle-instance: wait → mark-idle; native-idle-shutdown: act → set-idle-shutdown" and rows["ci-alice"]["owner"] == "alice@contoso.com"
    as_csv = autopilot(world, "plan", "--workspace", WS.id, "--output", "csv", "--inventory")
    reader = csv.DictReader(io.StringIO(as_csv.stdout))
    assert reader.fieldnames == INVENTORY_COLUMNS
    assert {r["name"]: r["type"] for r in reader} == INVENTORY
    assert world.writes(start) == []


def test_plan_as_json_carries_every_verdict_with_its_actions(world: World):
    start = world.mark()
    done = autopilot(world, "plan", "--workspace", WS.id, "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["workspace"], plan["mode"]) == (WS.id, "enforce")
    verdicts = {(v["rule"], v["target"]): v for v in plan["verdicts"]}
    assert sorted(verdicts) == sorted(RULES_AND_TARGETS)
    cpu = verdicts[("cluster-size", "cpu-cluster")]
    assert cpu["decision"] == "act" and "min nodes 2 → 0" in cpu["reason"]
    assert cpu["actions"] == [{"kind": "scale-cluster", "target": "cpu-cluster",
                               "params": {"min_nodes": 0, "max_nodes": 4, "idle_s": 1800}}]
    assert verdicts[("native-idle-shutdown", "ci-frank")]["actions"][0]["params"] == {"minutes": 60}
    assert verdicts[("idle-instance", "ci-bob")]["decision"] == "keep"
    assert world.writes(start) == []


EXPLAINED = [  # (payload file, exit code, stream, what it says)
    ("run-failed.eventgrid.json", 0, "stdout", "accepted: run train-cpu-failed Failed in mlw-demo"),
    ("run-failed.cloudevent.json", 0, "stdout", "accepted: run train-cpu-failed Canceled in mlw-demo"),
    ("alert-quota.json", 0, "stdout", "accepted: alert 'aml-quota-dsv2'"),
    ("alert-unusable-nodes.json", 0, "stdout", "accepted: alert 'aml-unusable-nodes'"),
    ("secret-near-expiry.eventgrid.json", 0, "stdout", "accepted: secret stmldemo-key in vault kv-ml-demo"),
    ("alert-resolved.json", 0, "stdout", "ignored: alert 'aml-unusable-nodes' resolved"),
    ("model-registered.eventgrid.json", 0, "stdout", "ignored: ModelRegistered needs no remediation"),
    ("run-forged.eventgrid.json", 2, "stderr", "rejected: forged or misrouted: "),
    ("alert-forged.json", 2, "stderr", "rejected: forged or misrouted: alert targets "),
    ("alert-model-deploy-failed.json", 0, "stdout", "accepted: alert 'aml-model-deploy-failed': model deploy failed = 1.0 "
     "('Scenario'='ManagedOnlineEndpoint', 'StatusCode'='InternalServerError') on mlw-demo → deployment-sweep: find failed online"),
    ("alert-not-responding-runs.json", 0, "stdout", "accepted: alert 'aml-not-responding-runs': not responding runs = 1.0 "
     "(no dimensions) on mlw-demo → not-responding: read the not-responding job(s)"),
    ("alert-failed-runs.json", 0, "stdout", "accepted: alert 'aml-failed-runs': failed runs = 2.0 ('RunType'='azureml.scriptrun', "
     "'ComputeType'='AmlCompute') on mlw-demo → cluster-sweep: check every cluster"),
    ("run-not-responding.eventgrid.json", 0, "stdout", "accepted: run score-serverless-0107 NotResponding in mlw-demo: tell its owner "
     "→ not-responding:"),
]


@pytest.mark.parametrize(("name", "code", "stream", "says"), EXPLAINED)
def test_explain_classifies_each_sample_payload_with_its_exit_code(world: World, name, code, stream, says):
    start = world.mark()
    done = autopilot(world, "explain", str(PAYLOADS / name))
    assert done.returncode == code, (done.stdout, done.stderr)
    said, other = (done.stdout, done.stderr) if stream == "stdout" else (done.stderr, done.stdout)
    (line,) = said.splitlines()
    assert line.startswith(says), line
    assert other == ""
    assert world.emulator.journal(start) == [], "explain sends nothing to Azure"


@pytest.mark.parametrize(("text", "says"), [
    pytest.param(None, "rejected: forged or misrouted: ", id="forged event"),
    pytest.param('[{"id": "1", "topic": ', "autopilot: malformed: payload is not JSON", id="not JSON"),
    pytest.param('{"schemaId": "azureMonitorCommonAlertSchema", "data": {}}', "rejected: malformed: alert lacks data.essentials",
                 id="alert without essentials"),
    pytest.param("[]", "rejected: malformed: empty batch", id="empty batch"),
])
def test_explain_reads_stdin_and_refuses_forged_or_malformed_input_with_one_line_and_exit_2(world: World, text, says):
    stdin = (PAYLOADS / "run-forged.eventgrid.json").read_text() if text is None else text
    done = autopilot(world, "explain", "-", stdin=stdin)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(says), line
    assert done.stdout == ""


def test_history_lists_the_outcomes_of_earlier_runs(world: World):
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)

    table = autopilot(world, "history", "--hours", "1")
    assert table.returncode == 0, table.stderr
    rows = table_rows(table.stdout.splitlines()[2:], 6)
    assert [r[2:5] for r in rows] == [["done", "scale-cluster", "mlw-demo/cpu-cluster"]]
    assert rows[0][5].startswith("scale cpu-cluster to min 0 max 4")

    as_json = autopilot(world, "history", "--hours", "1", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (row,) = json.loads(as_json.stdout)
    assert (row["Status"], row["Action"], row["Target"], row["Workspace"]) == ("done", "scale-cluster", "cpu-cluster", "mlw-demo")
    assert row["Detail"].endswith(": verified") and "min nodes 2 → 0" in row["Reason"]


@pytest.mark.parametrize("args", [
    pytest.param(("plan", "--workspace", WS.id), id="plan"),
    pytest.param(("explain", str(PAYLOADS / "alert-quota.json")), id="explain"),
    pytest.param(("history",), id="history"),
])
@pytest.mark.parametrize(("setting", "value"), [("AUTOPILOT_MODE", "enforced"), ("ARM_MAX_RETRIES", "many")])
def test_a_bad_setting_exits_2_naming_the_setting(world: World, args, setting, value):
    start = world.mark()
    done = autopilot(world, *args, **{setting: value})
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"autopilot: {setting}: ") and repr(value) in line, line
    assert done.stdout == ""
    assert world.emulator.journal(start) == []


@pytest.mark.parametrize(("data", "says", "code"), [
    pytest.param(b"[" * 200_000, "autopilot: malformed: payload is not JSON (nested deeper than 32 levels)", 2, id="recursion bomb"),
    pytest.param(b"\x00\xff\xfe binary", "autopilot: malformed: payload is not UTF-8 text", 2, id="binary file"),
    pytest.param(b"x" * (1024 * 1024 + 10), "autopilot: malformed: payload is 1,048,577 bytes, over the 1,048,576-byte limit", 2,
                 id="over 1 MB"),
])
def test_explain_answers_any_file_with_one_line_never_a_traceback(world: World, tmp_path: Path, data, says, code):
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    done = autopilot(world, "explain", str(path))
    assert done.returncode == code
    (line,) = done.stderr.splitlines()
    assert line.startswith(says), line


def test_explain_recognises_the_subscription_validation_handshake_and_exits_0(world: World):
    handshake = [{"id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": "/subscriptions/x/resourceGroups/y", "subject": "",
                  "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
                  "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2018-01-25T22:12:19.4556811Z",
                  "metadataVersion": "1", "dataVersion": "1"}]
    done = autopilot(world, "explain", "-", stdin=json.dumps(handshake))
    assert done.returncode == 0, done.stderr
    assert "SubscriptionValidationEvent" in done.stdout and "Functions host" in done.stdout


def test_not_being_signed_in_is_one_line_that_says_how_to_fix_it(world: World):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "MSI_", "AZURE_"))}
    env |= {k: v for k, v in world.env().items() if not k.startswith("IDENTITY_")}
    env["PATH"] = "/usr/bin:/bin"  # no az, azd or pwsh to sign in with
    done = subprocess.run([sys.executable, "-m", "shared.cli", "plan", "--workspace", WS.id], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert "no Azure credential available: run `az login`" in line and "HTTP None" not in line


def test_plan_as_csv_has_a_header_and_one_row_per_verdict_with_its_workspace(world: World):
    done = autopilot(world, "plan", "--workspace", WS.id, "--output", "csv")
    assert done.returncode == 0, done.stderr
    reader = csv.DictReader(io.StringIO(done.stdout))
    assert reader.fieldnames == PLAN_COLUMNS
    rows = list(reader)
    assert sorted((r["rule"], r["target"]) for r in rows) == sorted(RULES_AND_TARGETS)
    assert {r["workspace"] for r in rows} == {WS.id}
    as_json = json.loads(autopilot(world, "plan", "--workspace", WS.id, "--output", "json").stdout)
    assert {(r["rule"], r["target"]): r["reason"] for r in rows} == {(v["rule"], v["target"]): v["reason"] for v in as_json["verdicts"]}
    by_key = {(r["rule"], r["target"]): r for r in rows}
    assert (by_key[("cluster-size", "cpu-cluster")]["decision"], by_key[("cluster-size", "cpu-cluster")]["actions"]) == ("act", "scale-cluster")


def test_history_as_csv_has_a_header_and_one_row_per_outcome_and_output_json_is_the_json_flag(world: World):
    now = datetime.now(UTC)
    world.engine().run(sweep(Kind.CLUSTER_SWEEP, WS.id, now), now)

    done = autopilot(world, "history", "--hours", "1", "--output", "csv")
    assert done.returncode == 0, done.stderr
    reader = csv.DictReader(io.StringIO(done.stdout))
    assert reader.fieldnames == HISTORY_COLUMNS
    (row,) = list(reader)
    assert (row["status"], row["action"], row["workspace"], row["target"]) == ("done", "scale-cluster", "mlw-demo", "cpu-cluster")
    assert "min nodes 2 → 0" in row["reason"] and row["detail"].endswith(": verified")
    assert datetime.fromisoformat(row["at"]) >= now.replace(microsecond=0)
    assert json.loads(autopilot(world, "history", "--hours", "1", "--output", "json").stdout) == \
        json.loads(autopilot(world, "history", "--hours", "1", "--json").stdout)


def test_version_prints_the_package_version(world: World):
    with (REPO / "pyproject.toml").open("rb") as handle:
        expected = tomllib.load(handle)["project"]["version"]
    done = autopilot(world, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"autopilot {expected}"


def second_workspace(world: World) -> ResourceId:
    """The emulator with a second workspace beside the demo one (the same computes, no datastores)."""
    scenario = json.loads(json.dumps(world.scenario))
    scenario["workspaces"].append({**json.loads(json.dumps(scenario["workspaces"][0])), "name": "mlw-team2", "datastores": []})
    world.emulator.reset(scenario)
    return ResourceId.parse(WS.id.rsplit("/", 1)[0] + "/mlw-team2")


def test_workspace_all_plans_every_allowed_workspace_with_progress_on_stderr(world: World):
    ws2 = second_workspace(world)
    allowed = f"{WS.id},{ws2.id}"
    start = world.mark()

    table = autopilot(world, "plan", "--workspace", "all", ALLOWED_WORKSPACES=allowed)
    assert table.returncode == 0, table.stderr
    assert table.stderr.splitlines() == ["planning 1/2 mlw-demo …", "planning 2/2 mlw-team2 …"]
    heads = [line for line in table.stdout.splitlines() if line.startswith("workspace ")]
    assert [h.split()[1] for h in heads] == ["mlw-demo", "mlw-team2"]

    as_json = autopilot(world, "plan", "--workspace", "all", "--json", ALLOWED_WORKSPACES=allowed)
    assert as_json.returncode == 0, as_json.stderr
    plans = json.loads(as_json.stdout)
    assert [p["workspace"] for p in plans] == [WS.id, ws2.id]
    assert all(sorted((v["rule"], v["target"]) for v in p["verdicts"]) == sorted(RULES_AND_TARGETS) for p in plans)

    as_csv = autopilot(world, "plan", "--workspace", "all", "--output", "csv", ALLOWED_WORKSPACES=allowed)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted({r["workspace"] for r in rows}) == sorted([WS.id, ws2.id])
    assert len(rows) == 2 * len(RULES_AND_TARGETS)
    assert world.writes(start) == []


@pytest.mark.parametrize("connection", ["DefaultEndpointsProtocol=https;AccountName=x", "garbage"])
def test_a_malformed_storage_connection_string_is_one_line_naming_the_setting_and_exit_2(world: World, connection):
    done = autopilot(world, "history", AzureWebJobsStorage=connection)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("autopilot: AzureWebJobsStorage: not a usable storage connection string"), line
    assert done.stdout == ""


def test_an_unreachable_ledger_is_one_line_and_exit_1(world: World):
    parts = [p for p in world.env()["AzureWebJobsStorage"].split(";") if p and not p.endswith("/devstoreaccount1")]
    unreachable = ";".join([*parts, "TableEndpoint=http://127.0.0.1:1/devstoreaccount1"])  # nothing listens on port 1
    done = autopilot(world, "history", AzureWebJobsStorage=unreachable, ARM_MAX_RETRIES="0")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("autopilot: ledger: "), line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [("--hours", "-5"), ("--hours", "0"), ("--hours", "nan"), ("--limit", "0"), ("--limit", "-3")])
def test_a_window_or_limit_that_is_not_positive_is_refused_with_one_line_and_exit_2(world: World, args):
    done = autopilot(world, "history", *args)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"autopilot: history: argument {args[0]}: must be positive"), line
    assert done.stdout == ""


def test_a_reader_that_closes_the_pipe_after_one_line_ends_the_command_quietly(world: World):
    ws2 = second_workspace(world)
    env = {**os.environ, **world.env(), "ALLOWED_WORKSPACES": f"{WS.id},{ws2.id}"}
    env.pop("AZUREML_CURRENT_CLOUD", None)
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)  # smaller than the two plans, so the writer is still writing when the reader leaves
    with subprocess.Popen([sys.executable, "-m", "shared.cli", "plan", "--workspace", "all", "--json"], env=env, cwd=REPO,
                          stdout=write, stderr=subprocess.PIPE, text=True) as proc:
        os.close(write)
        first = b""
        while not first.endswith(b"\n"):
            first += os.read(read, 1)
        os.close(read)
        stderr = proc.stderr.read() if proc.stderr else ""
        code = proc.wait(timeout=60)
    assert first == b"[\n"
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert stderr.splitlines() == ["planning 1/2 mlw-demo …", "planning 2/2 mlw-team2 …"]
    assert code == 141, "as a process stopped by SIGPIPE"


def test_a_long_reason_is_wrapped_onto_continuation_lines_and_no_text_is_lost(world: World):
    done = autopilot(world, "plan", "--workspace", WS.id, COLUMNS="100")
    assert done.returncode == 0, done.stderr
    verdict_table, inventory_table = done.stdout.split("\n\ninventory of ")
    lines = verdict_table.splitlines()
    inventory_lines = inventory_table.splitlines()[1:]
    verdict_at = inventory_lines[0].index("VERDICT")
    assert all(line[:verdict_at].strip() == "" for line in inventory_lines[2:] if line.startswith(" ")), "aligned under VERDICT"
    continued = [line for line in lines[3:] if line.startswith(" ")]
    assert continued, "some reason is longer than the room left and wraps"
    reason_at = lines[1].index("REASON")
    assert all(line[:reason_at].strip() == "" for line in continued), "continuation lines align under REASON"
    printed = {(r[0], r[1]): r[4] for r in table_rows(lines[3:], 5)}
    verdicts = json.loads(autopilot(world, "plan", "--workspace", WS.id, "--json").stdout)["verdicts"]
    assert {(v["rule"], v["target"]): " ".join(v["reason"].split()) for v in verdicts} == printed
    assert max(len(line) for line in lines[1:]) <= max(100, reason_at + 40)


def test_workspace_all_with_a_scope_plans_every_workspace_resource_graph_finds_there(world: World):
    ws2 = second_workspace(world)
    start = world.mark()
    found = autopilot(world, "plan", "--workspace", "all", "--json", ALLOWED_WORKSPACES="",
                      ALLOWED_SCOPES=f"/subscriptions/{WS.subscription}")
    assert found.returncode == 0, found.stderr
    assert sorted(p["workspace"] for p in json.loads(found.stdout)) == sorted([WS.id, ws2.id])
    assert [e["path"] for e in world.emulator.journal(start) if "ResourceGraph" in e["path"]] == [
        "/providers/Microsoft.ResourceGraph/resources"]
    assert world.writes(start) == []

"""Failed deployments, not-responding jobs and the inventory: the pure rules as tables, then the real engine
and guards on in-memory ports for what may change between a decision and its write."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from local.memory import MemoryLedger, MemoryMetrics, MemoryNotifier, MemoryWorkspace
from shared.actions import REGISTRY, CancelJob, DeleteDeployment, change_from
from shared.adapters.aml import deployment_from_arm, endpoint_from_arm
from shared.engine import Engine
from shared.model import (
    ActionKind,
    Decision,
    DeploymentState,
    Job,
    Mark,
    Mode,
    OnlineDeployment,
    OnlineEndpoint,
    OtherCompute,
    Status,
    Usage,
    studio_link,
)
from shared.policy.common import Exemptions
from shared.policy.decide import Purpose, Rules, Snapshot, decide
from shared.policy.deployments import DeploymentRules, judge_deployment, log_tail, redact
from shared.policy.inventory import LEFT_ALONE, inventory
from shared.policy.runs import judge_not_responding
from shared.settings import Settings, SettingsError
from shared.work import Kind, WorkItem, sweep
from tests.unit.builders import NOW, WS, ago, cluster, instance, job

SIZES = {"standard_ds3_v2": ("standardDSv2Family", 4), "standard_nc6s_v3": ("standardNCSv3Family", 6)}
RULES = DeploymentRules(timedelta(minutes=60), Exemptions("autopilot-exempt"))


def deployment(name: str = "canary", state: str = "Failed", endpoint: str = "api", kind: str = "Managed", count: int = 2,
               tags: dict[str, str] | None = None) -> OnlineDeployment:
    return OnlineDeployment(WS, endpoint, name, kind, state, "Standard_DS3_v2", count, "dave@contoso.com", tags or {})


def endpoint(traffic: dict[str, int] | None = None, mirror: dict[str, int] | None = None, name: str = "api") -> OnlineEndpoint:
    return OnlineEndpoint(name, "Managed", "Succeeded", traffic or {"prod": 100}, mirror or {})


def mark_of(d: OnlineDeployment, minutes: float) -> Mark:
    return Mark(d.key, ago(minutes), "failed")


def judge(d: OnlineDeployment, ep: OnlineEndpoint | None, marked_ago: float | None = None, siblings: tuple[OnlineDeployment, ...] = ()):
    mark = None if marked_ago is None else mark_of(d, marked_ago)
    return judge_deployment(d, ep, (d, *siblings), mark, "line 1\nERROR boom", "502", SIZES, RULES, NOW)


# --- the failed-deployment rule --------------------------------------------------------------------


@pytest.mark.parametrize(("case", "d", "ep", "marked_ago", "decision", "kinds"), [
    ("a healthy deployment is kept", deployment(state="Succeeded"), endpoint(), None, Decision.KEEP, []),
    ("a failed one with no traffic is first marked and told why", deployment(), endpoint(), None, Decision.ACT,
     [ActionKind.MARK_FAILED_DEPLOYMENT]),
    ("a marked one waits out the grace period", deployment(), endpoint(), 30, Decision.WAIT, []),
    ("a marked one still failed with no traffic after the grace is deleted", deployment(), endpoint(), 61, Decision.ACT,
     [ActionKind.DELETE_DEPLOYMENT]),
    ("a marked one that recovered is kept and its mark cleared", deployment(state="Succeeded"), endpoint(), 61, Decision.KEEP,
     [ActionKind.CLEAR_MARK]),
    ("one receiving live traffic is told, never deleted", deployment(), endpoint({"prod": 90, "canary": 10}), 600,
     Decision.KEEP, []),
    ("one receiving only mirror traffic is never deleted", deployment(), endpoint(mirror={"CANARY": 5}), 600, Decision.KEEP, []),
    ("a Kubernetes one is reported, never deleted", deployment(kind="Kubernetes"), endpoint(), 600, Decision.KEEP, []),
    ("one whose endpoint cannot be read is never deleted", deployment(), None, 600, Decision.KEEP, []),
    ("an exempt one is left alone", deployment(tags={"autopilot-exempt": ""}), endpoint(), 600, Decision.SKIP, []),
])
def test_the_failed_deployment_rule(case, d, ep, marked_ago, decision, kinds):
    verdict = judge(d, ep, marked_ago)
    assert verdict.decision is decision, (case, verdict.reason)
    assert [a.kind for a in verdict.actions] == kinds, case


def test_a_deployment_with_traffic_is_told_the_endpoint_the_share_at_risk_and_who_could_take_it():
    healthy, broken = deployment("prod", "Succeeded"), deployment("blue", "Failed")
    verdict = judge(deployment(), endpoint({"prod": 70, "canary": 30}, {"canary": 10}), siblings=(healthy, broken))
    (mark,) = verdict.actions
    assert mark.kind is ActionKind.MARK_FAILED_DEPLOYMENT
    assert "endpoint api sends it 30 % of traffic and 10 % of mirror traffic" in verdict.reason
    assert "that share is at risk; never deleted" in verdict.reason and "could take it: prod;" in verdict.reason
    assert "status code 502" in verdict.reason and "ERROR boom" in verdict.reason


def test_the_delete_states_the_cores_it_frees_and_round_trips_through_the_ledger_record():
    (delete,) = judge(deployment(count=3), endpoint(), 61).actions
    change = delete.change
    assert isinstance(change, DeleteDeployment) and change.cores_freed == 12  # 3 × Standard_DS3_v2 (4 vCPUs)
    assert delete.resource_id == f"{WS.id}/onlineEndpoints/api/deployments/canary"
    assert change_from("delete-deployment", change.params()) == change
    assert change.target_problem("api/deployments/canary") is None
    assert change.target_problem("../x/deployments/y") and change.target_problem("api/canary")


@pytest.mark.parametrize(("text", "kept", "gone"), [
    ("AZURE_STORAGE_KEY=c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs=", "AZURE_STORAGE_KEY=[redacted]", "c2VjcmV0"),
    ('{"password": "hunter2-really"}', '"password": "[redacted]', "hunter2"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdef", "Bearer [redacted]", "eyJhbGci"),
    ("DefaultEndpointsProtocol=https;AccountName=st;AccountKey=abc123def456==;", "AccountKey=[redacted]", "abc123def456"),
    ("https://st.blob.core.windows.net/c/m.pkl?sv=2022&sig=ZmFrZXNpZ25hdHVyZQ%3D%3D", "sig=[redacted]", "ZmFrZXNpZ25hdHVyZQ"),
    ("token: 0123456789abcdef0123456789abcdef0123", "token: [redacted]", "0123456789abcdef"),
    ("ERROR init() failed: FileNotFoundError: /var/azureml-app/model/model.pkl", "FileNotFoundError: /var/azureml-app/model/model.pkl", "[redacted]"),
])
def test_anything_that_looks_like_a_secret_is_redacted_from_a_log_tail_and_the_rest_kept(text, kept, gone):
    out = redact(text)
    assert kept in out and gone not in out


@pytest.mark.parametrize(("text", "kept", "gone"), [
    ("connecting to postgres://scorer:Hunter2pass@db.contoso.com:5432/features", "postgres://scorer:[redacted]@db.contoso.com", "Hunter2"),
    ("GET https://svc:p4ss@feature-store/x returned 401", "https://svc:[redacted]@feature-store/x returned 401", "p4ss"),
    ('password = "correct horse battery staple"', 'password = "[redacted]"', "horse"),
    ('{"client_secret": "two words", "user": "ml"}', '"client_secret": "[redacted]", "user": "ml"', "words"),
    ("PWD='a b c'", "PWD='[redacted]'", "a b c"),
    ("Authorization: Bearer abc.def", "Bearer [redacted]", "abc.def"),
    ("model from https%3A%2F%2Fst.blob%3Fsv%3D2022%26sig%3DZmFrZQ%253D", "sig%3D[redacted]", "ZmFrZQ"),
])
def test_passwords_in_urls_quoted_secrets_short_bearer_tokens_and_encoded_signatures_are_redacted(text, kept, gone):
    out = redact(text)
    assert kept in out and gone not in out, out


def test_a_log_tail_carries_no_terminal_escape_control_or_invisible_reordering_character():
    tail = log_tail("boot\x00ing\x07\r\nERROR \x1b[31mno model\x1b[0m \x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
                    "\u202egnp.exe\u200b done\x85")
    assert tail == "booting | ERROR no model clickgnp.exe done"


# --- not-responding runs ------------------------------------------------------------------------


def silent(minutes: float = 50, status: str = "NotResponding") -> Job:
    return Job("score-1", status, None, ago(300), ago(minutes), owner="bob@contoso.com")


@pytest.mark.parametrize(("case", "j", "cancel_after", "kinds"), [
    ("without the opt-in it is only told", silent(), None, [ActionKind.NOTIFY]),
    ("with the opt-in but within the limit it is only told", silent(50), timedelta(minutes=60), [ActionKind.NOTIFY]),
    ("with the opt-in and past the limit it is cancelled", silent(61), timedelta(minutes=60), [ActionKind.NOTIFY, ActionKind.CANCEL_JOB]),
    ("a job responding again is kept", silent(status="Running"), timedelta(minutes=1), []),
])
def test_cancel_only_with_the_opt_in(case, j, cancel_after, kinds):
    verdict = judge_not_responding(WS, j, cancel_after, NOW)
    assert [a.kind for a in verdict.actions] == kinds, case
    if kinds:
        assert studio_link(WS, "score-1") in verdict.reason and "owner bob@contoso.com" in verdict.reason
        assert all(a.owner == "bob@contoso.com" and a.resource_id == f"{WS.id}/jobs/score-1" for a in verdict.actions)


def test_the_cancel_opt_in_is_a_setting_off_by_default_and_moving_traffic_is_refused():
    base = {"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert Rules.from_settings(Settings.from_env(base)).cancel_not_responding_after is None
    assert Rules.from_settings(Settings.from_env({**base, "NOT_RESPONDING_CANCEL_MINUTES": "45"})).cancel_not_responding_after == \
        timedelta(minutes=45)
    with pytest.raises(SettingsError, match="MOVE_TRAFFIC_FROM_FAILED: moving traffic off a failed deployment is not implemented"):
        Settings.from_env({**base, "MOVE_TRAFFIC_FROM_FAILED": "true"})


# --- the inventory -------------------------------------------------------------------------------


ARM_TYPES = ("Kubernetes", "AKS", "VirtualMachine", "Databricks", "HDInsight", "SynapseSpark", "DataFactory", "DataLakeAnalytics")


def test_every_compute_type_appears_in_the_plan():
    others = tuple(OtherCompute(WS, f"c-{t.lower()}", t, "Succeeded", "Standard_DS3_v2" if t == "AKS" else "", 3 if t == "AKS" else None)
                   for t in (*ARM_TYPES, "QuantumAnnealer"))
    computes = (instance("ci-a"), cluster("cpu", current=2), *others)
    jobs = (Job("sls-1", "Running", None, ago(30), None, "alice", "Standard_DS3_v2", 2), job("nb", "Running", "ci-a"))
    snap = Snapshot(WS, computes, jobs, {}, usages=(Usage("standardDSv2Family", 20, 24),), sizes=SIZES,
                    deployments=(deployment(),), endpoints=(endpoint(),))
    decided = decide(Purpose.PLAN, {}, snap, Rules.from_settings(Settings.from_env(
        {"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})), NOW)
    rows = {r.name: r for r in decided.inventory}
    assert set(rows) == {c.name for c in computes} | {"sls-1", "api/deployments/canary"}
    for t in ARM_TYPES:
        row = rows[f"c-{t.lower()}"]
        assert row.type == t and row.verdict == f"left alone: {LEFT_ALONE[t]}"
    assert rows["c-quantumannealer"].verdict.startswith("left alone: compute type QuantumAnnealer is not one this version knows")
    assert (rows["c-aks"].nodes, rows["c-aks"].cores) == (3, 12)
    assert rows["ci-a"].verdict.startswith("idle-instance: keep") and rows["cpu"].cores == 8
    serverless = rows["sls-1"]
    assert (serverless.type, serverless.nodes, serverless.cores) == ("Serverless", 2, 8)
    assert "holds 8 cores of standardDSv2Family (family at 20/24)" in serverless.verdict
    assert rows["api/deployments/canary"].verdict == "failed-deployment: act → mark-failed-deployment"


def test_the_inventory_drops_nothing_whatever_the_mix():
    rows = inventory((OtherCompute(WS, "x", "", "Unknown"),), (), (), (), {}, ())
    assert [(r.name, r.type) for r in rows] == [("x", "")] and rows[0].verdict.startswith("left alone:")


# --- the engine and its guards: what changed between the decision and the write ------------------


def settings(**env: str) -> Settings:
    return Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "AUTOPILOT_MODE": "enforce", "FAILED_DEPLOYMENT_GRACE_MINUTES": "60", **env})


def run_sweep(ws: MemoryWorkspace, ledger: MemoryLedger, s: Settings | None = None, minutes: float = 0):
    now = NOW + timedelta(minutes=minutes)
    eng = Engine(s or settings(), lambda rid: ws, MemoryMetrics(), ledger, MemoryNotifier())
    return eng.run(sweep(Kind.DEPLOYMENT_SWEEP, WS.id, now), now)


class TrafficArrives(MemoryWorkspace):
    """A workspace whose endpoint starts sending the failed deployment traffic right after the sweep listed it."""

    def list_deployments(self, endpoint_name: str) -> list[OnlineDeployment]:
        listed = super().list_deployments(endpoint_name)
        self.endpoints = [endpoint({"prod": 80, "canary": 20}) if e.name == endpoint_name else e for e in self.endpoints]
        return listed


def test_never_delete_a_deployment_that_starts_receiving_traffic_between_the_decision_and_the_delete():
    d = deployment()
    ws = TrafficArrives(WS, endpoints=[endpoint()], deployments=[d], sizes=SIZES)
    ledger = MemoryLedger()
    ledger.put_mark(Mark(d.key, NOW - timedelta(minutes=90), "failed", Mode.ENFORCE))
    report = run_sweep(ws, ledger)
    (outcome,) = [o for o in report.outcomes if o.action.kind is ActionKind.DELETE_DEPLOYMENT]
    assert outcome.status is Status.SKIPPED and "20 % of traffic" in outcome.detail and "(re-read)" in outcome.detail
    assert ws.writes == [] and ws.deployments == [d]


class Recovers(MemoryWorkspace):
    """A workspace whose failed deployment succeeds on its redeploy right after the sweep listed it."""

    def list_deployments(self, endpoint_name: str) -> list[OnlineDeployment]:
        listed = super().list_deployments(endpoint_name)
        self.deployments = [deployment(state="Succeeded")]
        return listed


def test_a_deployment_that_recovered_between_the_decision_and_the_delete_is_kept():
    d = deployment()
    ws = Recovers(WS, endpoints=[endpoint()], deployments=[d], sizes=SIZES)
    ledger = MemoryLedger()
    ledger.put_mark(Mark(d.key, NOW - timedelta(minutes=90), "failed", Mode.ENFORCE))
    (outcome,) = [o for o in run_sweep(ws, ledger).outcomes if o.action.kind is ActionKind.DELETE_DEPLOYMENT]
    assert outcome.status is Status.SKIPPED and "recovered" in outcome.detail
    assert ws.writes == []


def test_a_failed_deployment_is_marked_then_deleted_verified_and_its_mark_cleared_on_memory_ports():
    d = deployment()
    ws = MemoryWorkspace(WS, endpoints=[endpoint()], deployments=[d], sizes=SIZES, logs={"api/canary": "ok\nERROR no model"})
    ledger = MemoryLedger()
    first = run_sweep(ws, ledger)
    assert [(o.action.kind, o.status) for o in first.outcomes] == [(ActionKind.MARK_FAILED_DEPLOYMENT, Status.DONE)]
    assert "ERROR no model" in first.outcomes[0].action.reason and d.key in ledger.marks()
    assert ("deployment_logs", ("api/canary",)) in ws.calls
    ws.calls.clear()
    later = run_sweep(ws, ledger, minutes=61)
    (delete,) = later.outcomes
    assert (delete.action.kind, delete.status) == (ActionKind.DELETE_DEPLOYMENT, Status.DONE)
    assert ws.deployments == [] and d.key not in ledger.marks()
    assert ("deployment_logs", ("api/canary",)) not in ws.calls  # a marked deployment's log was read when it was told


def test_a_job_that_reported_again_before_the_cancel_is_left_alone():
    j = silent(90)
    ws = MemoryWorkspace(WS, jobs=[j])
    eng = Engine(settings(NOT_RESPONDING_CANCEL_MINUTES="30"), lambda rid: ws, MemoryMetrics(), MemoryLedger(), MemoryNotifier())
    original = ws.get_job

    def reported(name: str) -> Job | None:  # the job moved on between the decision and the re-read
        found = original(name)
        return None if found is None else Job(found.name, "Running", None, found.created_at, NOW, owner=found.owner)
    ws.get_job = reported  # type: ignore[method-assign]
    report = eng.run(WorkItem(Kind.NOT_RESPONDING, WS.id, "t-1", {}), NOW)
    (cancel,) = [o for o in report.outcomes if o.action.kind is ActionKind.CANCEL_JOB]
    assert cancel.status is Status.SKIPPED and "status is now Running (re-read)" in cancel.detail
    assert not [c for c in ws.calls if c[0] == "cancel_job"]


def test_the_new_kinds_are_registered_typed_and_frozen():
    for kind in (ActionKind.MARK_FAILED_DEPLOYMENT, ActionKind.DELETE_DEPLOYMENT, ActionKind.CANCEL_JOB):
        assert REGISTRY[kind].kind is kind
    with pytest.raises(AttributeError):
        CancelJob().seen_since = "x"  # type: ignore[misc]


def test_a_not_responding_job_keeps_protecting_its_cluster_from_a_scale_down():
    from shared.policy.clusters import judge_cluster

    rules = Rules.from_settings(settings())
    verdict = judge_cluster(cluster("cpu", min_nodes=2, current=2), (job("stuck", "NotResponding", compute="CPU", created_ago=600),),
                            rules.clusters, NOW, None)
    assert verdict.decision is not Decision.ACT and not verdict.actions and "NotResponding" in verdict.reason


@pytest.mark.parametrize(("deletable", "mode", "channels", "said", "detail"), [
    (True, Mode.ENFORCE, ("webhook",), "failed deployment: deleted after the grace period if still failed with no traffic",
     "marked failed; message for owner dave@contoso.com sent via webhook; owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS"),
    (True, Mode.OBSERVE, ("webhook",), "failed deployment: would be deleted after the grace period (observe mode: nothing is deleted)",
     "marked failed; message for owner dave@contoso.com sent via webhook; owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS"),
    (False, Mode.ENFORCE, ("webhook",), "failed deployment: reported only: it is never deleted while it receives traffic or runs on Kubernetes",
     "marked failed; message for owner dave@contoso.com sent via webhook; owner not reached directly: no route for them in NOTIFY_OWNER_WEBHOOKS"),
    (True, Mode.ENFORCE, (), None, "marked failed; owner dave@contoso.com not told: no notification channel is configured"),
])
def test_a_failed_deployment_is_marked_only_once_its_owner_is_told_and_never_promised_a_delete_it_will_not_get(
        deletable, mode, channels, said, detail):
    from shared.actions import MarkFailedDeployment
    from shared.model import Action

    d = deployment()
    action = Action(MarkFailedDeployment(deletable=deletable), WS, d.target, "why", owner=d.owner)
    ledger, notifier = MemoryLedger(), MemoryNotifier(channels=channels)
    status, text = action.change.apply(action, ledger, notifier, NOW, mode)  # type: ignore[attr-defined]
    assert (status, text) == (Status.DONE, detail)
    assert [o.detail for o in notifier.sent] == ([said] if said else [])
    assert d.key in ledger.marks()
    down = MemoryNotifier(channels=("webhook",), down=("webhook",))
    assert action.change.apply(action, MemoryLedger(), down, NOW, mode)[0] is Status.FAILED  # type: ignore[attr-defined]


def test_a_failed_deployment_whose_log_cannot_be_read_is_still_told_and_a_vanished_endpoint_is_skipped():
    from shared.errors import AzureError, Gone

    d = deployment()
    gone = endpoint(name="gone-api")
    ws = MemoryWorkspace(WS, endpoints=[endpoint(), gone], deployments=[d], sizes=SIZES,
                         fail={"deployment_logs": AzureError("400 no container started", transient=False),
                               "list_deployments:gone-api": Gone("gone-api: not found")})
    report = run_sweep(ws, MemoryLedger())
    (told,) = report.outcomes
    assert told.status is Status.DONE and "(the inference server log could not be read: 400 no container started)" in told.action.reason
    ws.fail["deployment_logs"] = AzureError("503", transient=True)
    with pytest.raises(AzureError) as raised:  # a transient error still makes the platform retry the work
        run_sweep(ws, MemoryLedger())
    assert raised.value.transient


def test_a_huge_log_is_read_from_its_end_in_bounded_time_and_a_cut_secret_leaves_no_fragment():
    import time

    from shared.policy.deployments import log_tail

    started = time.perf_counter()
    tail = log_tail("x" * 2_000_000 + "\nERROR the end")
    assert time.perf_counter() - started < 1.0 and tail == "ERROR the end"
    cut = "password=" + "s3cr" * 1000 + " and then\nERROR boom"  # the secret's name falls outside the part read
    assert "s3cr" not in log_tail(cut) and log_tail(cut).endswith("ERROR boom")


def test_a_deployment_told_it_is_not_deleted_is_told_afresh_before_any_delete_once_its_traffic_drops_to_zero():
    from shared.actions import REPORTED_ONLY

    d = deployment()
    reported = Mark(d.key, ago(600), REPORTED_ONLY + "failed while endpoint api sends it 10 % of traffic", Mode.ENFORCE)
    verdict = judge_deployment(d, endpoint(), (d,), reported, None, None, SIZES, RULES, NOW)  # traffic now 0 %, 10h later
    (again,) = verdict.actions
    assert again.kind is ActionKind.MARK_FAILED_DEPLOYMENT and again.change.params() == {}  # deletable: told it will be deleted
    assert "it no longer receives traffic" in verdict.reason
    ledger = MemoryLedger()
    again.change.apply(again, ledger, MemoryNotifier(), NOW, Mode.ENFORCE)  # type: ignore[attr-defined]
    fresh = ledger.marks()[d.key]
    assert fresh.marked_at == NOW and not fresh.reason.startswith(REPORTED_ONLY)  # a new grace period starts now
    later = judge_deployment(d, endpoint(), (d,), fresh, None, None, SIZES, RULES, NOW + timedelta(minutes=61))
    assert [a.kind for a in later.actions] == [ActionKind.DELETE_DEPLOYMENT]


def arm_endpoint(traffic: object, mirror: object = None) -> dict[str, object]:
    props: dict[str, object] = {"provisioningState": "Succeeded", "endpointComputeType": "Managed"}
    if traffic is not ...:
        props["traffic"] = traffic
    if mirror is not None:
        props["mirrorTraffic"] = mirror
    return {"name": "api", "properties": props}


@pytest.mark.parametrize(("case", "body"), [
    ("a share given as text", arm_endpoint({"prod": 90, "canary": "10"})),
    ("a fractional share", arm_endpoint({"prod": 99.5, "canary": 0.5})),
    ("a negative share cancelling another spelling of the name", arm_endpoint({"prod": 100, "canary": 10, "CANARY": -10})),
    ("a share that is true", arm_endpoint({"prod": 100, "canary": True})),
    ("a mirror share given as text", arm_endpoint({"prod": 100}, {"canary": "5"})),
    ("traffic that is not a map", arm_endpoint("canary=10")),
    ("no traffic map at all", arm_endpoint(...)),
])
def test_never_delete_a_failed_deployment_whose_endpoint_traffic_split_cannot_be_read_as_whole_percents(case, body):
    ep = endpoint_from_arm(body)
    assert ep.unreadable, case
    verdict = judge(deployment(), ep, 600)
    assert verdict.decision is Decision.KEEP and verdict.actions == (), (case, verdict.reason)
    assert "never deleted" in verdict.reason and "unreadable" in verdict.reason
    fresh = DeploymentState(deployment(), ep)
    assert "unreadable" in (DeleteDeployment().precheck(fresh, ()) or ""), case


def test_a_missing_mirror_traffic_map_is_none_and_a_traffic_key_in_another_case_still_protects_the_deployment():
    ep = endpoint_from_arm(arm_endpoint({"prod": 90, "CaNaRy": 10}))
    assert not ep.unreadable and ep.share("canary") == (10, 0)
    assert judge(deployment(), ep, 600).decision is Decision.KEEP
    assert DeleteDeployment().precheck(DeploymentState(deployment(), ep), ()) is not None
    idle = endpoint_from_arm(arm_endpoint({"prod": 100, "canary": 0.0}))
    assert not idle.unreadable and judge(deployment(), idle, 61).actions[0].kind is ActionKind.DELETE_DEPLOYMENT


class NamelessReRead(MemoryWorkspace):
    """A workspace whose deployment, read back by name just before the delete, comes without its name."""

    def get_deployment(self, endpoint_name: str, name: str) -> OnlineDeployment | None:
        found = super().get_deployment(endpoint_name, name)
        return None if found is None else replace(found, name="")


def test_the_traffic_re_read_before_a_delete_is_looked_up_by_the_name_the_delete_would_use():
    d = deployment()
    ws = NamelessReRead(WS, endpoints=[endpoint({"prod": 70, "canary": 30})], deployments=[d], sizes=SIZES)
    fresh = DeleteDeployment().read(d.target, ws)
    assert DeleteDeployment().precheck(fresh, ()) == "it now receives 30 % of traffic and 0 % of mirror traffic (re-read)"


def test_an_endpoint_or_deployment_whose_listed_name_breaks_azures_naming_rule_is_said_and_never_requested():
    bad_endpoint = OnlineEndpoint("..", "Managed", "Succeeded", {}, {})
    ws = MemoryWorkspace(WS, endpoints=[endpoint(), bad_endpoint],
                         deployments=[deployment(), deployment("x?api-version=1"), deployment("..", endpoint="..")], sizes=SIZES)
    report = run_sweep(ws, MemoryLedger())
    assert [o.action.target for o in report.outcomes] == ["api/deployments/canary"]
    assert any("online endpoint name '..' breaks Azure's naming rule" in n for n in report.notes)
    assert any("online deployment name 'x?api-version=1' breaks Azure's naming rule" in n for n in report.notes)
    requested = [args for _, args in ws.calls if args]
    assert all(".." not in a and "?" not in a for args in requested for a in args)


@pytest.mark.parametrize("odd", [
    {"properties": ["Failed"], "sku": "Standard", "systemData": "dave", "tags": ["x"]},
    {"properties": {"provisioningState": "Failed", "scaleSettings": 3}, "systemData": {"createdBy": {"upn": "dave@contoso.com"}}},
    {"properties": {"provisioningState": "Failed"}, "sku": {"capacity": "lots"}, "systemData": {"createdBy": ["dave"]}, "tags": None},
])
def test_a_deployment_body_with_fields_of_the_wrong_type_reads_as_absent_and_names_no_owner(odd):
    d = deployment_from_arm(WS, "api", {"name": "canary", **odd})
    assert d.name == "canary" and d.owner is None and d.instance_count == 1 and isinstance(d.tags, dict)

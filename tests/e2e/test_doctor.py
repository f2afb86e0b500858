"""`autopilot doctor` against the emulator: every check passes on the local stack, and each failure names its fix."""

from __future__ import annotations

import os
import subprocess
import sys

from local.emulator.client import DEMO_SUBSCRIPTION
from local.stack import REPO
from shared.adapters.permissions import COMPUTE_OPERATION, SECRET_SET, grants
from shared.doctor import allowed, claims, missing, who
from tests.e2e.conftest import World
from tests.e2e.test_cli import autopilot


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


def test_doctor_against_the_local_stack_passes_every_check_and_exits_0(world: World):
    start = world.mark()
    done = autopilot(world, "doctor")
    assert done.returncode == 0, (done.stdout, done.stderr)
    said = lines(done)
    assert said and all(line.startswith("✓ ") for line in said), said
    whats = [line.split(":", 1)[0] for line in said]
    assert whats[:3] == ["✓ settings", "✓ identity", "✓ workspace mlw-demo"]
    assert "✓ CPU metrics of mlw-demo" in whats
    assert any(w.startswith("✓ permissions on subscription ") for w in whats)
    assert any(w.startswith("✓ permissions on vault ") for w in whats)
    assert any(w.startswith("✓ permissions on storage account ") for w in whats)
    assert whats[-1].startswith("✓ vault ")
    assert world.writes(start) == [], "doctor only reads"


def test_doctor_with_a_scope_finds_the_workspaces_through_resource_graph_and_checks_each(world: World):
    done = autopilot(world, "doctor", ALLOWED_WORKSPACES="", ALLOWED_SCOPES=f"/subscriptions/{DEMO_SUBSCRIPTION}")
    assert done.returncode == 0, (done.stdout, done.stderr)
    said = lines(done)
    assert said[2] == "✓ discovery: 1 more workspace(s) found in 1 scope(s) through Resource Graph"
    assert "✓ workspace mlw-demo: readable (westeurope)" in said


def test_doctor_names_an_action_the_identity_lacks_with_its_reason_and_exits_1(world: World):
    world.emulator.control("POST", "permissions", {"deny": [COMPUTE_OPERATION.action, SECRET_SET.action]})
    done = autopilot(world, "doctor")
    assert done.returncode == 1, (done.stdout, done.stderr)
    failed = [line for line in lines(done) if line.startswith("✗ ")]
    assert len(failed) == 2, lines(done)
    subscription, vault = failed
    assert subscription.startswith("✗ permissions on subscription ")
    assert f"missing {COMPUTE_OPERATION.action} ({COMPUTE_OPERATION.reason})" in subscription
    assert vault.startswith("✗ permissions on vault ") and SECRET_SET.action in vault


def test_a_reset_grants_the_denied_action_again(world: World):
    world.emulator.control("POST", "permissions", {"deny": [COMPUTE_OPERATION.action]})
    world.emulator.reset(world.scenario)
    assert autopilot(world, "doctor").returncode == 0


def test_doctor_without_a_credential_says_to_run_az_login_and_exits_1(world: World):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "MSI_", "AZURE_"))}
    env |= {k: v for k, v in world.env().items() if not k.startswith("IDENTITY_")}
    env["PATH"] = "/usr/bin:/bin"  # no az, azd or pwsh to sign in with
    done = subprocess.run([sys.executable, "-m", "shared.cli", "doctor"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    settings, identity = lines(done)
    assert settings.startswith("✓ settings")
    assert identity.startswith("✗ identity: ") and "az login" in identity and "HTTP None" not in identity


def test_doctor_with_a_bad_setting_names_it_and_exits_2(world: World):
    done = autopilot(world, "doctor", AUTOPILOT_MODE="enforced")
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = lines(done)
    assert line.startswith("✗ settings: AUTOPILOT_MODE: expected one of observe, enforce; got 'enforced'")


def test_wildcards_and_exclusions_are_read_as_azure_reads_them():
    reader = [{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]
    assert allowed("Microsoft.MachineLearningServices/workspaces/computes/read", reader)
    assert not allowed("Microsoft.MachineLearningServices/workspaces/computes/stop/action", reader)
    ml = [{"actions": ["microsoft.machinelearningservices/workspaces/*"], "notActions": ["*/computes/stop/*"]}]
    assert allowed("Microsoft.MachineLearningServices/workspaces/computes/write", ml)
    assert not allowed("Microsoft.MachineLearningServices/workspaces/computes/stop/action", ml)
    # An exclusion removes only what its own entry grants; another role may still grant the action.
    assert allowed("Microsoft.MachineLearningServices/workspaces/computes/stop/action", [*ml, {"actions": ["*"]}])
    # Data actions are granted by dataActions only.
    owner = [{"actions": ["*"], "notActions": []}]
    assert [g.action for g in missing([SECRET_SET], owner)] == [SECRET_SET.action]
    assert missing(grants().values(), [{"actions": ["*"], "dataActions": ["*"]}]) == []


def test_a_token_is_named_by_its_user_or_its_application():
    import base64
    import json

    def token(payload: dict[str, str]) -> str:
        return "h." + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=") + ".s"

    assert who(claims(token({"upn": "ana@contoso.com", "oid": "o1", "tid": "t1"}))) == "user ana@contoso.com (object id o1, tenant t1)"
    assert who(claims(token({"appid": "a1", "oid": "o2"}))) == "application a1 (object id o2)"
    assert claims("not a token") == {}


def test_doctor_checks_run_history_shows_every_job_arm_has_active_on_its_computes(world: World):
    said = lines(autopilot(world, "doctor"))
    (check,) = [line for line in said if line.startswith("✓ run history of mlw-demo: ")]
    assert "agrees with ARM's jobs list" in check and "active job(s) on 8 instance(s) and cluster(s)" in check


def test_doctor_names_a_job_run_history_does_not_show_and_says_to_read_arms_list(world: World):
    world.emulator.fault(method="GET", path="/computes/ci-bob/runs$", status=200, body={"value": [], "continuationToken": None},
                         times=1)
    done = autopilot(world, "doctor")
    assert done.returncode == 1
    (check,) = [line for line in lines(done) if line.startswith("✗ run history of mlw-demo: ")]
    assert "train-bob-0001 (Running) on ci-bob" in check and check.endswith("set JOBS_SOURCE=arm")


def test_doctor_says_when_run_history_cannot_answer_and_what_the_sweeps_do_then(world: World):
    world.emulator.fault(method="GET", path="/runs$", status=403, times=20)
    done = autopilot(world, "doctor")
    (check,) = [line for line in lines(done) if line.startswith("✗ run history of mlw-demo: ")]
    assert "HTTP 403" in check and "sweeps read ARM's whole jobs list instead" in check
    assert autopilot(world, "doctor", JOBS_SOURCE="arm").returncode == 0

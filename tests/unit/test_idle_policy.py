"""The idle-instance rule, as a table of situations and what an operator would expect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from shared.model import ActionKind, Decision
from shared.policy.common import Exemptions
from shared.policy.idle import IdleRules, judge_idle_shutdown, judge_instance, last_activity
from tests.unit.builders import NOW, cpu, instance, job, mark

RULES = IdleRules(threshold=timedelta(minutes=120), grace=timedelta(minutes=60), min_uptime=timedelta(minutes=30),
                  no_metrics_means_idle=False, threshold_tag="autopilot-idle-minutes", idle_shutdown_minutes=60,
                  exemptions=Exemptions("autopilot-exempt", re.compile(r"^keep-")))
IDLE_RULES = IdleRules(**{**RULES.__dict__, "no_metrics_means_idle": True})
NO_GRACE = IdleRules(**{**RULES.__dict__, "grace": timedelta(0)})


def kinds(verdict):
    return [a.kind for a in verdict.actions]


@pytest.mark.parametrize(
    ("case", "inst", "jobs", "activity", "marked", "rules", "decision", "actions", "reason_part"),
    [
        ("a stopped instance is skipped", instance(state="Stopped"), [], cpu(), None, RULES, Decision.SKIP, [], "state is Stopped"),
        ("a stopping instance is skipped", instance(state="Stopping"), [], cpu(), None, RULES, Decision.SKIP, [], "Stopping"),
        ("a stopped instance loses its mark", instance(state="Stopped"), [], cpu(), mark(), RULES, Decision.SKIP,
         [ActionKind.CLEAR_MARK], "Stopped"),
        ("an exempt tag keeps it", instance(tags={"autopilot-exempt": "true"}), [], cpu(300), None, RULES, Decision.SKIP, [], "exempt"),
        ("an exempt tag with an empty value keeps it", instance(tags={"Autopilot-Exempt": ""}), [], cpu(300), None, RULES,
         Decision.SKIP, [], "exempt"),
        ("an exempt tag set to false does not", instance(tags={"autopilot-exempt": "false"}), [], cpu(300), None, RULES,
         Decision.WAIT, [ActionKind.MARK_IDLE], "idle"),
        ("an exempt name keeps it", instance(name="keep-me"), [], cpu(300), None, RULES, Decision.SKIP, [], "name matches"),
        ("a running job keeps it", instance(), [job(status="Running")], cpu(300), None, RULES, Decision.KEEP, [], "is Running"),
        ("a queued job keeps it", instance(), [job(status="Queued")], cpu(300), None, RULES, Decision.KEEP, [], "Queued"),
        ("a paused job keeps it", instance(), [job(status="Paused")], cpu(300), None, RULES, Decision.KEEP, [], "Paused"),
        ("a not-responding job keeps it", instance(), [job(status="NotResponding")], cpu(300), None, RULES, Decision.KEEP, [], "NotResponding"),
        ("a preparing job keeps it and clears a mark", instance(), [job(status="Preparing")], cpu(300), mark(), RULES, Decision.KEEP,
         [ActionKind.CLEAR_MARK], "Preparing"),
        ("a running job on another compute does not keep it", instance(), [job(status="Running", compute="other")], cpu(300), None,
         RULES, Decision.WAIT, [ActionKind.MARK_IDLE], "idle 5h"),
        ("a recent start keeps it (minimum uptime)", instance(op_ago=20), [], cpu(None), None, RULES, Decision.KEEP, [], "minimum uptime"),
        ("no metric data keeps it by default", instance(), [], cpu(has_data=False), None, RULES, Decision.KEEP, [], "no CPU metric data"),
        ("no metric data counts as idle when configured", instance(), [], cpu(has_data=False), None, IDLE_RULES, Decision.WAIT,
         [ActionKind.MARK_IDLE], "idle 5h"),
        ("recent CPU keeps it", instance(), [], cpu(busy_ago=30), None, RULES, Decision.KEEP, [], "CPU busy"),
        ("a job that ended recently keeps it", instance(), [job(status="Completed", modified_ago=40)], cpu(), None, RULES,
         Decision.KEEP, [], "job j1 completed"),
        ("idle exactly at the threshold is idle", instance(op_ago=120), [], cpu(), None, RULES, Decision.WAIT, [ActionKind.MARK_IDLE],
         "idle 2h"),
        ("idle one minute short of the threshold is kept", instance(op_ago=119), [], cpu(), None, RULES, Decision.KEEP, [], "idle 1h59m"),
        ("a threshold tag lengthens the threshold", instance(tags={"autopilot-idle-minutes": "600"}), [], cpu(), None, RULES,
         Decision.KEEP, [], "tag autopilot-idle-minutes=600"),
        ("a threshold tag shortens the threshold", instance(op_ago=45, tags={"autopilot-idle-minutes": "40"}), [], cpu(), None, RULES,
         Decision.WAIT, [ActionKind.MARK_IDLE], "tag"),
        ("a malformed threshold tag is ignored", instance(op_ago=100, tags={"autopilot-idle-minutes": "soon"}), [], cpu(), None,
         RULES, Decision.KEEP, [], "of 2h"),
        ("idle past the threshold is marked and its owner warned", instance(), [], cpu(busy_ago=200), None, RULES, Decision.WAIT,
         [ActionKind.MARK_IDLE], "owner warned"),
        ("marked and still in grace waits", instance(), [], cpu(), mark(marked_ago=30), RULES, Decision.WAIT, [],
         "marked 30m ago, stops after 1h grace"),
        ("with no grace the warning says it stops at the next sweep", instance(), [], cpu(busy_ago=200), None, NO_GRACE, Decision.WAIT,
         [ActionKind.MARK_IDLE], "owner warned, stops at the next sweep"),
        ("with no grace the next sweep stops it", instance(), [], cpu(), mark(marked_ago=15), NO_GRACE, Decision.ACT,
         [ActionKind.STOP_INSTANCE], "marked 15m ago and no grace period set"),
        ("marked and past grace is stopped", instance(), [], cpu(), mark(marked_ago=60), RULES, Decision.ACT,
         [ActionKind.STOP_INSTANCE], "grace 1h passed"),
        ("activity after the mark clears it", instance(), [], cpu(busy_ago=10), mark(marked_ago=30), RULES, Decision.KEEP,
         [ActionKind.CLEAR_MARK], "activity returned"),
        ("a restart after the mark clears it", instance(op="Restart", op_ago=10), [], cpu(), mark(marked_ago=30), RULES,
         Decision.KEEP, [ActionKind.CLEAR_MARK], "minimum uptime"),
        ("with no operation on record the creation time is the floor", instance(op=None, op_ago=None, created_ago=500), [], cpu(),
         None, RULES, Decision.WAIT, [ActionKind.MARK_IDLE], "created"),
        ("with nothing on record it cannot be judged", instance(op=None, op_ago=None, created_ago=None), [], cpu(), None, RULES,
         Decision.KEEP, [], "cannot judge"),
        ("a lowercase state still counts as running", instance(state="running"), [], cpu(), None, RULES, Decision.WAIT,
         [ActionKind.MARK_IDLE], "idle"),
    ],
)
def test_idle_instance(case, inst, jobs, activity, marked, rules, decision, actions, reason_part):
    verdict = judge_instance(inst, jobs, activity, marked, rules, NOW)
    assert verdict.decision is decision, verdict.reason
    assert kinds(verdict) == actions
    assert reason_part in verdict.reason
    assert "0m grace" not in verdict.reason


def test_the_stop_carries_the_owner_for_the_notification():
    verdict = judge_instance(instance(owner="bob"), [], cpu(), mark(marked_ago=90), RULES, NOW)
    assert verdict.actions[0].owner == "bob"


def test_last_activity_is_the_latest_evidence():
    when, what = last_activity(instance(op_ago=300), [job(status="Failed", modified_ago=100)], cpu(busy_ago=200))
    assert (NOW - when).total_seconds() == 100 * 60 and "job j1 failed" in what


@pytest.mark.parametrize(
    ("case", "inst", "decision", "minutes"),
    [
        ("an instance without native idle shutdown gets it", instance(idle_shutdown=None), Decision.ACT, 60),
        ("an instance with a longer one gets the policy's", instance(idle_shutdown=240), Decision.ACT, 60),
        ("an instance with a shorter one keeps it", instance(idle_shutdown=30), Decision.KEEP, None),
        ("an instance with exactly the policy's keeps it", instance(idle_shutdown=60), Decision.KEEP, None),
        ("a stopped instance gets it too", instance(state="Stopped", idle_shutdown=None), Decision.ACT, 60),
        ("a starting instance is left alone", instance(state="Starting"), Decision.SKIP, None),
        ("an exempt instance is left alone", instance(tags={"autopilot-exempt": "yes"}), Decision.SKIP, None),
    ],
)
def test_native_idle_shutdown(case, inst, decision, minutes):
    verdict = judge_idle_shutdown(inst, RULES)
    assert verdict.decision is decision, verdict.reason
    assert [a.change.minutes for a in verdict.actions] == ([minutes] if minutes else [])


def test_native_idle_shutdown_off_when_policy_is_zero():
    rules = IdleRules(**{**RULES.__dict__, "idle_shutdown_minutes": 0})
    assert judge_idle_shutdown(instance(), rules).decision is Decision.SKIP


def test_a_job_of_an_earlier_instance_of_the_same_name_does_not_start_idleness_before_this_one_was_created():
    recreated = instance("ci", op=None, op_ago=None, created_ago=10)
    old = job("old", "Completed", "ci", created_ago=600, modified_ago=500)
    verdict = judge_instance(recreated, [old], cpu(), None, RULES, NOW)
    assert verdict.decision is Decision.KEEP and "created at" in verdict.reason

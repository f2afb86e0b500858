"""Cluster right-sizing, recycling unusable nodes and quota relief, as tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.model import ActionKind, Decision, Usage
from shared.policy.clusters import ClusterRules, judge_cluster, judge_unusable
from shared.policy.common import Exemptions
from shared.policy.quota import Candidate, cluster_candidate, relieve
from tests.unit.builders import NOW, cluster, job

RULES = ClusterRules(idle=timedelta(minutes=60), max_scale_down_s=1800, exemptions=Exemptions("autopilot-exempt"))


def scale(verdict):
    return [(a.change.min_nodes, a.change.max_nodes, a.change.idle_s) for a in verdict.actions]


@pytest.mark.parametrize(
    ("case", "c", "jobs", "decision", "expected", "reason_part"),
    [
        ("min nodes with no job for the threshold go to zero", cluster(), [job(compute="cpu", status="Failed", modified_ago=180)],
         Decision.ACT, [(0, 4, 1800)], "min nodes 2 → 0"),
        ("min nodes with a running job stay", cluster(), [job(compute="cpu", status="Running")], Decision.KEEP, [], "kept: job j1"),
        ("min nodes with a queued job stay", cluster(), [job(compute="cpu", status="Queued")], Decision.KEEP, [], "Queued"),
        ("min nodes with a recent job stay", cluster(), [job(compute="cpu", status="Completed", modified_ago=30)], Decision.KEEP, [],
         "last job 30m ago"),
        ("a job on another cluster does not count", cluster(), [job(compute="gpu", status="Running")], Decision.ACT, [(0, 4, 1800)],
         "min nodes 2 → 0"),
        ("a cluster that never ran a job is idle since creation", cluster(created_ago=600), [], Decision.ACT, [(0, 4, 1800)],
         "no active or queued job for 10h"),
        ("a cluster created recently is left", cluster(created_ago=10), [], Decision.KEEP, [], "last job 10m ago"),
        ("a long scale-down delay is capped", cluster(min_nodes=0, idle_s=7200), [], Decision.ACT, [(0, 4, 1800)], "7200s → 1800s"),
        ("an unset scale-down delay is set to the cap", cluster(min_nodes=0, idle_s=None), [], Decision.ACT, [(0, 4, 1800)], "unset"),
        ("the cap applies even with a running job", cluster(idle_s=3600), [job(compute="cpu", status="Running")], Decision.ACT,
         [(2, 4, 1800)], "kept: job j1"),
        ("a right-sized cluster is kept", cluster(min_nodes=0, idle_s=120), [], Decision.KEEP, [], "already 0"),
        ("an exempt cluster is skipped", cluster(tags={"autopilot-exempt": "1"}), [], Decision.SKIP, [], "exempt"),
    ],
)
def test_cluster_size(case, c, jobs, decision, expected, reason_part):
    verdict = judge_cluster(c, jobs, RULES, NOW)
    assert verdict.decision is decision, verdict.reason
    assert scale(verdict) == expected
    assert reason_part in verdict.reason


def test_a_recycled_cluster_gets_its_max_back_once_drained():
    verdict = judge_cluster(cluster(min_nodes=0, max_nodes=0, current=0), [], RULES, NOW, pending_restore=4)
    assert scale(verdict) == [(0, 4, 1800)] and verdict.actions[0].change.restore is True


def test_a_recycled_cluster_still_draining_waits():
    verdict = judge_cluster(cluster(min_nodes=0, max_nodes=0, current=1), [], RULES, NOW, pending_restore=4)
    assert verdict.decision is Decision.WAIT and verdict.actions == ()


@pytest.mark.parametrize(
    ("case", "c", "jobs", "decision", "kinds", "reason_part"),
    [
        ("unusable nodes and no job: recycle", cluster(min_nodes=0, unusable=1), [], Decision.ACT, [ActionKind.SCALE_CLUSTER],
         "scale to 0"),
        ("unusable nodes with a running job: notify only", cluster(unusable=1), [job(compute="cpu", status="Running")],
         Decision.KEEP, [ActionKind.NOTIFY], "notify only"),
        ("no unusable node any more: nothing", cluster(unusable=0), [], Decision.SKIP, [], "no unusable nodes now"),
        ("exempt: nothing", cluster(unusable=2, tags={"autopilot-exempt": ""}), [], Decision.SKIP, [], "exempt"),
        ("already at max 0: nothing", cluster(min_nodes=0, max_nodes=0, unusable=1), [], Decision.SKIP, [], "already recycling"),
    ],
)
def test_unusable_nodes(case, c, jobs, decision, kinds, reason_part):
    verdict = judge_unusable(c, jobs, RULES)
    assert verdict.decision is decision
    assert [a.kind for a in verdict.actions] == kinds
    assert reason_part in verdict.reason


def test_recycling_remembers_the_max_to_restore():
    verdict = judge_unusable(cluster(max_nodes=6, unusable=1), [], RULES)
    assert verdict.actions[0].change.restore_max == 6 and verdict.actions[0].change.max_nodes == 0


SIZES = {"standard_ds3_v2": ("standardDSv2Family", 4), "standard_nc6": ("standardNCFamily", 6)}


def cand(target: str, cores: int, idle: int = 0) -> Candidate:
    c = cluster(name=target)
    return Candidate(cluster_candidate(c, [], SIZES, idle).action, cores, idle)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("case", "usage", "cands", "chosen", "decision"),
    [
        ("under the target nothing is freed", Usage("f", 70, 100), [cand("a", 8)], [], Decision.SKIP),
        ("the biggest first until under the target", Usage("f", 95, 100), [cand("a", 4), cand("b", 16), cand("c", 8)], ["b"],
         Decision.ACT),
        ("several when one is not enough", Usage("f", 93, 100), [cand("a", 4), cand("b", 8), cand("c", 6)], ["b", "c"], Decision.ACT),
        ("ties go to the longest idle", Usage("f", 85, 100), [cand("a", 8, 10), cand("b", 8, 90)], ["b"], Decision.ACT),
        ("all of them when still short", Usage("f", 99, 100), [cand("a", 4), cand("b", 4)], ["a", "b"], Decision.ACT),
        ("no candidates: said so", Usage("f", 99, 100), [], [], Decision.KEEP),
        ("no limit reported: skipped", Usage("f", 5, 0), [cand("a", 4)], [], Decision.SKIP),
    ],
)
def test_quota_relief(case, usage, cands, chosen, decision):
    verdict = relieve(usage, 80, cands)
    assert verdict.decision is decision, verdict.reason
    assert [a.target for a in verdict.actions] == chosen


def test_a_busy_cluster_is_no_quota_candidate():
    assert cluster_candidate(cluster(), [job(compute="cpu", status="Running")], SIZES, 0) is None


def test_a_cluster_with_no_nodes_frees_nothing():
    assert cluster_candidate(cluster(current=0), [], SIZES, 0) is None


def test_a_cluster_frees_its_current_nodes_cores():
    c = cluster_candidate(cluster(current=3), [], SIZES, 0)
    assert c is not None and c.cores == 12


def test_a_recycled_cluster_tagged_exempt_meanwhile_is_left_alone_and_the_operator_is_told_what_to_give_back():
    verdict = judge_cluster(cluster(min_nodes=0, max_nodes=0, current=0, tags={"autopilot-exempt": ""}), [], RULES, NOW, 6)
    assert verdict.decision is Decision.SKIP and verdict.actions == ()
    assert verdict.reason.endswith("a recycle left max nodes at 0: set it back to 6 by hand")


def test_a_job_of_an_earlier_cluster_of_the_same_name_does_not_start_idleness_before_this_one_was_created():
    recreated = cluster("cpu", min_nodes=2, created_ago=10)
    old = job("old", "Completed", "cpu", created_ago=600, modified_ago=500)
    verdict = judge_cluster(recreated, [old], RULES, NOW)
    assert verdict.decision is Decision.KEEP and "last job 10m ago" in verdict.reason


def test_when_finished_jobs_are_known_only_lately_the_quiet_is_said_from_then_not_from_creation():
    old = cluster("cpu-cluster", min_nodes=2, current=0, created_ago=200 * 1440)
    verdict = judge_cluster(old, (), RULES, NOW, None, NOW - timedelta(minutes=75))
    assert verdict.decision is Decision.ACT
    assert "no active or queued job in the last 1h15m" in verdict.reason, verdict.reason
    whole = judge_cluster(old, (), RULES, NOW)  # the whole history read: the quiet since creation is known
    assert whole.decision is Decision.ACT and "for 200d" in whole.reason, whole.reason
    lately = judge_cluster(old, (job("t", "Completed", compute="cpu-cluster", created_ago=150, modified_ago=120),), RULES, NOW, None, NOW - timedelta(hours=3))
    assert "for 2h" in lately.reason, lately.reason  # a job that ended within what was read says when

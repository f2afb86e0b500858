"""Whose jobs a sweep reads (shared.policy.decide.judged_by, lookback): a job can only keep a compute,
so only the computes the rules would act on without their jobs are asked, and a job that ended before
the longest threshold in force cannot change a verdict. Checked against the rules themselves."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.jobs import recent
from shared.model import name_key
from shared.policy.decide import LOOKBACK_MARGIN, Purpose, Rules, Snapshot, decide, judged_by, lookback
from shared.settings import Settings
from tests.unit.builders import NOW, WS, cluster, cpu, instance, job, mark

RULES = Rules.from_settings(Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}))


def snap(*computes, cpus=None, marks=None) -> Snapshot:
    return Snapshot(WS, tuple(computes), (), cpus or {}, marks or {}, {})


def test_the_idle_sweep_asks_only_for_running_instances_it_would_act_on():
    busy, idle, stopped = instance("ci-busy"), instance("CI-Idle"), instance("ci-off", state="Stopped")
    s = snap(busy, idle, stopped, cluster("cpu"), cpus={name_key("ci-busy"): cpu(busy_ago=5), name_key("ci-idle"): cpu(busy_ago=600)})
    assert judged_by(Purpose.IDLE_SWEEP, {}, s, RULES, NOW) == ["CI-Idle"]


def test_the_cluster_sweep_asks_only_for_clusters_it_would_change():
    s = snap(cluster("pinned", min_nodes=2), cluster("at-zero", min_nodes=0, idle_s=120), cluster("uncapped", min_nodes=0, idle_s=None),
             instance("ci"))
    assert judged_by(Purpose.CLUSTER_SWEEP, {}, s, RULES, NOW) == ["pinned", "uncapped"]


@pytest.mark.parametrize("purpose", [Purpose.PLAN, Purpose.NOT_RESPONDING])
def test_the_plan_and_a_not_responding_alert_need_every_job_of_the_workspace(purpose):
    assert judged_by(purpose, {}, snap(instance()), RULES, NOW) is None


def test_quota_relief_reads_the_computes_of_the_alerts_family_and_a_runs_end_its_cluster():
    s = replace(snap(instance("ci", state="Running"), instance("off", state="Stopped"), cluster("cpu", min_nodes=0),
                     cluster("gpu", size="Standard_NC6s_v3")),
                sizes={"standard_ds3_v2": ("standardDSv2Family", 4), "standard_nc6s_v3": ("standardNCSv3Family", 6)})
    assert judged_by(Purpose.QUOTA, {"family": "StandardDSv2Family"}, s, RULES, NOW) == ["ci", "cpu"]
    assert judged_by(Purpose.QUOTA, {"family": "standardNCSv3Family"}, s, RULES, NOW) == ["gpu"]
    assert judged_by(Purpose.RUN_ENDED, {}, s, RULES, NOW) == ["cpu", "gpu"]


def test_the_lookback_covers_the_longest_threshold_an_instance_tag_included():
    assert lookback(snap(instance()), RULES, NOW) == max(RULES.idle.threshold, RULES.clusters.idle) + LOOKBACK_MARGIN
    tagged = instance(tags={RULES.idle.threshold_tag: "2880"})
    assert lookback(snap(tagged, cluster()), RULES, NOW) == timedelta(minutes=2880) + LOOKBACK_MARGIN


def test_the_lookback_reaches_back_to_the_oldest_idle_mark_a_job_after_it_clears_it():
    marked = mark("ci", marked_ago=600)
    assert lookback(snap(instance("ci"), marks={marked.compute_key: marked}), RULES, NOW) == timedelta(minutes=600) + LOOKBACK_MARGIN


jobs = st.lists(st.builds(lambda name, status, where, created, ended: job(name, status, where, created, ended),
                          st.sampled_from(["a", "b", "c"]), st.sampled_from(["Running", "Queued", "Completed", "Failed", "Paused"]),
                          st.sampled_from(["ci", "cpu", "other"]), st.floats(0, 5000), st.none() | st.floats(0, 5000)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(jobs=jobs, busy=st.none() | st.floats(0, 400), marked=st.booleans(), min_nodes=st.integers(0, 2),
       op_ago=st.floats(0, 600), created=st.floats(0, 3000))
def test_a_compute_not_asked_for_keeps_its_verdict_whatever_its_jobs(jobs, busy, marked, min_nodes, op_ago, created):
    """The premise of judged_by, on the rules themselves: jobs never move a kept or skipped compute."""
    ci, cpu_cluster = instance("ci", op_ago=op_ago, created_ago=created), cluster("cpu", min_nodes=min_nodes, created_ago=created)
    base = snap(ci, cpu_cluster, cpus={name_key("ci"): cpu(busy_ago=busy)}, marks={mark().compute_key: mark()} if marked else {})
    for purpose in (Purpose.IDLE_SWEEP, Purpose.CLUSTER_SWEEP):
        asked = set(judged_by(purpose, {}, base, RULES, NOW) or ())
        with_jobs = decide(purpose, {}, replace(base, jobs=tuple(jobs)), RULES, NOW)
        without = decide(purpose, {}, base, RULES, NOW)
        for before, after in zip(without.verdicts, with_jobs.verdicts, strict=True):
            if before.target not in asked and before.rule in ("idle-instance", "cluster-size"):
                assert (after.decision, [a.change for a in after.actions]) == (before.decision, [a.change for a in before.actions])
        # And the jobs the lookback leaves out change no verdict: those that ended before it began.
        since = NOW - lookback(base, RULES, NOW)
        kept = tuple(j for j in jobs if recent(j, since))  # what a per-compute source's digest keeps
        within = decide(purpose, {}, replace(base, jobs=kept), RULES, NOW)
        assert [(v.decision, [a.change for a in v.actions]) for v in within.verdicts] == \
               [(v.decision, [a.change for a in v.actions]) for v in with_jobs.verdicts]

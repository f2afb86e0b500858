"""The process's share of ARM's budget: local token buckets that wait instead of drawing a 429."""

from __future__ import annotations

import pytest

from shared.adapters.budget import Budget, kind_of, scope_of
from shared.errors import AzureError

SUB = ("subscription", "0000", "reads")


class Clock:
    """A clock that moves only when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("method", "kind"), [("GET", "reads"), ("head", "reads"), ("PUT", "writes"), ("PATCH", "writes"),
                                              ("POST", "writes"), ("DELETE", "deletes")])
def test_a_request_counts_in_the_bucket_arm_counts_it_in(method, kind):
    assert kind_of(method) == kind


@pytest.mark.parametrize(("path", "scope"), [
    ("/subscriptions/AbC/resourceGroups/rg", ("subscription", "abc")),
    ("/providers/Microsoft.ResourceGraph/resources", ("tenant", "")),
])
def test_a_request_under_a_subscription_counts_for_that_subscription_and_any_other_for_the_tenant(path, scope):
    assert scope_of(path) == scope


def test_half_the_budget_gives_half_the_burst_at_once_then_half_the_refill_rate():
    clock = Clock()
    budget = Budget(0.5, clock=clock, sleep=clock.sleep)
    for _ in range(125):
        budget.acquire(SUB, max_wait=60)
    assert clock.now == 0
    for _ in range(25):
        budget.acquire(SUB, max_wait=60)
    assert clock.now == pytest.approx(25 / 12.5)


def test_each_subscription_and_kind_has_its_own_bucket():
    clock = Clock()
    budget = Budget(0.1, clock=clock, sleep=clock.sleep)
    for key in (SUB, ("subscription", "1111", "reads"), ("subscription", "0000", "writes"), ("tenant", "", "reads")):
        for _ in range(20):
            budget.acquire(key, max_wait=60)
    assert clock.now == 0


def test_what_arm_says_is_left_caps_the_local_bucket_keeping_the_other_share_for_others():
    clock = Clock()
    budget = Budget(0.8, clock=clock, sleep=clock.sleep)
    budget.observe(SUB, remaining=60, retry_after=None)  # others used most of the identity's bucket
    for _ in range(10):  # 60 left - 50 (20 % of 250) kept for the others = 10
        budget.acquire(SUB, max_wait=60)
    assert clock.now == 0
    budget.acquire(SUB, max_wait=60)
    assert clock.now == pytest.approx(1 / 20)


def test_a_429_makes_every_thread_wait_its_retry_after():
    clock = Clock()
    budget = Budget(1.0, clock=clock, sleep=clock.sleep)
    budget.observe(SUB, remaining=0, retry_after=3)
    budget.acquire(SUB, max_wait=60)
    assert clock.now == pytest.approx(3)


def test_a_wait_past_the_limit_is_a_transient_error_for_the_platform_to_retry():
    clock = Clock()
    budget = Budget(1.0, clock=clock, sleep=clock.sleep)
    budget.observe(SUB, remaining=0, retry_after=30)
    with pytest.raises(AzureError, match="ARM budget: reads of subscription 0000 exhausted") as caught:
        budget.acquire(SUB, max_wait=5)
    assert caught.value.transient
    assert clock.now == 0


@pytest.mark.parametrize(("remaining", "retry_after"), [(-10**12, None), (0, -10**12), (-1, -1)])
def test_a_hostile_rate_limit_header_holds_the_bucket_no_longer_than_an_empty_one(remaining, retry_after):
    clock = Clock()
    budget = Budget(1.0, clock=clock, sleep=clock.sleep)
    budget.observe(SUB, remaining=remaining, retry_after=retry_after)
    budget.acquire(SUB, max_wait=5)  # an empty bucket: one token back in 1/25 s
    assert clock.now == pytest.approx(1 / 25)


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match="share must be"):
        Budget(share)


def test_the_queue_concurrency_in_host_json_is_the_one_the_readme_sizes_to_the_budget():
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    queues = json.loads((root / "host.json").read_text())["extensions"]["queues"]
    readme = (root / "README.md").read_text()
    said = re.search(r"`batchSize \+ newBatchThreshold` = (\d+) \+ (\d+) = (\d+)", readme)
    assert said, "README no longer says how the queue concurrency is sized"
    assert (queues["batchSize"], queues["newBatchThreshold"]) == (int(said[1]), int(said[2]))
    assert int(said[1]) + int(said[2]) == int(said[3])

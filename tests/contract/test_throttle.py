"""ARM's throttling in the emulator, and the app's client keeping inside its share of it (real SDK pipelines)."""

from __future__ import annotations

from typing import Any

from local.emulator.client import DEMO_SUBSCRIPTION, DEMO_WORKSPACE_ID, EmulatorClient
from shared.adapters.arm import ArmClient
from shared.adapters.budget import process_budget
from shared.settings import Settings

API = "2025-09-01"


def _read(emulator: EmulatorClient, credential: Any) -> Any:
    return emulator.arm(credential, "GET", DEMO_WORKSPACE_ID, api_version=API)


def test_every_arm_answer_says_what_is_left_of_the_identitys_read_bucket_and_an_empty_bucket_is_a_429(emulator, credential, demo):
    emulator.control("POST", "throttle", {"reads": [3, 0.5]})
    answers = [_read(emulator, credential) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["x-ms-ratelimit-remaining-subscription-reads"] for a in answers] == ["2", "1", "0"]
    with emulator.arm_client(credential, retry_total=0) as client:
        from azure.core.rest import HttpRequest

        refused = client.send_request(HttpRequest("GET", f"{emulator.url}{DEMO_WORKSPACE_ID}", params={"api-version": API}))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5 per second
    assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert f"subscription '{DEMO_SUBSCRIPTION}'" in refused.json()["error"]["message"]
    assert emulator.control("GET", "throttle")["throttled"] == {"reads": 1}


def test_writes_are_counted_apart_from_reads(emulator, credential, demo):
    emulator.control("POST", "throttle", {"reads": [1, 0.1]})
    assert _read(emulator, credential).status_code == 200
    write = emulator.arm(credential, "POST", f"{DEMO_WORKSPACE_ID}/computes/none/stop", api_version=API)
    assert write.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"


def test_throttling_switched_off_counts_nothing_and_a_reset_switches_it_back_on(emulator, credential, demo):
    emulator.control("POST", "throttle", {"enabled": False, "reads": [1, 0.1]})
    answers = [_read(emulator, credential) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ms-ratelimit-remaining-subscription-reads" not in answers[0].headers
    emulator.reset(demo)
    assert emulator.control("GET", "throttle") == {"enabled": True, "reads": [250, 25], "writes": [200, 10],
                                                   "deletes": [200, 10], "throttled": {}}


def test_the_apps_arm_client_waits_on_what_arm_says_is_left_instead_of_drawing_429s(emulator, credential, demo):
    # Others spent 120 of the identity's 250 reads (the emulator's bucket stands for what is left). At a
    # 50 % share the app keeps 125 for them: the remaining-reads header, not a 429, slows it down.
    emulator.control("POST", "throttle", {"reads": [130, 25]})
    env = {"ALLOWED_WORKSPACES": DEMO_WORKSPACE_ID, "ARM_ENDPOINT": emulator.url, "ARM_BUDGET_PERCENT": "50"}
    budget = process_budget(50)
    waited = budget.waited_s
    arm = ArmClient(Settings.from_env(env, require_storage=False), credential)
    for _ in range(25):
        arm.get(DEMO_WORKSPACE_ID, api_version=API)
    assert emulator.control("GET", "throttle")["throttled"] == {}
    assert budget.waited_s > waited  # its own 125-read burst would not have waited at all

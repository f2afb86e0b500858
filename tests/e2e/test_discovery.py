"""Discovery end to end: workspaces allowed by scope are swept and accepted as event sources; others are forged."""

from __future__ import annotations

import copy

from local import drive
from local.emulator.client import DEMO_SUBSCRIPTION
from tests.e2e.conftest import World
from tests.e2e.test_inbound_paths import app_lines, failed_run_event

OTHER_SUB = "00000000-0000-0000-0000-00000000beef"


def test_a_workspace_found_in_an_allowed_subscription_is_swept_and_its_events_accepted_and_one_outside_is_forged(
        world: World, app):
    scenario = copy.deepcopy(world.scenario)
    outside = {**copy.deepcopy(scenario["workspaces"][0]), "subscriptionId": OTHER_SUB}
    scenario["workspaces"].append(outside)
    world.emulator.reset(scenario)
    # A blank, not empty, ALLOWED_WORKSPACES: the host (as Core Tools) fills an empty variable from the sample settings.
    stack = app(mode="observe", ALLOWED_WORKSPACES=" ", ALLOWED_SCOPES=f"/subscriptions/{DEMO_SUBSCRIPTION}")
    start = world.mark()

    assert drive.event_grid(stack, failed_run_event()).status == 202
    forged = failed_run_event()
    for event in forged:
        event["topic"] = event["topic"].replace(DEMO_SUBSCRIPTION, OTHER_SUB)
        event["id"] += "-outside"
    assert drive.event_grid(stack, forged).status == 202
    assert drive.timer(stack, "idle_sweep").status == 202
    drive.wait_quiet(stack)

    lines = app_lines(stack)
    assert "INFO autopilot.intake: accepted run etl-nightly-0412 Failed in mlw-demo: check its compute" in lines
    assert any(line.startswith("WARNING autopilot.intake: security: rejected") and OTHER_SUB in line for line in lines)
    assert "INFO autopilot.sweeps: idle-sweep: queued 1 item(s)" in lines
    assert "INFO autopilot.fleet: discovery: 1 workspace(s) in 1 scope(s)" in lines
    graph = [e for e in world.emulator.journal(start) if "Microsoft.ResourceGraph" in e["path"]]
    assert len(graph) == 1, "one Resource Graph query, then the cached set for every trigger"
    assert graph[0]["body"]["subscriptions"] == [DEMO_SUBSCRIPTION]

"""`autopilot doctor`'s permission hint names whose permissions were checked, and asks for a grant only of the app's identity.

ARM's permissions API answers for the caller. An operator signed in with Reader is not the
Function App's managed identity: a missing write there says nothing about the app, so the hint must
not tell the operator to grant themselves write roles; it says how to check the app's identity.
"""

from __future__ import annotations

from pathlib import Path

from shared.adapters.permissions import COMPUTES_READ, COMPUTES_STOP, COMPUTES_WRITE
from shared.doctor import CHECK_THE_APP, ROLES, permissions_check

README = Path(__file__).resolve().parents[2] / "README.md"
WS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw"
READER = [{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]
OPERATOR = "user ana@contoso.com (object id o1, tenant t1)"
APP = "application 11111111-2222-3333-4444-555555555555 (object id o2, tenant t1)"


def test_an_operators_missing_writes_are_named_as_the_operators_and_point_to_the_apps_check():
    check = permissions_check("permissions on workspace mlw", WS, [COMPUTES_READ, COMPUTES_WRITE, COMPUTES_STOP], READER,
                              OPERATOR, managed=False)
    assert not check.ok
    assert check.detail.startswith(f"missing {COMPUTES_WRITE.action} ({COMPUTES_WRITE.reason}); {COMPUTES_STOP.action} ")
    assert f"{OPERATOR} lacks these actions at {WS}" in check.detail
    assert "not the Function App's managed identity" in check.detail and CHECK_THE_APP in check.detail
    assert "grant a role" not in check.detail, "an operator is not told to grant themselves the app's write roles"
    assert check.detail.endswith(f"Grant these actions to {OPERATOR} only if it will run the autopilot itself")


def test_the_managed_identitys_missing_action_is_to_be_granted_to_it():
    check = permissions_check("permissions on workspace mlw", WS, [COMPUTES_STOP], READER, APP, managed=True)
    assert not check.ok
    assert check.detail == (f"missing {COMPUTES_STOP.action} ({COMPUTES_STOP.reason}) — grant a role with this action to "
                            f"{APP}, the managed identity this command signed in as, at {WS} ({ROLES})")


def test_every_action_held_passes_whoever_signed_in():
    for managed in (False, True):
        check = permissions_check("permissions on workspace mlw", WS, [COMPUTES_READ], READER, OPERATOR, managed)
        assert check.ok and check.detail == "all 1 actions enforce mode needs"


def test_the_readme_section_the_hint_points_to_exists():
    section = CHECK_THE_APP.split("*")[1]
    assert f"**{section}.**" in README.read_text(encoding="utf-8"), f"README.md has no paragraph *{section}*"

"""ARM's permissions API: what the caller may do at a scope (``Microsoft.Authorization/permissions``).

Rules:
- ``GET {scope}/providers/Microsoft.Authorization/permissions?api-version=…`` at any scope (a
  subscription, a resource group, a resource) answers 200 with the shape of azure-rest-api-specs'
  ``PermissionGetResult`` (authorization 2022-04-01, ``Permissions_ListForResource`` /
  ``Permissions_ListForResourceGroup``): ``{"value": [{"actions", "notActions", "dataActions",
  "notDataActions"}]}``, one entry standing for the caller's role assignments at that scope.
- By default the caller holds everything (``"*"`` in ``actions`` and ``dataActions``), so every
  action the autopilot needs is granted. The control API can take actions away: each denied action
  is listed in ``notActions`` and ``notDataActions`` at every scope, as a role with those exclusions
  would show. A reset grants everything again.
- Like every ARM request: a bearer token for ARM and an api-version are required; any other method
  is 405.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from local.emulator import lro, wire
from local.httpwire import Request, Response

_ROUTE = re.compile(r"^(?P<scope>/subscriptions/[^/]+(?:/.*)?)/providers/Microsoft\.Authorization/permissions/?$", re.IGNORECASE)


class AuthorizationService:
    """The caller's permissions at any scope: everything, less what the control API denied."""

    name = "authorization"

    def __init__(self) -> None:
        self.denied: list[str] = []

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        """No scenario section: a reset grants everything again."""
        del scenario, now
        self.denied = []

    def state(self) -> dict[str, Any]:
        return {"denied": list(self.denied)}

    def deny(self, actions: list[str]) -> dict[str, Any]:
        """Take `actions` away from the caller at every scope (control API)."""
        for action in actions:
            if not isinstance(action, str) or not action.strip():
                raise ValueError(f"an action must be a non-empty string, got {action!r}")
            if action.lower() not in {a.lower() for a in self.denied}:
                self.denied.append(action.strip())
        return self.state()

    def handle(self, req: Request) -> Response | None:
        if _ROUTE.match(req.path) is None:
            return None
        refused = lro.guard(req)
        if refused is not None:
            return refused
        if req.method != "GET":
            return wire.arm_error(405, "MethodNotAllowed", f"The method {req.method} is not allowed on {req.path}.")
        return Response(200, {"value": [{
            "actions": ["*"],
            "notActions": list(self.denied),
            "dataActions": ["*"],
            "notDataActions": list(self.denied),
        }]})


SERVICE = AuthorizationService()

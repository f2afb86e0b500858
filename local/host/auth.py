"""Host keys and authorization levels, checked as the Functions host checks them in Azure.

Core Tools does not check keys locally; this host does, so authorization levels can be tested.
Rules:
- The master key comes from `FUNCTIONS_MASTER_KEY`, the default function key from
  `FUNCTIONS_DEFAULT_KEY`, the Event Grid extension's system key (`eventgrid_extension`) from
  `FUNCTIONS_EVENTGRID_EXTENSION_KEY` (environment or local.settings.json Values); each is random
  when unset. All three are printed in the ready line.
- A key is presented in the `x-functions-key` header or the `code` query parameter (the header
  wins when both are present).
- Levels: `anonymous` needs no key; `function` accepts the function key or the master key;
  `system` (the Event Grid webhook) accepts the `eventgrid_extension` key or the master key, never
  a function key; `admin` (admin-level HTTP triggers and every `/admin/` API, host status
  included) accepts only the master key. A missing or wrong key is 401.
- Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from local.httpwire import Request

MASTER_KEY_SETTING = "FUNCTIONS_MASTER_KEY"
FUNCTION_KEY_SETTING = "FUNCTIONS_DEFAULT_KEY"
EVENTGRID_KEY_SETTING = "FUNCTIONS_EVENTGRID_EXTENSION_KEY"


@dataclass(frozen=True)
class Keys:
    """The host's master key, default function key and `eventgrid_extension` system key."""

    master: str
    function: str
    eventgrid: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Keys:
        return cls(
            master=environ.get(MASTER_KEY_SETTING) or secrets.token_urlsafe(32),
            function=environ.get(FUNCTION_KEY_SETTING) or secrets.token_urlsafe(32),
            eventgrid=environ.get(EVENTGRID_KEY_SETTING) or secrets.token_urlsafe(32),
        )

    def authorized(self, level: str, request: Request) -> bool:
        """Whether `request` carries a key good enough for `level` (anonymous, function, system, admin)."""
        if level == "anonymous":
            return True
        presented = presented_key(request)
        if presented is None:
            return False
        accepted = {"function": self.function, "system": self.eventgrid}.get(level)
        return _same(presented, self.master) or (accepted is not None and _same(presented, accepted))


def presented_key(request: Request) -> str | None:
    """The key a request carries, if any."""
    return request.header("x-functions-key") or request.query.get("code") or None


def _same(a: str, b: str) -> bool:
    return bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))

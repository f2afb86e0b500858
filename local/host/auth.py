"""Function keys and authorization levels.

Core Tools does not check keys locally; this host does, so authorization levels can be tested.
Rules:
- The master key comes from `FUNCTIONS_MASTER_KEY`, the default function key from
  `FUNCTIONS_DEFAULT_KEY` (environment or local.settings.json Values); each is random when unset.
  Both are printed in the ready line.
- A key is presented in the `x-functions-key` header or the `code` query parameter (the header
  wins when both are present).
- ANONYMOUS needs no key; FUNCTION accepts the function key or the master key; ADMIN and every
  `/admin/` API except host status accept only the master key. A missing or wrong key is 401.
- Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from local.host.wire import Request


@dataclass(frozen=True)
class Keys:
    """The host's master key and default function key."""

    master: str
    function: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Keys:
        return cls(
            master=environ.get("FUNCTIONS_MASTER_KEY") or secrets.token_urlsafe(32),
            function=environ.get("FUNCTIONS_DEFAULT_KEY") or secrets.token_urlsafe(32),
        )

    def authorized(self, level: str, request: Request) -> bool:
        """Whether `request` carries a key good enough for `level` (anonymous, function, admin)."""
        if level == "anonymous":
            return True
        presented = presented_key(request)
        if presented is None:
            return False
        if _same(presented, self.master):
            return True
        return level == "function" and _same(presented, self.function)


def presented_key(request: Request) -> str | None:
    """The key a request carries, if any."""
    return request.header("x-functions-key") or request.query.get("code") or None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))

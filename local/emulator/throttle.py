"""ARM's request throttling: token buckets per principal, per subscription (or tenant), per kind of operation.

Rules, from Learn's "Understand how Azure Resource Manager throttles requests" (the regional
throttling and token bucket algorithm Azure moved every subscription to in 2024):
- A request under ``/subscriptions/{id}`` is a subscription request; any other ARM request (Resource
  Graph's query, say) is a tenant request. Each is counted in the bucket of (principal, subscription
  or tenant, kind), where the principal is the bearer token's ``oid`` (``appid`` when absent) and
  the kind follows the HTTP method: GET and HEAD read, DELETE deletes, any other method writes.
- Buckets: reads 250 tokens refilled at 25 per second; writes and deletes 200 at 10 per second. A
  request takes one token; with none left it is answered 429 ``SubscriptionRequestsThrottled``
  (``TenantRequestsThrottled``) with ``Retry-After`` the whole seconds until a token is back, and
  takes nothing.
- Every ARM answer, throttled or not, says what is left in its bucket:
  ``x-ms-ratelimit-remaining-subscription-reads`` (``-writes``, ``-deletes``; ``tenant`` for tenant
  requests).
- Only ARM is throttled here: the token endpoint, the Key Vault and Monitor data planes, the sinks
  and the control API are not. A request without a readable token is not counted (ARM refuses it
  before throttling).
- On by default; ``POST /_emulator/throttle {"enabled": false}`` switches it off (a contract test
  that is about something else), ``{"reads": [burst, refill], "writes": ..., "deletes": ...}``
  changes the sizes; a reset refills every bucket and restores the published sizes, switched on.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.emulator import wire
from local.httpwire import Request, Response

# (burst, refill per second), as published.
PUBLISHED: dict[str, tuple[float, float]] = {"reads": (250, 25), "writes": (200, 10), "deletes": (200, 10)}

_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_ACTION = {"reads": "read", "writes": "write", "deletes": "delete"}


def kind_of(method: str) -> str:
    """The bucket a method counts in: GET and HEAD read, DELETE deletes, every other method writes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


@dataclass
class Bucket:
    """One token bucket; `tokens` is as of `at` (monotonic seconds)."""

    tokens: float
    at: float

    def refill(self, now: float, burst: float, rate: float) -> None:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now


class Throttle:
    """The buckets of every (principal, scope, kind) the emulator has seen since the last reset."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.enabled = True
        self.sizes = dict(PUBLISHED)
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self.throttled: Counter[str] = Counter()  # 429s answered, by kind

    def reset(self) -> None:
        self.enabled = True
        self.sizes = dict(PUBLISHED)
        self._buckets.clear()
        self.throttled.clear()

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        if "enabled" in spec:
            self.enabled = bool(spec["enabled"])
        for kind in PUBLISHED:
            if kind in spec:
                burst, rate = (float(x) for x in spec[kind])
                if burst < 1 or rate <= 0:
                    raise ValueError(f"{kind}: burst must be at least 1 and refill above 0")
                self.sizes[kind] = (burst, rate)
        self._buckets.clear()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {"enabled": self.enabled, **{k: list(v) for k, v in self.sizes.items()}, "throttled": dict(self.throttled)}

    def take(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        """(a 429 to answer instead, or None to serve it; the rate-limit headers for the answer)."""
        if not self.enabled:
            return None, {}
        claims = wire.token_claims(req)
        if not claims:
            return None, {}
        principal = str(claims.get("oid") or claims.get("appid") or "")
        match = _SUBSCRIPTION.match(req.path)
        level, scope = ("subscription", match.group(1).lower()) if match else ("tenant", str(claims.get("tid", "")))
        kind = kind_of(req.method)
        burst, rate = self.sizes[kind]
        now = self._clock()
        bucket = self._buckets.setdefault((principal, f"{level}:{scope}", kind), Bucket(burst, now))
        bucket.refill(now, burst, rate)
        header = f"x-ms-ratelimit-remaining-{level}-{kind}"
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / rate))
            self.throttled[kind] += 1
            code = "SubscriptionRequestsThrottled" if level == "subscription" else "TenantRequestsThrottled"
            where = f"subscription '{scope}'" if level == "subscription" else f"tenant '{scope}'"
            message = (f"Number of '{_ACTION[kind]}' requests for {where} actor '{principal}' exceeded. Please try again after "
                       f"'{wait}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for "
                       "additional information.")
            return wire.arm_error(429, code, message, {"Retry-After": str(wait), header: "0"}), {}
        bucket.tokens -= 1
        return None, {header: str(int(bucket.tokens))}


SERVICE = Throttle()

"""Keeps the whole process inside its share of ARM's request budget, before ARM has to say 429.

ARM counts every request of one identity in token buckets per subscription (per tenant for a
request outside any subscription) and kind: reads (GET, HEAD) 250 tokens refilled at 25 per
second, writes (PUT, PATCH, POST) and deletes 200 at 10 per second (Learn: "Understand how Azure
Resource Manager throttles requests"). Every worker of the app shares that identity, so one
worker's burst is every worker's 429.

Rule: ``ArmBudget`` holds, per (subscription or tenant, kind), a local bucket of ``share`` times
ARM's size and refill, shared by every client and thread of the process. A request to the ARM
host waits for a local token (at most ``max_wait`` seconds, then a transient error: the platform
retries the work later). Every ARM answer says what is left of the identity's real bucket
(``x-ms-ratelimit-remaining-subscription-reads`` and friends), which other instances and tools
spend too: the local bucket never holds more than what is left above the ``1 - share`` part kept
for them. A 429 of ARM's bucket (its remaining header says 0) empties the local bucket for its
``Retry-After`` (at most ``max_wait``), so the other threads wait instead of being refused in turn;
any other 429 (a resource provider's own limit, say) is left to the retry policy of its request. Requests to any other host (Key Vault, Monitor, storage) pass.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.errors import AzureError

# ARM's published bucket (burst, refill per second) per kind of request.
ARM_BUCKETS: dict[str, tuple[float, float]] = {"reads": (250, 25), "writes": (200, 10), "deletes": (200, 10)}

_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/?]+)", re.IGNORECASE)


def kind_of(method: str) -> str:
    """ARM's kind of a request: GET and HEAD read, DELETE deletes, anything else writes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


def scope_of(path: str) -> tuple[str, str]:
    """("subscription", its id lowercased) for a subscription request, ("tenant", "") otherwise."""
    match = _SUBSCRIPTION.match(path)
    return ("subscription", match.group(1).lower()) if match else ("tenant", "")


@dataclass
class _Bucket:
    tokens: float
    at: float


class Budget:
    """The process's local buckets: ``share`` (0 to 1) of ARM's, per (scope, kind)."""

    def __init__(self, share: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be above 0 and at most 1, got {share}")
        self.share = share
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self.waited_s = 0.0  # total time requests waited for a token (what the bench reports)

    def _size(self, kind: str) -> tuple[float, float]:
        burst, rate = ARM_BUCKETS[kind]
        return max(1.0, burst * self.share), rate * self.share

    def _bucket(self, key: tuple[str, str, str], now: float) -> _Bucket:
        burst, rate = self._size(key[2])
        bucket = self._buckets.setdefault(key, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        return bucket

    def acquire(self, key: tuple[str, str, str], max_wait: float) -> None:
        """Take one token for `key`, waiting for the refill; a wait beyond `max_wait` is a transient error."""
        _, rate = self._size(key[2])
        waited = 0.0
        while True:
            with self._lock:
                bucket = self._bucket(key, self._clock())
                if bucket.tokens >= 1 - 1e-9:  # a refill that lands a rounding error short still counts
                    bucket.tokens -= 1
                    self.waited_s += waited
                    return
                wait = (1 - bucket.tokens) / rate
            if waited + wait > max_wait:
                raise AzureError(f"ARM budget: {key[2]} of {key[0]} {key[1]} exhausted for {waited + wait:.0f}s "
                                 f"(more than {max_wait:.0f}s); retry later", transient=True, status=429)
            self._sleep(wait)
            waited += wait

    def observe(self, key: tuple[str, str, str], remaining: int | None, retry_after: float | None) -> None:
        """Align the local bucket with what ARM says is left of the identity's bucket."""
        burst, rate = ARM_BUCKETS[key[2]]
        with self._lock:
            bucket = self._bucket(key, self._clock())
            # A header is no reason to wait longer than ARM itself can make anyone wait: a count below 0
            # or above the burst, or a Retry-After below 0, is taken at that bound.
            if remaining is not None:
                # Keep the (1 - share) part of ARM's bucket for the other instances and tools.
                bucket.tokens = min(bucket.tokens, min(max(remaining, 0), burst) - (1 - self.share) * burst)
            if retry_after is not None:
                bucket.tokens = min(bucket.tokens, 1 - max(retry_after, 0) * rate * self.share)


class ArmBudget(SansIOHTTPPolicy):
    """The per-retry pipeline policy: each attempt to the ARM host takes a token of the process's budget.

    Sans-I/O, so one instance may sit in several pipelines (azure-ai-ml builds many from one set of options).
    """

    _KEY = "autopilot_arm_budget"

    def __init__(self, arm_endpoint: str, budget: Budget, max_wait: float) -> None:
        self.host = (urlsplit(arm_endpoint).netloc or "").lower()
        self.budget = budget
        self.max_wait = max_wait

    def on_request(self, request: Any) -> None:
        parts = urlsplit(request.http_request.url)
        if parts.netloc.lower() != self.host:
            request.context[self._KEY] = None
            return
        level, scope = scope_of(parts.path)
        key = (level, scope, kind_of(request.http_request.method))
        self.budget.acquire(key, self.max_wait)
        request.context[self._KEY] = key

    def on_response(self, request: Any, response: Any) -> None:
        key = request.context.get(self._KEY)
        if key is None:
            return
        headers = response.http_response.headers
        remaining = _int(headers.get(f"x-ms-ratelimit-remaining-{key[0]}-{key[2]}"))
        # Only a 429 of ARM's own bucket (it says none remain) holds every thread back; any other 429 (a
        # resource provider's) is one request's business, left to the retry policy. Held at most max_wait.
        retry_after = _int(headers.get("Retry-After")) if response.http_response.status_code == 429 and remaining == 0 else None
        if remaining is not None:
            self.budget.observe(key, remaining, None if retry_after is None else min(retry_after, self.max_wait))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_BUDGETS: dict[int, Budget] = {}
_BUDGETS_LOCK = threading.Lock()


def process_budget(share_percent: int) -> Budget:
    """One budget per process (per share): every client and worker thread of the instance draws from it.

    Made under a lock: two workers starting at once must not each get a budget of their own (twice the share).
    """
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(share_percent)
        if budget is None:
            budget = _BUDGETS[share_percent] = Budget(share_percent / 100)
        return budget

"""The allowed workspaces: those named in ALLOWED_WORKSPACES and those discovered in ALLOWED_SCOPES.

Rules:
- Without ALLOWED_SCOPES the settings are used as they are: no discovery, no extra call.
- The discovered set is trusted for DISCOVERY_REFRESH_MINUTES. The process keeps it in memory and
  the ledger keeps it in one row per (scopes, tag), so a cold or scaled-out instance reads one
  table row instead of asking Resource Graph: the fleet asks it about once per interval, whatever
  the number of instances and events.
- Everything that authenticates (events, alerts, queue items) and everything that acts (sweeps'
  fan-out, the guards' allow-list, rotation's datastores) sees the same resolved set, so a
  workspace found in a scope is both swept and accepted as an event source, and one that left the
  scope (or lost its tag) stops being either after at most one interval.
- Resource Graph failing keeps the last set the process or the ledger knew, however old, with a
  warning (a Resource Graph outage must not stop the fleet); with no set known at all the error
  is raised as transient, for the platform to retry.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.errors import AzureError
from shared.model import ResourceId, fold
from shared.settings import Scope, Settings
from shared.settings import current as configured

log = logging.getLogger("autopilot.fleet")

WORKSPACE_TYPE = "microsoft.machinelearningservices/workspaces"


class DiscoveryCache(Protocol):
    """Where the discovered set survives the process (the ledger's table in Azure)."""

    def discovered(self, key: str) -> tuple[datetime, list[str]] | None: ...
    def put_discovered(self, key: str, at: datetime, ids: list[str]) -> None: ...


class Finder(Protocol):
    def workspaces(self, scopes: Any, tag: tuple[str, str | None] | None) -> tuple[ResourceId, ...]: ...


class Uncached:
    """No cache beyond the process (the operator's command): every resolution asks Resource Graph."""

    def discovered(self, key: str) -> tuple[datetime, list[str]] | None:
        return None

    def put_discovered(self, key: str, at: datetime, ids: list[str]) -> None:
        return None


def cache_key(settings: Settings) -> str:
    """One ledger row per (scopes, tag): changing either starts afresh."""
    raw = "|".join(sorted(s.id.lower() for s in settings.scopes)) + "#" + repr(settings.discovery_tag)
    return "discovery-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


class Resolver:
    """Resolves and caches the allowed workspaces of one set of settings; safe for concurrent workers."""

    def __init__(self, settings: Settings, cache: Callable[[], DiscoveryCache], finder: Callable[[], Finder]) -> None:
        self.base = settings
        self._cache = cache
        self._finder = finder
        self._lock = threading.Lock()
        self._known: tuple[datetime, tuple[ResourceId, ...]] | None = None
        self._settings = settings
        self.refreshes = 0  # Resource Graph look-ups made by this process

    def settings(self, now: datetime) -> Settings:
        """The settings with every allowed workspace in `workspaces` (explicit first, then discovered)."""
        if not self.base.scopes:
            return self.base
        interval = timedelta(minutes=self.base.discovery_refresh_minutes)
        if self._known is not None and now - self._known[0] < interval:
            return self._settings
        # One refresh at a time. While it runs, a caller with a set known goes on with it rather than
        # wait: Resource Graph may take longer than Event Grid's 30 s for a delivery (then retried)
        # and every event of the instance would wait with it. Only a caller with no set waits.
        if not self._lock.acquire(blocking=self._known is None):
            return self._settings
        try:
            if self._known is None or now - self._known[0] >= interval:
                self._refresh(now, interval)
            return self._settings
        finally:
            self._lock.release()

    def _refresh(self, now: datetime, interval: timedelta) -> None:
        key = cache_key(self.base)
        stored = self._stored(key, now)
        if stored is not None and now - stored[0] < interval:
            self._use(*stored)
            return
        try:
            self.refreshes += 1
            found = self._finder().workspaces(self.base.scopes, self.base.discovery_tag)
        except AzureError as exc:
            fallback = self._known or stored
            if fallback is None:
                raise AzureError(f"discovery: no workspace set known yet and {exc}", transient=True, status=exc.status) from exc
            log.warning("discovery: %s; keeping the %d workspace(s) known since %s", exc, len(fallback[1]),
                        fallback[0].isoformat(timespec="seconds"))
            self._use(fallback[0], fallback[1], keep_time=now - interval + timedelta(minutes=1))  # ask again in a minute
            return
        log.info("discovery: %d workspace(s) in %d scope(s)", len(found), len(self.base.scopes))
        try:
            self._cache().put_discovered(key, now, [w.id for w in found])
        except AzureError as exc:  # the set is right; only other instances lose the shortcut
            log.warning("discovery: could not keep the set in the ledger: %s", exc)
        self._use(now, found)

    def _stored(self, key: str, now: datetime) -> tuple[datetime, tuple[ResourceId, ...]] | None:
        """The ledger's set, read as hostile: a row dated after `now` is none (it would be trusted for ever),
        and only AML workspace ids within the scopes are kept."""
        try:
            row = self._cache().discovered(key)
        except AzureError as exc:
            log.warning("discovery: could not read the ledger's set: %s", exc)
            return None
        if row is None:
            return None
        at, values = row
        if not isinstance(at, datetime) or at.tzinfo is None or at > now:
            log.warning("discovery: the ledger's set is not used: its time is missing or lies ahead of this clock")
            return None
        ids = []
        for value in values:
            try:
                rid = ResourceId.parse(value)
            except ValueError:
                log.warning("discovery: dropped a stored id that is no resource id")
                continue
            if not in_scopes(rid, self.base.scopes):
                log.warning("discovery: dropped a stored id that is no AML workspace of the scopes: %s", rid.id[:300])
                continue
            ids.append(rid)
        return at, tuple(ids)

    def _use(self, at: datetime, found: tuple[ResourceId, ...], keep_time: datetime | None = None) -> None:
        explicit = {w.key for w in self.base.workspaces}
        merged = self.base.workspaces + tuple(w for w in found if w.key not in explicit)
        # The settings before the time: a reader that sees the new time without the lock gets the new set.
        self._settings = replace(self.base, workspaces=merged)
        self._known = (keep_time or at, found)


def in_scopes(rid: ResourceId, scopes: Sequence[Scope]) -> bool:
    """Whether `rid` can be a workspace discovered in the scopes: an AML workspace, in one of the scopes'
    subscriptions when every scope is a subscription (a management group's subscriptions are not known here)."""
    if fold(rid.type_path) != WORKSPACE_TYPE:
        return False
    if all(scope.kind == "subscription" for scope in scopes):
        return fold(rid.subscription) in {fold(scope.name) for scope in scopes}
    return True


@functools.cache
def _process_resolver() -> Resolver:
    settings = configured()

    def cache() -> DiscoveryCache:
        from shared.runtime import process_ledger

        return process_ledger()

    def finder() -> Finder:
        from shared.adapters.discovery import ResourceGraph

        return ResourceGraph(settings)

    return Resolver(settings, cache, finder)


def current(now: datetime | None = None) -> Settings:
    """The process's settings with the allowed workspaces resolved (see the module rules)."""
    settings = configured()
    if not settings.scopes:
        return settings
    return _process_resolver().settings(now or datetime.now(UTC))

"""`autopilot doctor`: could the identity it signs in as run enforce mode? One line per check, ✓ or ✗ with the fix.

Every check is made as the identity the command signs in as, because ARM's permissions API answers
for the caller only. On an operator's machine that is the operator's own sign-in (azure-identity's
default chain), not the Function App's managed identity: a ✗ on a write then says nothing about the
app, and the hint says so rather than asking the operator to grant themselves write roles. With
``AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential`` and ``AZURE_CLIENT_ID`` (what infra/ sets on the
app), on an Azure host the app's user-assigned identity is attached to, the checks are the app's.

Checks, in order: the settings; the identity the command signs in as (the token's claims, read
without verifying them: they only name who it is); each allowed workspace readable; CPU metrics
readable for each; run history showing each of them every job ARM's whole jobs list has active on
its instances and clusters (with JOBS_SOURCE=run-history); every permission enforce mode needs, read from ARM's permissions API for the
caller (``{scope}/providers/Microsoft.Authorization/permissions``) and compared with the app's own
action map (``shared.adapters.permissions``) at each scope it names — each workspace, each
subscription, each vault, and each storage account a managed credential points at; each allowed
vault reachable.

The comparison is pure (``allowed``, ``missing``): an action is held when an entry's ``actions``
(``dataActions`` for a data action) match it and none of the same entry's ``notActions``
(``notDataActions``) do; ``*`` matches any run of characters, and case does not matter, as in Azure.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.permissions import Grant, Scope, grants
from shared.errors import AzureError
from shared.model import ResourceId, subscription_path
from shared.policy.rotation import ManagedSecret
from shared.settings import Settings, SettingsError, from_environment, identity_choice, schedule_problems

PERMISSIONS_API = "2022-04-01"
PERMISSIONS = ("providers", "Microsoft.Authorization", "permissions")
METRICS_WINDOW = timedelta(minutes=5)
PROBE_INSTANCE = "autopilot-doctor-probe"  # any name: the metrics query runs only when given one
ROLES = "see infra/README.md for the roles"
# Where README.md says how to check the Function App's own identity rather than the operator's.
CHECK_THE_APP = "README.md, *Whose permissions doctor checks*"


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    detail: str = ""  # what was found (✓) or the problem and its fix (✗)

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.what}{': ' + self.detail if self.detail else ''}"


# --- pure -------------------------------------------------------------------------------------------


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT access token, unverified ({} when it is not one)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def who(token_claims: Mapping[str, Any]) -> str:
    """Who a token stands for, in words: a user's name, or an application's id, with object and tenant ids."""
    upn = token_claims.get("upn") or token_claims.get("unique_name") or token_claims.get("preferred_username")
    ids = ", ".join(f"{label} {token_claims[key]}" for key, label in (("oid", "object id"), ("tid", "tenant"))
                    if token_claims.get(key))
    if upn:
        head = f"user {upn}"
    elif token_claims.get("appid") or token_claims.get("azp"):
        head = f"application {token_claims.get('appid') or token_claims.get('azp')}"
    else:
        head = "an identity the token does not name"
    return f"{head} ({ids})" if ids else head


def _matches(pattern: str, action: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.strip().split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def allowed(action: str, permissions: Iterable[Mapping[str, Any]], data_action: bool = False) -> bool:
    """Whether the permissions API's entries grant `action` (Azure's rule: any entry allows it and does not exclude it)."""
    grant_key, exclude_key = ("dataActions", "notDataActions") if data_action else ("actions", "notActions")
    for entry in permissions:
        if any(_matches(p, action) for p in entry.get(grant_key) or []) and not any(
                _matches(p, action) for p in entry.get(exclude_key) or []):
            return True
    return False


def missing(needed: Iterable[Grant], permissions: Iterable[Mapping[str, Any]]) -> list[Grant]:
    entries = list(permissions)
    return [g for g in needed if not allowed(g.action, entries, g.data_action)]


def needed(scope: Scope) -> list[Grant]:
    """The grants enforce mode needs at one kind of scope, in the map's order."""
    return [g for g in grants().values() if g.scope == scope]


def permissions_check(what: str, scope_id: str, needs: list[Grant], permissions: list[Mapping[str, Any]],
                      identity: str = "the signed-in identity", managed: bool = False) -> Check:
    """Compare the caller's permissions at one scope with what enforce mode needs there.

    `identity` names who was checked (``who``); `managed` says whether the command signed in with the
    managed identity only (AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential). Only then is the
    identity checked the one the deployed app runs as, and only then does the fix say to grant it
    the missing actions; otherwise it says whose permissions these are and how to check the app's.
    """
    lacking = missing(needs, permissions)
    if not lacking:
        kind = "data actions" if all(g.data_action for g in needs) else "actions"
        return Check(True, what, f"all {len(needs)} {kind} enforce mode needs")
    listed = "; ".join(f"{g.action} ({g.reason})" for g in lacking)
    these = "this action" if len(lacking) == 1 else "these actions"
    if managed:
        return Check(False, what, f"missing {listed} — grant a role with {these} to {identity}, the managed identity this "
                                  f"command signed in as, at {scope_id} ({ROLES})")
    return Check(False, what, f"missing {listed} — {identity} lacks {these} at {scope_id}: that is who this command signed in "
                              f"as, not the Function App's managed identity, which holds its own roles ({ROLES}); to check "
                              f"the app's, see {CHECK_THE_APP}. Grant {these} to {identity} only if it will run the "
                              f"autopilot itself")


# --- the checks -------------------------------------------------------------------------------------


def exit_code(checks: list[Check]) -> int:
    """0 when every check passed (enforce mode would work), 2 for bad settings (as the command does), else 1."""
    if checks and checks[0].what == "settings" and not checks[0].ok:
        return 2
    return 0 if checks and all(c.ok for c in checks) else 1


def checks_of(settings_source: Callable[[], Settings] = from_environment) -> Iterator[Check]:
    """The checks in order, each as soon as it is done; a failed settings or identity check ends them."""
    try:
        settings = settings_source()
    except SettingsError as exc:
        yield Check(False, "settings", f"{exc} — set it and run again")
        return
    yield Check(True, "settings", f"valid (mode {settings.mode.value}, {len(settings.workspaces)} workspace(s), "
                                  f"{len(settings.vaults)} vault(s))")
    for problem in schedule_problems():
        yield Check(False, "timer schedule", f"{problem} — the host does not run that timer as written")

    from shared.adapters.azure import credential, translate

    try:
        token = credential().get_token(f"{settings.arm_audience}/.default").token
    except Exception as exc:
        yield Check(False, "identity", f"{translate(exc, 'sign in')} — every other check needs it")
        return
    identity, managed = who(claims(token)), identity_choice()[0]
    yield Check(True, "identity", f"{identity} — " + (
        "the managed identity (AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential): the checks below are its own"
        if managed else
        f"azure-identity's default chain: the checks below are this identity's, not the Function App's ({CHECK_THE_APP})"))

    if settings.scopes:
        from shared.adapters.discovery import ResourceGraph
        from shared.fleet import Resolver, Uncached

        explicit = len(settings.workspaces)
        try:
            settings = Resolver(settings, Uncached, lambda: ResourceGraph(settings)).settings(datetime.now(UTC))
        except AzureError as exc:
            yield Check(False, "discovery", f"Resource Graph did not answer: {exc}")
        else:
            yield Check(True, "discovery", f"{len(settings.workspaces) - explicit} more workspace(s) found in "
                                           f"{len(settings.scopes)} scope(s) through Resource Graph")

    from shared.adapters.aml import Workspace
    from shared.adapters.arm import ArmClient
    from shared.adapters.keyvault import Vault
    from shared.adapters.metrics import Metrics

    arm = ArmClient(settings)
    regions: dict[str, str] = {}
    for ws in settings.workspaces:
        adapter = Workspace(settings, ws, arm)  # one per workspace: its ARM body is read once, for both checks
        try:
            regions[ws.key] = adapter.location()
        except AzureError as exc:
            yield Check(False, f"workspace {ws.name}", f"not readable: {exc}")
            continue
        yield Check(True, f"workspace {ws.name}", f"readable ({regions[ws.key] or 'no region'})")
        if settings.jobs_source == "run-history":
            yield run_history_check(adapter, datetime.now(UTC))

    metrics = Metrics(settings)
    now = datetime.now(UTC)
    for ws in settings.workspaces:
        what = f"CPU metrics of {ws.name}"
        if ws.key not in regions:
            yield Check(False, what, "not checked: the workspace is not readable (its region names the metrics endpoint)")
            continue
        try:
            metrics.cpu_activity(ws, regions[ws.key], [PROBE_INSTANCE], now, METRICS_WINDOW, settings.cpu_busy_percent)
        except AzureError as exc:
            yield Check(False, what, f"not readable: {exc}")
            continue
        yield Check(True, what, f"readable (the last {METRICS_WINDOW.seconds // 60} minutes)")

    listings: dict[str, list[ManagedSecret] | AzureError] = {}
    for vault in settings.vaults:
        try:
            listings[vault.key] = Vault(settings, vault).list()
        except AzureError as exc:
            listings[vault.key] = exc

    def permissions(label: str, scope_id: str, scope_path: str, kind: Scope) -> Check:
        what = f"permissions on {label}"
        try:
            found = list(arm.list(scope_path, api_version=PERMISSIONS_API, what=f"read the permissions on {label}"))
        except AzureError as exc:
            return Check(False, what, f"not readable: {exc}")
        return permissions_check(what, scope_id, needed(kind), found, identity, managed)

    for ws in settings.workspaces:
        yield permissions(f"workspace {ws.name}", ws.id, ws.path(*PERMISSIONS), Scope.WORKSPACE)
    for sub in dict.fromkeys(ws.subscription for ws in settings.workspaces):
        yield permissions(f"subscription {sub}", f"/subscriptions/{sub}",
                          subscription_path(sub, *PERMISSIONS), Scope.SUBSCRIPTION)
    for vault in settings.vaults:
        yield permissions(f"vault {vault.name}", vault.id, vault.path(*PERMISSIONS), Scope.VAULT)
    for account in storage_accounts(listings.values()):
        yield permissions(f"storage account {account.name}", account.id, account.path(*PERMISSIONS), Scope.STORAGE_ACCOUNT)

    for vault in settings.vaults:
        listing = listings[vault.key]
        if isinstance(listing, AzureError):
            yield Check(False, f"vault {vault.name}", f"not reachable: {listing}")
        else:
            credentials = sum(1 for s in listing if not s.missing_tags())
            yield Check(True, f"vault {vault.name}", f"reachable ({len(listing)} secret(s), {credentials} managed credential(s))")


def run_history_check(ws: Any, now: datetime) -> Check:
    """Does run history show, on each instance and cluster, every job ARM's whole list has active there?

    The sweeps trust run history to name the jobs on a compute; this is the check on the live
    workspace: its discovery, its filter, its names and cases, archived jobs (ARM's list is read with
    archived ones). A job ARM has active that run history does not show on its compute is read again
    by name (it may have ended between the two reads); still active, it is a ✗. A pipeline whose
    steps name computes is not compared: a step waiting for the ones before it is no run yet, and the
    re-read before a stop reads the pipelines themselves.
    """
    from shared.jobs import JobsUnavailable
    from shared.model import Cluster, ComputeInstance, name_key, same_name

    what = f"run history of {ws.id.name}"
    try:
        computes = [c.name for c in ws.list_computes() if isinstance(c, ComputeInstance | Cluster)]
        shown = ws.jobs_on(computes, now) if computes else None
        listed = ws.list_jobs(None, now)
    except JobsUnavailable as exc:
        return Check(False, what, f"not usable ({exc}) — sweeps read ARM's whole jobs list instead, as safe and slower; "
                                  f"grant Microsoft.MachineLearningServices/workspaces/experiments/runs/read ({ROLES}) or set JOBS_SOURCE=arm")
    except AzureError as exc:
        return Check(False, what, f"not checked: {exc}")
    known = {name_key(c) for c in computes}
    apart = []
    for job in listed.active.values():
        on = [c for c in job.computes if name_key(c) in known]
        if not on or job.also_on or shown is None:
            continue
        if all(any(same_name(same.name, job.name) for same in shown.active_on(c)) for c in on):
            continue
        again = ws.get_job(job.name)
        if again is not None and again.active:
            apart.append(f"{job.name} ({again.status}) on {', '.join(on)}")
    if apart:
        return Check(False, what, f"does not show job(s) ARM has active: {'; '.join(apart[:5])}"
                                  f"{f' and {len(apart) - 5} more' if len(apart) > 5 else ''} — set JOBS_SOURCE=arm")
    active = sum(1 for job in listed.active.values() if any(name_key(c) in known for c in job.computes))
    return Check(True, what, f"agrees with ARM's jobs list ({listed.seen:,} job(s) read): {active} active job(s) "
                             f"on {len(computes)} instance(s) and cluster(s)")


def storage_accounts(listings: Iterable[list[ManagedSecret] | AzureError]) -> list[ResourceId]:
    """The storage accounts the vaults' managed credentials name (ProviderAddress), once each."""
    found: dict[str, ResourceId] = {}
    for listing in listings:
        if isinstance(listing, AzureError):
            continue
        for secret in listing:
            account = secret.account()
            if isinstance(account, ResourceId):
                found.setdefault(account.key, account)
    return list(found.values())

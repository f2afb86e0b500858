"""Every setting the autopilot reads, typed and validated in one place.

This is the only module that reads ``os.environ``. Settings are read lazily (on first use by a
trigger, not at import) and a bad or missing value fails fast with the setting's name, so an
operator sees ``AUTOPILOT_MODE: expected one of observe, enforce; got 'enforced'`` instead of a
stack trace from deep inside an SDK.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.model import Mode, ResourceId


class SettingsError(ValueError):
    """A setting is missing or malformed; the message starts with the setting's name."""


@dataclass(frozen=True)
class Setting:
    """Documentation of one setting: the README table and the Terraform app settings are held equal to it."""

    name: str
    default: str | None
    help: str


# The catalogue. Order is the README's order. `None` as default means required.
CATALOGUE: tuple[Setting, ...] = (
    Setting("AUTOPILOT_MODE", "observe", "`observe` (plan, log, notify; no writes) or `enforce` (act)."),
    Setting("ALLOWED_WORKSPACES", "", "Comma-separated AML workspace resource ids the autopilot may read, act on and accept events from (this, ALLOWED_SCOPES or both)."),
    Setting("ALLOWED_SCOPES", "", "Comma-separated subscriptions (`/subscriptions/{id}`) or management groups (`/providers/Microsoft.Management/managementGroups/{id}`) whose AML workspaces are allowed too, found through Azure Resource Graph."),
    Setting("DISCOVERY_TAG", "", "Optional `key=value` (or `key`): only workspaces of ALLOWED_SCOPES carrying this tag (the value compared case-insensitively) are allowed."),
    Setting("DISCOVERY_REFRESH_MINUTES", "60", "How long the workspaces found in ALLOWED_SCOPES are trusted (cached in the ledger) before Resource Graph is asked again."),
    Setting("ALLOWED_VAULTS", "", "Comma-separated Key Vault resource ids whose events are accepted and whose managed credentials are rotated."),
    Setting("ARM_ENDPOINT", "https://management.azure.com", "Azure Resource Manager endpoint (sovereign clouds or the local emulator)."),
    Setting("ARM_AUDIENCE", "https://management.azure.com", "Token audience for ARM."),
    Setting("MONITOR_METRICS_ENDPOINT", "https://{region}.metrics.monitor.azure.com", "Azure Monitor metrics data-plane endpoint; `{region}` is the workspace's location."),
    Setting("MONITOR_METRICS_AUDIENCE", "https://metrics.monitor.azure.com", "Token audience for Azure Monitor metrics."),
    Setting("KEY_VAULT_URL_TEMPLATE", "https://{name}.vault.azure.net", "Key Vault data-plane URL; `{name}` is the vault name."),
    Setting("IDLE_THRESHOLD_MINUTES", "120", "A running compute instance with no activity for this long is idle."),
    Setting("IDLE_GRACE_MINUTES", "60", "Time between warning the owner of an idle instance and stopping it."),
    Setting("MIN_UPTIME_MINUTES", "30", "Never stop an instance started less than this long ago."),
    Setting("CPU_BUSY_PERCENT", "5", "CPU utilization above which a minute counts as activity."),
    Setting("NO_METRICS_MEANS", "busy", "How to treat an instance with no CPU metric data: `busy` (never stop) or `idle`."),
    Setting("EXEMPT_TAG", "autopilot-exempt", "A compute tagged with this key (value not `false`) is never touched."),
    Setting("EXEMPT_NAME_PATTERN", "", "Regular expression: computes whose name matches are never touched (empty: none)."),
    Setting("IDLE_THRESHOLD_TAG", "autopilot-idle-minutes", "Tag overriding IDLE_THRESHOLD_MINUTES for one instance."),
    Setting("IDLE_SHUTDOWN_MINUTES", "60", "AML's own idle shutdown enforced on instances that lack it or have a longer one (15 to 4320; 0 disables)."),
    Setting("CLUSTER_IDLE_MINUTES", "60", "A cluster with min nodes above 0 and no active or queued job for this long is scaled to min 0."),
    Setting("CLUSTER_MAX_SCALE_DOWN_SECONDS", "1800", "Cap on a cluster's idle time before scale down."),
    Setting("QUOTA_TARGET_PERCENT", "80", "Quota relief frees cores until projected utilization of the family is below this."),
    Setting("MAX_ACTIONS_PER_RUN", "10", "Blast-radius cap: writes per sweep or event."),
    Setting("MAX_ACTIONS_PER_HOUR", "30", "Blast-radius cap: writes per rolling hour, all triggers together."),
    Setting("COOLDOWN_MINUTES", "30", "No second write to the same resource within this time."),
    Setting("IDLE_SWEEP_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule of the idle-instance sweep."),
    Setting("CLUSTER_SWEEP_SCHEDULE", "0 5-59/15 * * * *", "NCRONTAB schedule of the cluster sweep."),
    Setting("DEPLOYMENT_SWEEP_SCHEDULE", "0 10-59/15 * * * *", "NCRONTAB schedule of the sweep for failed online deployments."),
    Setting("FAILED_DEPLOYMENT_GRACE_MINUTES", "120", "Time between telling the owner of a failed deployment with no traffic and deleting it."),
    Setting("DEPLOYMENT_LOG_TAIL_LINES", "50", "Lines of a failed deployment's inference-server log read to say why it failed (secrets redacted)."),
    Setting("MOVE_TRAFFIC_FROM_FAILED", "false", "Opt-in to move traffic off a failed deployment (`true` or `false`); moving is not implemented: `true` is refused, traffic is only reported."),
    Setting("NOT_RESPONDING_CANCEL_MINUTES", "0", "Opt-in: cancel a job not responding for longer than this (0: never cancel, only tell)."),
    Setting("ROTATION_SCHEDULE", "0 30 2 * * *", "NCRONTAB schedule of the credential rotation sweep."),
    Setting("ROTATION_NEAR_EXPIRY_DAYS", "30", "The rotation sweep rotates a managed credential expiring within this many days."),
    Setting("ROTATION_MIN_INTERVAL_HOURS", "24", "Never rotate one credential twice within this time."),
    Setting("JOBS_SOURCE", "run-history", "Where a sweep finds the jobs on a compute: `run-history` (AML's run history, per compute, by status; ARM's jobs list when it cannot answer) or `arm` (ARM's jobs list only)."),
    Setting("JOBS_FULL_LISTING_HOURS", "24", "A sweep reads a workspace's whole job list at least this often; in between it lists the jobs created since and reads the active ones it keeps in the ledger by name."),
    Setting("LEDGER_TABLE", "autopilotledger", "Table (in AzureWebJobsStorage) holding claims, marks and outcomes."),
    Setting("WORK_QUEUE", "autopilot-work", "Queue (in AzureWebJobsStorage) for per-workspace work handed off by triggers."),
    Setting("NOTIFY_WEBHOOK_URL", "", "Optional: JSON webhook (Teams or Slack workflow) receiving one message per outcome."),
    Setting("NOTIFY_EVENTGRID_ENDPOINT", "", "Optional: Event Grid custom topic endpoint receiving CloudEvents per outcome."),
    Setting("NOTIFY_EVENTGRID_KEY", "", "Access key of that topic (prefer a Key Vault reference in Azure)."),
    Setting("NOTIFY_FORMAT", "text", "Webhook message shape: `text` (a text line and the fields), `teams` (Adaptive Card for a Teams Workflows webhook) or `slack` (Block Kit)."),
    Setting("NOTIFY_OWNER_WEBHOOKS", "", "Optional JSON object: owner UPN → https webhook (in NOTIFY_FORMAT) receiving that owner's idle warnings."),
    Setting("STUDIO_TENANT_ID", "", "Optional Entra tenant id (a GUID) added to Azure ML studio links in messages (`tid=`)."),
    Setting("RETAIL_PRICES_ENDPOINT", "https://prices.azure.com/api/retail/prices", "Azure Retail Prices API (public, no sign-in) for the report's money estimate."),
    Setting("ARM_TIMEOUT_SECONDS", "20", "Per-request timeout for Azure calls."),
    Setting("ARM_MAX_RETRIES", "3", "Retries of a transient Azure error (429 honouring Retry-After, 5xx, timeouts) before giving up."),
    Setting("ARM_BUDGET_PERCENT", "50", "Share of ARM's request budget per subscription (reads 250 burst, 25/s; writes and deletes 200, 10/s) one instance of the app may use; instances × share should stay within 100."),
    Setting("AZURE_TOKEN_CREDENTIALS", "", "`ManagedIdentityCredential` (Azure): every Azure call uses the managed identity only, never a developer sign-in; empty: azure-identity's default chain (an operator's `az login`)."),
    Setting("AZURE_CLIENT_ID", "", "Client id of the user-assigned managed identity to use (empty: the system-assigned one)."),
    Setting("AzureWebJobsStorage", "", "Storage connection string of the Function App (ledger table, work queue, timer leases): Azurite locally. When not empty, it decides; in Azure it is empty and the identity settings below decide."),
    Setting("AzureWebJobsStorage__accountName", "", "The app's storage account, reached with the managed identity (used when AzureWebJobsStorage is empty)."),
    Setting("AzureWebJobsStorage__tableServiceUri", "", "Table endpoint of that account (empty: https://ACCOUNT.table.core.windows.net); the ledger's endpoint on the identity path."),
    Setting("AzureWebJobsStorage__credential", "", "`managedidentity` (Azure): the managed identity reaches the storage; empty: the process's credential (an operator's `az login`)."),
    Setting("AzureWebJobsStorage__clientId", "", "Client id of the user-assigned identity reaching the storage (empty: the system-assigned one)."),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", "", "Application Insights connection string: when set, each outcome is also sent as a custom event and a metric (OpenTelemetry)."),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "", "`ClientId=<id>;Authorization=AAD` (or `Authorization=AAD`): telemetry is sent with that managed identity's Entra token, for an Application Insights without local authentication."),
)

_BY_NAME = {s.name: s for s in CATALOGUE}


def _raw(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None or value.strip() == "":
        default = _BY_NAME[name].default
        if default is None:
            raise SettingsError(f"{name}: required setting is missing ({_BY_NAME[name].help})")
        return default
    return value.strip()


def _int(env: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = _raw(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: expected {lo} to {hi}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = _raw(env, name).lower()
    if raw not in choices:
        raise SettingsError(f"{name}: expected one of {', '.join(choices)}; got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str) -> str:
    raw = _raw(env, name)
    if raw and not raw.startswith("https://"):
        raise SettingsError(f"{name}: expected an https:// URL, got {raw!r}")
    return raw.rstrip("/")


def _ids(env: Mapping[str, str], name: str, kind: str, required: bool) -> tuple[ResourceId, ...]:
    raw = _raw(env, name)
    items = [part.strip() for part in raw.split(",") if part.strip()]
    if required and not items:
        raise SettingsError(f"{name}: at least one {kind} resource id is required")
    out = []
    for item in items:
        try:
            rid = ResourceId.parse(item)
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None
        if rid.type_path.lower() != kind.lower():
            raise SettingsError(f"{name}: {item!r} is not a {kind} resource id")
        out.append(rid)
    return tuple(out)


NOTIFY_FORMATS = ("text", "teams", "slack")
JOBS_SOURCES = ("run-history", "arm")
MAX_OWNER_ROUTES = 1000
_UPN = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,113}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _owner_routes(env: Mapping[str, str], name: str) -> dict[str, str]:
    """UPN (lower case: Entra compares them so) → https webhook URL; anything else is refused, naming the entry."""
    import json

    raw = _raw(env, name)
    if not raw:
        return {}
    if len(raw) > 512 * 1024:
        raise SettingsError(f"{name}: over 512 KB")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name}: expected a JSON object of owner UPN → webhook URL, got {type(value).__name__}")
    if len(value) > MAX_OWNER_ROUTES:
        raise SettingsError(f"{name}: {len(value)} owners, at most {MAX_OWNER_ROUTES}")
    routes: dict[str, str] = {}
    for upn, url in value.items():
        if not _UPN.match(upn):
            raise SettingsError(f"{name}: {upn[:80]!a} is not a user principal name (name@domain)")
        if not isinstance(url, str) or not url.startswith("https://") or len(url) > 2048 or any(c.isspace() or ord(c) < 32 for c in url):
            raise SettingsError(f"{name}: the webhook of {upn!a} must be an https:// URL without spaces (at most 2048 characters)")
        if upn.lower() in routes:
            raise SettingsError(f"{name}: {upn!a} is given twice (UPNs are compared without case)")
        routes[upn.lower()] = url
    return routes


def _guid(env: Mapping[str, str], name: str, what: str) -> str:
    """A GUID setting (empty allowed); `what` names the id it is (a tenant id, a client id) in the refusal."""
    raw = _raw(env, name)
    if raw and not _GUID.match(raw):
        raise SettingsError(f"{name}: expected {what} (a GUID), got {raw[:80]!a}")
    return raw


# Azure's rule for a management group id: 1 to 90 letters, digits, -, _, (, ), . and not ending with a period.
_MANAGEMENT_GROUP = re.compile(r"^[A-Za-z0-9\-_().]{0,89}[A-Za-z0-9\-_()]$")


@dataclass(frozen=True)
class Scope:
    """Where workspaces are discovered: a subscription (its id) or a management group (its name)."""

    kind: str  # "subscription" | "managementGroup"
    name: str

    @property
    def id(self) -> str:
        if self.kind == "subscription":
            return f"/subscriptions/{self.name}"
        return f"/providers/Microsoft.Management/managementGroups/{self.name}"


def _scopes(env: Mapping[str, str], name: str) -> tuple[Scope, ...]:
    out: list[Scope] = []
    for item in (part.strip() for part in _raw(env, name).split(",")):
        if not item:
            continue
        parts = [p for p in item.split("/") if p]
        if len(parts) == 2 and parts[0].lower() == "subscriptions" and _GUID.match(parts[1]):
            scope = Scope("subscription", parts[1].lower())
        elif (len(parts) == 4 and [p.lower() for p in parts[:3]] == ["providers", "microsoft.management", "managementgroups"]
              and _MANAGEMENT_GROUP.match(parts[3])):
            scope = Scope("managementGroup", parts[3])
        else:
            raise SettingsError(f"{name}: {item[:200]!r} is neither /subscriptions/<guid> nor "
                                "/providers/Microsoft.Management/managementGroups/<name>")
        if scope not in out:
            out.append(scope)
    return tuple(out)


_TAG = re.compile(r"^[^<>%&\\?/=]{1,512}$")  # Azure's tag name rule: up to 512 characters, none of <>%&\?/


def _tag(env: Mapping[str, str], name: str) -> tuple[str, str | None] | None:
    raw = _raw(env, name)
    if not raw:
        return None
    key, sep, value = raw.partition("=")
    key, value = key.strip(), value.strip()
    # Both go into a KQL string literal: a quote would end it, a backslash escape its closing quote,
    # a line break or other control character break it.
    if not _TAG.match(key) or len(value) > 256 or any(c in "'\\" for c in key + value) or not (key + value).isprintable():
        raise SettingsError(f"{name}: expected key=value or key (a tag name of up to 512 characters without <>%&\\?/ "
                            f"and a value of up to 256, no quotes, backslashes or control characters), got {raw[:200]!r}")
    return key, (value if sep else None)


def _pattern(env: Mapping[str, str], name: str) -> re.Pattern[str] | None:
    raw = _raw(env, name)
    if not raw:
        return None
    try:
        return re.compile(raw, re.IGNORECASE)  # ARM names are case-insensitive, so the pattern is too
    except re.error as exc:
        raise SettingsError(f"{name}: not a valid regular expression ({exc})") from None


# --- timer schedules ----------------------------------------------------------------------------------------
#
# The timers in functions/sweeps.py take their schedules from these settings (`schedule="%IDLE_SWEEP_SCHEDULE%"`):
# the Functions host reads the whole value when it indexes the functions and disables a timer whose value it
# cannot read, which no log line of the app would show. So each is read here as the host's timer extension
# reads it (NCrontab with seconds, azure-webjobs-sdk-extensions TimerSchedule / CronSchedule):
#
# - six fields split on spaces, {second} {minute} {hour} {day} {month} {day-of-week}, each a comma-separated
#   list of `*`, `n`, `a-b`, each optionally stepped `/n` (`n/s` runs from n to the field's end);
# - seconds and minutes 0-59, hours 0-23, days 1-31, months 1-12 or English names, days of week 0-6 (Sunday
#   is 0) or English names, names case-insensitive and abbreviated to any leading part.
#
# Refused although the host accepts them:
# - a TimeSpan (`00:05:00`): Azure runs one only on an App Service plan, and this app is deployed on Flex
#   Consumption (infra/), where the timer would not run as written;
# - three forms NCrontab reads otherwise than they are written: a reversed range (`22-2` is read as 2-22, not
#   overnight), a step of 0 (read as 1: every second), and a name abbreviation that fits two names (`Ju`
#   is read as June, `S` as Sunday);
# - a day that none of the months has (`0 0 0 30 2 *`): the host accepts it and never runs the timer.

SCHEDULES = tuple(s.name for s in CATALOGUE if s.name.endswith("_SCHEDULE"))
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
# (field, lowest, highest, names of lowest..highest or ()): NCrontab's fields, in their order.
_CRON_FIELDS = (("second", 0, 59, ()), ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day", 1, 31, ()),
                ("month", 1, 12, _MONTHS), ("day-of-week", 0, 6, _WEEKDAYS))
_CRON_SHAPE = "six fields {second} {minute} {hour} {day} {month} {day-of-week}, e.g. 0 */15 * * * *"
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February's 29th comes every fourth year
_STEPPED = re.compile(r"(?P<base>[^/]+)(?:/(?P<step>[^/]*))?")  # used with fullmatch
_NUMBER = re.compile(r"[0-9]{1,9}")  # used with fullmatch
_TIMESPAN = re.compile(r"(?:[0-9]+\.)?[0-9]+:[0-9]+(?::[0-9]+(?:\.[0-9]+)?)?")  # .NET's [d.]hh:mm[:ss[.fff]]; fullmatch


def _cron_value(text: str, unit: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
        if not lo <= value <= hi:
            sunday = " (Sunday is 0)" if unit == "day-of-week" and value == 7 else ""
            raise ValueError(f"{value} is outside {lo}-{hi}{sunday}")
        return value
    if names and text.isascii() and text.isalpha():
        fits = [i for i, full in enumerate(names) if full.startswith(text.lower())]
        if len(fits) == 1:
            return lo + fits[0]
        if fits:
            raise ValueError(f"{text!r} could be {' or '.join(names[i].title() for i in fits)}: write more of the name")
        raise ValueError(f"{text!r} is no {unit} name ({', '.join(n[:3].title() for n in names)})")
    what = f"a number {lo}-{hi}" + (" or a name" if names else "")
    raise ValueError(f"{text[:40]!r} is not {what}")


def _cron_field(text: str, unit: str, lo: int, hi: int, names: tuple[str, ...]) -> set[int]:
    """The values one field names, or ValueError saying what is wrong with it."""
    values: set[int] = set()
    for part in text.split(","):
        match = _STEPPED.fullmatch(part)
        if not match:
            raise ValueError(f"{part[:40]!r} is not *, a number, a range a-b or a list a,b, each optionally stepped /n")
        base, step_text = match["base"], match["step"]
        step = 1
        if step_text is not None:
            if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
                raise ValueError(f"the step in {part[:40]!r} must be a whole number from 1")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _cron_value(start, unit, lo, hi, names), _cron_value(end, unit, lo, hi, names)
            if first > last:
                raise ValueError(f"the range {base!r} runs backwards (NCrontab would read it as {last}-{first})")
        else:
            first = _cron_value(base, unit, lo, hi, names)
            last = hi if step_text is not None else first  # n/s: from n to the field's end, as NCrontab reads it
        values.update(range(first, last + 1, step))
    return values


def _schedule(env: Mapping[str, str], name: str) -> str:
    """A timer schedule the Functions host will run as written; else one line naming the setting and the fault."""
    raw = _raw(env, name)
    if any(c.isspace() and c != " " for c in raw):
        raise SettingsError(f"{name}: {raw[:80]!r} separates its fields with a tab or line break; the host splits on spaces only")
    fields = [f for f in raw.split(" ") if f]  # NCrontab splits on spaces only
    if len(fields) == 1 and _TIMESPAN.fullmatch(raw):
        raise SettingsError(f"{name}: {raw[:80]!r} is a TimeSpan, which Azure runs only on an App Service plan and this app "
                            f"runs on Flex Consumption; give an NCRONTAB expression instead: {_CRON_SHAPE}")
    if len(fields) != 6:
        hint = " (a five-field cron expression lacks the seconds: put 0 in front)" if len(fields) == 5 else ""
        raise SettingsError(f"{name}: expected an NCRONTAB expression of {_CRON_SHAPE}; got {len(fields)} field(s) "
                            f"in {raw[:80]!r}{hint}")
    chosen = []
    for text, (unit, lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        try:
            chosen.append(_cron_field(text, unit, lo, hi, names))
        except ValueError as exc:
            raise SettingsError(f"{name}: the {unit} field {text[:40]!r}: {exc}") from None
    days, months = chosen[3], chosen[4]
    if min(days) > max(_DAYS_IN_MONTH[m - 1] for m in months):
        raise SettingsError(f"{name}: {raw[:80]!r} never runs: no month it names has day {min(days)}")
    return " ".join(fields)


_STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")


def _storage(env: Mapping[str, str], required: bool) -> tuple[str, str, str | None]:
    """The app's storage: (connection string, "", None) or ("", table endpoint, managed identity client id or None).

    The Functions host's rule: a non-empty ``AzureWebJobsStorage`` is a connection string and decides
    (Azurite locally); otherwise the ``AzureWebJobsStorage__*`` settings name the account, reached
    with the managed identity when ``__credential`` is ``managedidentity`` (Azure; ``__clientId``
    picks a user-assigned one), else with the process's credential (an operator's `az login`). The
    ledger follows the same rule as the host's queues.
    """
    connection = _raw(env, "AzureWebJobsStorage")
    account = _raw(env, "AzureWebJobsStorage__accountName")
    table = _url(env, "AzureWebJobsStorage__tableServiceUri")
    if connection:
        if _empty_account_key(connection):
            # What azurerm's Flex Consumption resource writes when its storage uses an identity: it
            # would win over the identity settings and fail every storage call. Never echo the value.
            raise SettingsError("AzureWebJobsStorage: the connection string has an empty AccountKey; set it to an "
                                "empty value to reach the storage with AzureWebJobsStorage__accountName and the identity")
        return connection, "", None
    if not account and not table:
        if required:
            raise SettingsError("AzureWebJobsStorage: required setting is missing (a storage connection string, or "
                                "AzureWebJobsStorage__accountName with AzureWebJobsStorage__credential=managedidentity)")
        return "", "", None
    if account and not _STORAGE_ACCOUNT.match(account):
        raise SettingsError(f"AzureWebJobsStorage__accountName: expected 3 to 24 lower-case letters and digits, got {account!r}")
    credential = _raw(env, "AzureWebJobsStorage__credential")
    if credential and credential.lower() != "managedidentity":
        raise SettingsError(f"AzureWebJobsStorage__credential: expected managedidentity or nothing, got {credential!r}")
    client_id = _guid(env, "AzureWebJobsStorage__clientId", "a client id")
    if client_id and not credential:
        raise SettingsError("AzureWebJobsStorage__clientId: set AzureWebJobsStorage__credential=managedidentity too, "
                            "or the client id is not used")
    return "", table or f"https://{account}.table.core.windows.net", client_id if credential else None


def _empty_account_key(connection: str) -> bool:
    """Whether a storage connection string names an AccountKey with no value."""
    parts = [part.split("=", 1) for part in connection.split(";") if "=" in part]
    return any(key.strip().lower() == "accountkey" and not value.strip() for key, value in parts)


def _telemetry_identity(env: Mapping[str, str]) -> str | None:
    """APPLICATIONINSIGHTS_AUTHENTICATION_STRING: None (no Entra auth), "" (system identity) or a client id."""
    raw = _raw(env, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
    if not raw:
        return None
    parts = dict(part.split("=", 1) for part in raw.split(";") if "=" in part)
    parts = {k.strip().lower(): v.strip() for k, v in parts.items()}
    if parts.get("authorization", "").lower() != "aad":
        raise SettingsError(f"APPLICATIONINSIGHTS_AUTHENTICATION_STRING: expected Authorization=AAD (and ClientId=<id>), got {raw!r}")
    client_id = parts.get("clientid", "")
    if client_id and not _GUID.match(client_id):
        raise SettingsError(f"APPLICATIONINSIGHTS_AUTHENTICATION_STRING: ClientId is not a GUID: {client_id!r}")
    return client_id


@dataclass(frozen=True)
class Settings:
    """The validated settings. Build with ``Settings.from_env()``."""

    mode: Mode
    workspaces: tuple[ResourceId, ...]
    vaults: tuple[ResourceId, ...]
    arm_endpoint: str
    arm_audience: str
    metrics_endpoint: str
    metrics_audience: str
    key_vault_url_template: str
    idle_threshold_minutes: int
    idle_grace_minutes: int
    min_uptime_minutes: int
    cpu_busy_percent: int
    no_metrics_means_idle: bool
    exempt_tag: str
    exempt_name_pattern: re.Pattern[str] | None
    idle_threshold_tag: str
    idle_shutdown_minutes: int
    cluster_idle_minutes: int
    cluster_max_scale_down_seconds: int
    quota_target_percent: int
    max_actions_per_run: int
    max_actions_per_hour: int
    cooldown_minutes: int
    rotation_near_expiry_days: int
    rotation_min_interval_hours: int
    failed_deployment_grace_minutes: int
    deployment_log_tail_lines: int
    not_responding_cancel_minutes: int
    ledger_table: str
    work_queue: str
    notify_webhook_url: str
    notify_eventgrid_endpoint: str
    notify_eventgrid_key: str = field(repr=False)
    notify_format: str = "text"
    notify_owner_webhooks: Mapping[str, str] = field(default_factory=dict, repr=False)  # UPN (lower case) → URL
    studio_tenant_id: str = ""
    retail_prices_endpoint: str = "https://prices.azure.com/api/retail/prices"
    arm_timeout_seconds: int = 20
    arm_max_retries: int = 3
    storage_connection: str = field(default="", repr=False)
    # The identity path to the app's storage (when storage_connection is empty).
    storage_table_endpoint: str = ""
    storage_client_id: str | None = None  # None: the process's credential; "" the system identity; else a client id
    app_insights_connection: str = field(default="", repr=False)
    app_insights_client_id: str | None = None  # None: no Entra authentication of the telemetry
    jobs_full_listing_hours: int = 24

    @property
    def storage_configured(self) -> bool:
        """Whether the ledger can be reached: a connection string, or the identity settings."""
        return bool(self.storage_connection or self.storage_table_endpoint)
    scopes: tuple[Scope, ...] = ()
    discovery_tag: tuple[str, str | None] | None = None
    discovery_refresh_minutes: int = 60
    arm_budget_percent: int = 50
    jobs_source: str = "run-history"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_storage: bool = True) -> Settings:
        """Read and validate every setting; raise SettingsError naming the first bad one."""
        env = os.environ if env is None else env
        storage, table_endpoint, storage_client_id = _storage(env, require_storage)
        identity_choice(env)  # validated here too, so the start line names a bad one
        idle_shutdown = _int(env, "IDLE_SHUTDOWN_MINUTES", 0, 4320)
        if 0 < idle_shutdown < 15:
            raise SettingsError(f"IDLE_SHUTDOWN_MINUTES: AML accepts 15 to 4320 minutes (or 0 to disable), got {idle_shutdown}")
        eg_endpoint = _url(env, "NOTIFY_EVENTGRID_ENDPOINT")
        eg_key = _raw(env, "NOTIFY_EVENTGRID_KEY")
        if eg_endpoint and not eg_key:
            raise SettingsError("NOTIFY_EVENTGRID_KEY: required when NOTIFY_EVENTGRID_ENDPOINT is set")
        if _choice(env, "MOVE_TRAFFIC_FROM_FAILED", ("true", "false")) == "true":
            raise SettingsError("MOVE_TRAFFIC_FROM_FAILED: moving traffic off a failed deployment is not implemented; "
                                "set false (a failed deployment with traffic is reported, never changed)")
        workspaces = _ids(env, "ALLOWED_WORKSPACES", "Microsoft.MachineLearningServices/workspaces", False)
        scopes = _scopes(env, "ALLOWED_SCOPES")
        if not workspaces and not scopes:
            raise SettingsError("ALLOWED_WORKSPACES: required: at least one workspace resource id, unless ALLOWED_SCOPES names "
                                "subscriptions or management groups to discover them in")
        template = _url(env, "KEY_VAULT_URL_TEMPLATE")
        if "{name}" not in template:
            raise SettingsError(f"KEY_VAULT_URL_TEMPLATE: must contain {{name}}, got {template!r}")
        return cls(
            mode=Mode(_choice(env, "AUTOPILOT_MODE", tuple(m.value for m in Mode))),
            workspaces=workspaces,
            vaults=_ids(env, "ALLOWED_VAULTS", "Microsoft.KeyVault/vaults", False),
            arm_endpoint=_url(env, "ARM_ENDPOINT"),
            arm_audience=_url(env, "ARM_AUDIENCE"),
            metrics_endpoint=_url(env, "MONITOR_METRICS_ENDPOINT"),
            metrics_audience=_url(env, "MONITOR_METRICS_AUDIENCE"),
            key_vault_url_template=template,
            idle_threshold_minutes=_int(env, "IDLE_THRESHOLD_MINUTES", 1, 10080),
            idle_grace_minutes=_int(env, "IDLE_GRACE_MINUTES", 0, 10080),
            min_uptime_minutes=_int(env, "MIN_UPTIME_MINUTES", 0, 10080),
            cpu_busy_percent=_int(env, "CPU_BUSY_PERCENT", 0, 100),
            no_metrics_means_idle=_choice(env, "NO_METRICS_MEANS", ("busy", "idle")) == "idle",
            exempt_tag=_raw(env, "EXEMPT_TAG"),
            exempt_name_pattern=_pattern(env, "EXEMPT_NAME_PATTERN"),
            idle_threshold_tag=_raw(env, "IDLE_THRESHOLD_TAG"),
            idle_shutdown_minutes=idle_shutdown,
            cluster_idle_minutes=_int(env, "CLUSTER_IDLE_MINUTES", 1, 10080),
            cluster_max_scale_down_seconds=_int(env, "CLUSTER_MAX_SCALE_DOWN_SECONDS", 60, 604800),
            quota_target_percent=_int(env, "QUOTA_TARGET_PERCENT", 1, 100),
            max_actions_per_run=_int(env, "MAX_ACTIONS_PER_RUN", 0, 1000),
            max_actions_per_hour=_int(env, "MAX_ACTIONS_PER_HOUR", 0, 10000),
            cooldown_minutes=_int(env, "COOLDOWN_MINUTES", 0, 10080),
            rotation_near_expiry_days=_int(env, "ROTATION_NEAR_EXPIRY_DAYS", 1, 365),
            rotation_min_interval_hours=_int(env, "ROTATION_MIN_INTERVAL_HOURS", 0, 8760),
            failed_deployment_grace_minutes=_int(env, "FAILED_DEPLOYMENT_GRACE_MINUTES", 0, 43200),
            deployment_log_tail_lines=_int(env, "DEPLOYMENT_LOG_TAIL_LINES", 1, 1000),
            not_responding_cancel_minutes=_int(env, "NOT_RESPONDING_CANCEL_MINUTES", 0, 43200),
            ledger_table=_raw(env, "LEDGER_TABLE"),
            work_queue=_raw(env, "WORK_QUEUE"),
            notify_webhook_url=_url(env, "NOTIFY_WEBHOOK_URL"),
            notify_eventgrid_endpoint=eg_endpoint,
            notify_eventgrid_key=eg_key,
            notify_format=_choice(env, "NOTIFY_FORMAT", NOTIFY_FORMATS),
            notify_owner_webhooks=_owner_routes(env, "NOTIFY_OWNER_WEBHOOKS"),
            studio_tenant_id=_guid(env, "STUDIO_TENANT_ID", "an Entra tenant id"),
            retail_prices_endpoint=_url(env, "RETAIL_PRICES_ENDPOINT"),
            arm_timeout_seconds=_int(env, "ARM_TIMEOUT_SECONDS", 1, 230),
            arm_max_retries=_int(env, "ARM_MAX_RETRIES", 0, 10),
            storage_connection=storage,
            storage_table_endpoint=table_endpoint,
            storage_client_id=storage_client_id,
            app_insights_connection=_raw(env, "APPLICATIONINSIGHTS_CONNECTION_STRING"),
            app_insights_client_id=_telemetry_identity(env),
            scopes=scopes,
            discovery_tag=_tag(env, "DISCOVERY_TAG"),
            discovery_refresh_minutes=_int(env, "DISCOVERY_REFRESH_MINUTES", 1, 10080),
            arm_budget_percent=_int(env, "ARM_BUDGET_PERCENT", 1, 100),
            jobs_full_listing_hours=_int(env, "JOBS_FULL_LISTING_HOURS", 1, 168),
            jobs_source=_choice(env, "JOBS_SOURCE", JOBS_SOURCES),
        )

    def workspace(self, resource_id: str) -> ResourceId:
        """The allowed workspace with this id (case-insensitive), or SettingsError."""
        for ws in self.workspaces:
            if ws.same_as(resource_id):
                return ws
        raise SettingsError(f"ALLOWED_WORKSPACES: {resource_id!r} is not an allowed workspace")

    def vault_url(self, vault_name: str) -> str:
        return self.key_vault_url_template.format(name=vault_name)


def from_environment(**defaults: str) -> Settings:
    """Settings for the operator's command: the environment, with `defaults` for what it does not set.

    The ledger's storage is optional there (plan and explain do not need it).
    """
    env = {**defaults, **{k: v for k, v in os.environ.items() if v.strip()}}
    return Settings.from_env(env, require_storage=False)


@functools.cache
def current() -> Settings:
    """The process's settings, read on first use (never at import: a bad value must not stop indexing)."""
    return Settings.from_env()


# The values azure-identity's DefaultAzureCredential accepts in AZURE_TOKEN_CREDENTIALS (azure-identity
# 1.27, compared case-insensitively); any other makes it raise when the first Azure call is made.
# Less interactivebrowsercredential: the app's chain leaves the browser out (nobody is at a server's
# screen), so that choice would leave no credential at all.
TOKEN_CREDENTIALS = frozenset({
    "dev", "prod", "azureclicredential", "azuredeveloperclicredential", "azurepowershellcredential",
    "environmentcredential", "managedidentitycredential", "visualstudiocodecredential", "workloadidentitycredential",
})


def identity_choice(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(managed identity only, its client id): what ``AZURE_TOKEN_CREDENTIALS`` and ``AZURE_CLIENT_ID`` say.

    Other values of ``AZURE_TOKEN_CREDENTIALS`` (dev, prod, a credential's name) are azure-identity's
    own: its default chain reads them. A value it does not know is refused here, at start, rather
    than by the first Azure call.

    Read apart from the other settings: the operator's command authenticates before (and without)
    a complete set of settings.
    """
    env = os.environ if env is None else env
    chosen = _raw(env, "AZURE_TOKEN_CREDENTIALS").lower()
    if chosen and chosen not in TOKEN_CREDENTIALS:
        shown = chosen if len(chosen) <= 40 else chosen[:40] + "..."
        raise SettingsError(f"AZURE_TOKEN_CREDENTIALS: expected ManagedIdentityCredential (Azure), dev, prod or another "
                            f"azure-identity credential name, got {shown!r}")
    return chosen == "managedidentitycredential", _guid(env, "AZURE_CLIENT_ID", "a client id")


def schedule_problems(env: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with each timer schedule the Functions host would not run as written (one line each).

    Not part of ``Settings``: only the host reads these settings (when it indexes the timers), so a bad
    one stops that timer, not the app; refusing the settings for it would stop every trigger.
    """
    env = os.environ if env is None else env
    problems = []
    for name in SCHEDULES:
        try:
            _schedule(env, name)
        except SettingsError as exc:
            problems.append(str(exc))
    return problems


def startup_line(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """The one line the app logs when it starts: the settings are valid (and the mode), or the first bad one;
    and any timer schedule the host would not run as written.

    Never raises: a bad setting must not stop the functions from indexing; it is said once, clearly, in
    the log before any trigger meets it.
    """
    try:
        s = Settings.from_env(env)
    except SettingsError as exc:
        return False, f"settings: {exc}; every trigger will fail until it is fixed"
    line = (f"settings: valid; mode {s.mode.value}, {len(s.workspaces)} workspace(s), {len(s.vaults)} vault(s)"
            + ("" if s.notify_webhook_url or s.notify_eventgrid_endpoint else "; no notification channel configured"))
    problems = schedule_problems(env)
    if problems:
        return False, f"{line}; but {problems[0]}: that timer does not run as written until it is fixed"
    return True, line

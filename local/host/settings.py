"""Settings, connections and host.json, read the way Core Tools and the Functions host read them.

Rules:
- App settings come from `local.settings.json` in the project (falling back to
  `local.settings.sample.json`), or from an explicit file. Their `Values` become process
  environment variables, as Core Tools does. A variable that is already set in the environment
  wins and the file's value is skipped (Core Tools: "Skipping 'X' from local settings as it's
  already defined in current environment variables"); a test harness relies on this to point the
  app at an emulator. `IsEncrypted: true` is refused: Core Tools decrypts with a machine key.
- `%NAME%` tokens in binding properties (queue names, schedules) resolve from the environment,
  anywhere in the string; a token that does not resolve is an error naming it.
- A binding's `connection` names a setting: empty means `AzureWebJobsStorage`; the name is looked
  up as `AzureWebJobs{name}` first, then `{name}` (the WebJobs lookup order). Only connection
  strings are supported; identity-based connections (`{name}__queueServiceUri`, ...) are an error.
- host.json: `functionTimeout` ("hh:mm:ss", "d.hh:mm:ss" or "-1" for none; absent means no
  timeout here), `extensions.http.routePrefix` (default "api"), and `extensions.queues` with the
  storage extension's defaults: maxDequeueCount 5, visibilityTimeout 00:00:00, batchSize 16
  (1..32), newBatchThreshold batchSize/2 * processors, maxPollingInterval 00:01:00 (at least
  100 ms; a bare number is milliseconds), messageEncoding "base64" ("none" also accepted).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORAGE_SETTING = "AzureWebJobsStorage"
SETTINGS_FILE = "local.settings.json"
SAMPLE_SETTINGS_FILE = "local.settings.sample.json"

_TOKEN = re.compile(r"%([^%\s]+)%")
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<f>\d{1,7}))?)?$")
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class SettingsError(ValueError):
    """A settings file, host.json or binding property that cannot be used; the message names it."""


@dataclass(frozen=True)
class LocalSettings:
    """The parts of a local.settings.json file the host uses."""

    path: Path | None
    values: dict[str, str]
    http_port: int | None = None


@dataclass(frozen=True)
class QueuesOptions:
    """host.json `extensions.queues`, with the storage extension's defaults (times in seconds)."""

    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"

    def batch_threshold(self) -> int:
        """newBatchThreshold, defaulting like the extension: batchSize/2 per processor."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return (self.batch_size // 2) * (os.cpu_count() or 1)


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the host honours."""

    function_timeout: float | None = None
    route_prefix: str = "api"
    queues: QueuesOptions = field(default_factory=QueuesOptions)


def load_local_settings(project: Path, explicit: Path | None = None) -> LocalSettings:
    """Read the settings file: `explicit`, else local.settings.json, else the sample; none is fine."""
    candidates = [explicit] if explicit else [project / SETTINGS_FILE, project / SAMPLE_SETTINGS_FILE]
    for path in candidates:
        if path is None or not path.is_file():
            if explicit:
                raise SettingsError(f"settings file {path} does not exist")
            continue
        doc = _json_object(path)
        if doc.get("IsEncrypted"):
            raise SettingsError(f"{path}: IsEncrypted is true; decrypt it with `func settings decrypt` first")
        raw_values = doc.get("Values") or {}
        if not isinstance(raw_values, dict):
            raise SettingsError(f"{path}: Values must be an object")
        values = {str(k): _setting_text(v) for k, v in raw_values.items() if v is not None}
        host = doc.get("Host") or {}
        port = host.get("LocalHttpPort") if isinstance(host, dict) else None
        return LocalSettings(path=path, values=values, http_port=int(port) if port else None)
    return LocalSettings(path=None, values={})


def _json_object(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    return doc


def _setting_text(value: Any) -> str:
    # Settings are strings in the file format; JSON booleans and numbers are written as their
    # JSON text so that "true" stays "true" rather than Python's "True".
    if isinstance(value, str):
        return value
    return json.dumps(value)


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> tuple[list[str], list[str]]:
    """Copy settings into `environ` unless already set there; return (applied, skipped) names."""
    applied: list[str] = []
    skipped: list[str] = []
    for name, value in values.items():
        if environ.get(name):
            skipped.append(name)
        else:
            environ[name] = value
            applied.append(name)
    return applied, skipped


def resolve_tokens(text: str, environ: Mapping[str, str]) -> str:
    """Replace every `%NAME%` with the setting's value; an unset setting raises SettingsError."""

    def replace(match: re.Match[str]) -> str:
        value = environ.get(match.group(1))
        if value is None:
            raise SettingsError(f"'%{match.group(1)}%' does not resolve to a value.")
        return value

    return _TOKEN.sub(replace, text)


def resolve_connection(name: str | None, environ: Mapping[str, str]) -> str:
    """The connection string a binding's `connection` property refers to."""
    setting = (name or "").strip() or "Storage"
    for candidate in (f"AzureWebJobs{setting}", setting):
        value = environ.get(candidate)
        if value:
            return value
    for candidate in (f"AzureWebJobs{setting}", setting):
        if any(key.startswith(f"{candidate}__") for key in environ):
            raise SettingsError(
                f"connection '{setting}' is identity-based ({candidate}__...); this dev host supports "
                "connection strings only"
            )
    shown = STORAGE_SETTING if setting == "Storage" else setting
    raise SettingsError(f"Storage account connection string '{shown}' does not exist. Make sure that it is a defined App Setting.")


def normalize_queue_name(name: str) -> str:
    """Lower-case and validate a queue name as the queue extension does."""
    lowered = name.strip().lower()
    if not _QUEUE_NAME.match(lowered):
        raise SettingsError(
            f"Invalid queue name: {name}. A queue name must be 3-63 characters, lower-case letters, digits "
            "and single hyphens, starting and ending with a letter or digit."
        )
    return lowered


def poison_queue_name(queue: str) -> str | None:
    """`{queue}-poison`, or None when the queue is itself a poison queue or the name would be too long."""
    if queue.endswith("-poison"):
        return None
    candidate = f"{queue}-poison"
    return candidate if len(candidate) <= 63 else None


def parse_timespan(value: Any, *, number_unit: float = 1.0) -> float:
    """A .NET TimeSpan text ("hh:mm:ss[.fffffff]", "d.hh:mm:ss") in seconds; numbers are scaled by `number_unit`."""
    if isinstance(value, bool):
        raise SettingsError(f"not a time span: {value!r}")
    if isinstance(value, (int, float)):
        return float(value) * number_unit
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise SettingsError(f"not a time span: {value!r}")
    seconds = int(match["days"] or 0) * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"] or 0)
    fraction = match["f"]
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def load_host_config(project: Path) -> HostConfig:
    """Read host.json; a missing file gives the defaults."""
    path = project / "host.json"
    if not path.is_file():
        return HostConfig()
    doc = _json_object(path)
    extensions = doc.get("extensions") or {}
    timeout_raw = doc.get("functionTimeout")
    timeout: float | None = None
    if timeout_raw is not None and str(timeout_raw).strip() != "-1":
        timeout = parse_timespan(timeout_raw)
    http = extensions.get("http") or {}
    prefix = str(http.get("routePrefix", "api")).strip("/")
    return HostConfig(function_timeout=timeout, route_prefix=prefix, queues=_queues_options(extensions.get("queues") or {}))


def _queues_options(section: Mapping[str, Any]) -> QueuesOptions:
    opts = QueuesOptions()
    max_dequeue = int(section.get("maxDequeueCount", opts.max_dequeue_count))
    if max_dequeue < 1:
        raise SettingsError("host.json extensions.queues.maxDequeueCount must not be less than 1")
    batch = int(section.get("batchSize", opts.batch_size))
    if not 1 <= batch <= 32:
        raise SettingsError("host.json extensions.queues.batchSize must be between 1 and 32")
    threshold = section.get("newBatchThreshold")
    polling = opts.max_polling_interval
    if "maxPollingInterval" in section:
        # Older host.json schemas gave the interval in milliseconds; TimeSpan text is the current form.
        polling = parse_timespan(section["maxPollingInterval"], number_unit=0.001)
    if polling < 0.1:
        raise SettingsError("host.json extensions.queues.maxPollingInterval must not be less than 00:00:00.1")
    visibility = parse_timespan(section.get("visibilityTimeout", "00:00:00"), number_unit=0.001)
    encoding = str(section.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise SettingsError("host.json extensions.queues.messageEncoding must be 'base64' or 'none'")
    return QueuesOptions(
        max_dequeue_count=max_dequeue,
        visibility_timeout=visibility,
        batch_size=batch,
        new_batch_threshold=int(threshold) if threshold is not None else None,
        max_polling_interval=polling,
        message_encoding=encoding,
    )


def host_id(environ: Mapping[str, str]) -> str:
    """The host id that keys timer status blobs: `AzureFunctionsWebHost__hostid`, else the machine name."""
    configured = environ.get("AzureFunctionsWebHost__hostid")
    if configured:
        return configured
    # The Functions host derives a default id from the machine name: lower-case, letters, digits
    # and hyphens, at most 32 characters, no trailing hyphen.
    cleaned = re.sub(r"[^a-z0-9-]", "", socket.gethostname().lower())[:32].rstrip("-")
    return cleaned or "localhost"

"""The whole local Azure on one machine: Azurite, the emulator and the dev host, wired together.

`start()` is what `make demo`, the end-to-end tests and `python -m local.stack` use. The emulator
runs in this process (tests read its journal directly); Azurite and the host are child processes
in their own process groups, stopped with the stack.

`python -m local.stack` runs until SIGINT/SIGTERM. Once everything is up it prints, flushed, the
host, its keys and the settings as JSON (`--format json`, the default), or the same as
`export NAME='value'` lines (`--format env`, quoted for a POSIX shell) or a dotenv file
(`--format dotenv`): the settings and, with the dev host, its URL and keys as DEV_HOST_URL,
DEV_HOST_MASTER_KEY (for `POST $DEV_HOST_URL/admin/functions/idle_sweep` with `x-functions-key`),
DEV_HOST_FUNCTION_KEY and DEV_HOST_EVENTGRID_EXTENSION_KEY. `--write FILE` also writes that text to
FILE, atomically once the stack is up, and removes it when the stack stops: a command substitution
would wait for the stack to exit, so another shell `source`s the file instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import azurite
from local.emulator import server as emulator_server
from local.emulator.client import EmulatorClient
from local.emulator.wire import TENANT_ID
from local.host import server as host_server

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = REPO / ".local-run"
DEMO_SCENARIO = REPO / "local" / "emulator" / "scenarios" / "demo.json"
SUB = "00000000-0000-0000-0000-000000000001"
DEMO_WORKSPACE = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/Microsoft.MachineLearningServices/workspaces/mlw-demo"
DEMO_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-ml-demo/providers/Microsoft.KeyVault/vaults/kv-ml-demo"
# Client id of the app's user-assigned identity in the local stack (any GUID: the emulator issues for it).
LOCAL_CLIENT_ID = "5b1e0c2a-7d4f-4e8a-9c3b-2f6d8a1e4c70"


def app_settings(emulator_url: str, ca: str, identity_header: str, storage: str, *, mode: str = "observe",
                 eventgrid_key: str = "", extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that points the app (and the real Azure SDKs) at the local stand-ins."""
    env = {
        "AUTOPILOT_MODE": mode,
        "ALLOWED_WORKSPACES": DEMO_WORKSPACE,
        "ALLOWED_VAULTS": DEMO_VAULT,
        "ARM_ENDPOINT": emulator_url,
        "MONITOR_METRICS_ENDPOINT": emulator_url,
        "KEY_VAULT_URL_TEMPLATE": emulator_url + "/keyvault/{name}",
        "AzureWebJobsStorage": storage,
        # As in Azure: the managed identity only (ManagedIdentityCredential, App Service protocol), the
        # user-assigned one by its client id, served by the emulator.
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "AZURE_CLIENT_ID": LOCAL_CLIENT_ID,
        "IDENTITY_ENDPOINT": f"{emulator_url}/msi/token",
        "IDENTITY_HEADER": identity_header,
        "REQUESTS_CA_BUNDLE": ca,
        "NOTIFY_WEBHOOK_URL": f"{emulator_url}/_sinks/webhook/ops",
        # The emulator's stand-in of the Azure Retail Prices API, and its tenant for studio links.
        "RETAIL_PRICES_ENDPOINT": f"{emulator_url}/api/retail/prices",
        "STUDIO_TENANT_ID": TENANT_ID,
    }
    if eventgrid_key:
        env["NOTIFY_EVENTGRID_ENDPOINT"] = f"{emulator_url}/_sinks/eventgrid/autopilot-events/api/events"
        env["NOTIFY_EVENTGRID_KEY"] = eventgrid_key
    env.update(extra or {})
    return env


@dataclass
class Stack:
    emulator: EmulatorClient
    storage: azurite.AzuriteHandle
    env: dict[str, str]
    host: host_server.HostHandle | None = None
    _emulator_handle: emulator_server.EmulatorHandle | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Stop what this stack started (an emulator it was given keeps running)."""
        if self._stopped:
            return
        self._stopped = True
        handle = self._emulator_handle
        for stop in (self.host.stop if self.host else None, self.storage.stop, handle.stop if handle else None):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()

    def restart_host(self, timers: bool = False, **overrides: str) -> host_server.HostHandle:
        """Start (or restart) the dev host with the stack's settings plus `overrides`."""
        if self.host:
            self.host.stop()
        self.env.update(overrides)
        self.host = host_server.start(REPO, env=self.env, timers=timers, log_path=RUN_DIR / "host.log")
        if self.host.errors:
            raise RuntimeError(f"functions failed to index: {self.host.errors}")
        return self.host


def _eventgrid_key(scenario: Mapping[str, Any]) -> str:
    topics = (scenario.get("sinks") or {}).get("eventgridTopics") or {}
    return str(topics.get("autopilot-events", ""))


def start(scenario: Path | Mapping[str, Any] | None = DEMO_SCENARIO, *, mode: str = "observe", host: bool = True,
          timers: bool = False, run_dir: Path = RUN_DIR, extra: Mapping[str, str] | None = None,
          emulator: EmulatorClient | None = None) -> Stack:
    """Start Azurite, the emulator (seeded with `scenario`; or reuse a running one) and, unless `host=False`, the dev host."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(Path(scenario).read_text()) if isinstance(scenario, Path) else dict(scenario or {})
    # A fresh storage account each time: a ledger left by an earlier run would make its claims look like duplicates.
    shutil.rmtree(run_dir / "azurite", ignore_errors=True)
    storage = azurite.start(run_dir / "azurite")
    handle = None
    try:
        if emulator is None:
            handle = emulator_server.start(state_dir=run_dir / "emulator", scenario=data)
            emulator = EmulatorClient(handle.url, handle.ca, handle.identity_header)
        else:
            emulator.reset(data)
    except Exception:
        storage.stop()
        raise
    env = app_settings(emulator.url, emulator.ca, emulator.identity_header, storage.connection_string, mode=mode,
                       eventgrid_key=_eventgrid_key(data), extra=extra)
    stack = Stack(emulator, storage, env, _emulator_handle=handle)
    if host:
        try:
            stack.restart_host(timers=timers)
        except Exception:
            stack.stop()
            raise
    return stack


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[Stack]:
    stack = start(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()


def env_lines(env: Mapping[str, str]) -> list[str]:
    """`export NAME='value'` lines that a POSIX shell can `eval` or `source`."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def _dotenv_value(value: str) -> str:
    if "'" not in value and "\n" not in value:
        return f"'{value}'"  # single quotes: taken literally, no escapes, no ${...} expansion
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dotenv_lines(env: Mapping[str, str]) -> list[str]:
    """`NAME='value'` lines of a dotenv file."""
    return [f"{name}={_dotenv_value(value)}" for name, value in env.items()]


def host_variables(host: host_server.HostHandle | None) -> dict[str, str]:
    """The dev host's URL and keys as variables, so the env and dotenv outputs carry what the json does: a shell that
    sources them can call the host (the admin endpoints take the master key). Nothing without the dev host."""
    if host is None:
        return {}
    return {"DEV_HOST_URL": host.url, "DEV_HOST_MASTER_KEY": host.master_key, "DEV_HOST_FUNCTION_KEY": host.function_key,
            "DEV_HOST_EVENTGRID_EXTENSION_KEY": host.eventgrid_extension_key}


def describe(stack: Stack, output: str) -> str:
    """What `python -m local.stack` prints once the stack is up, in the format asked for."""
    if output == "env":
        return "\n".join(env_lines({**stack.env, **host_variables(stack.host)})) + "\n"
    if output == "dotenv":
        return "\n".join(dotenv_lines({**stack.env, **host_variables(stack.host)})) + "\n"
    host = stack.host
    return json.dumps({"host": host.url if host else None, "master_key": host.master_key if host else None,
                       "function_key": host.function_key if host else None,
                       "eventgrid_extension_key": host.eventgrid_extension_key if host else None, "env": stack.env},
                      indent=2) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description="Run the local Azure until Ctrl-C; print its settings once it is up.")
    parser.add_argument("--scenario", type=Path, default=DEMO_SCENARIO)
    parser.add_argument("--mode", choices=("observe", "enforce"), default="observe")
    parser.add_argument("--timers", action="store_true", help="fire timers on their schedules")
    parser.add_argument("--no-host", action="store_true", help="start Azurite and the emulator only (e.g. for `func start`)")
    parser.add_argument("--format", choices=("json", "env", "dotenv"), default="json", dest="output",
                        help="json: host, keys and settings (default); env: the same as `export NAME='value'` lines (the host as DEV_HOST_URL, "
                             "DEV_HOST_MASTER_KEY, ...); dotenv: the same as `NAME='value'` lines")
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="also write that output to FILE once the stack is up (removed when it stops)")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help="state and logs (default: .local-run)")
    args = parser.parse_args(argv)
    stack = start(args.scenario, mode=args.mode, host=not args.no_host, timers=args.timers, run_dir=args.run_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        text = describe(stack, args.output)
        if args.write is not None:
            _write_atomically(args.write, text)
        sys.stdout.write(text)
        sys.stdout.flush()
        if args.output != "json":
            where = f"dev host {stack.host.url}" if stack.host else "no dev host"
            print(f"local stack up ({where}); Ctrl-C stops it", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            time.sleep(0)
    finally:
        if args.write is not None:
            args.write.unlink(missing_ok=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""No secret value appears in any log line, exception message, ledger row, notification or CLI output.

Everything the app emits during rotations is captured — every log record at DEBUG (the Azure SDKs' HTTP
logging included), the process's stdout and stderr, the exceptions raised, every ledger row of every
partition, what the notification sinks received, the dev host's log and the `history` command's output —
and searched for every key value the emulator ever issued (each storage key before and after every step,
including the values a regeneration replaced, and every secret version's value), also base64-, URL- and
base64url-encoded, and by their first and last 24 characters.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from azure.data.tables import TableClient

from local import drive
from local.stack import REPO
from shared.engine import TransientFailure
from shared.model import Status
from tests.e2e.conftest import World
from tests.e2e.test_rotation import SECRET, VAULT, account, fast, outcome, rotation, versions


class Capture(logging.Handler):
    """Every record, formatted with its arguments and any exception text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("local."):
            return  # the emulator itself (test infrastructure, in this process), not the app
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root, sdk = logging.getLogger(), logging.getLogger("azure")
    levels = (root.level, sdk.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)  # azure-core's HTTP logging policies log at INFO/DEBUG under "azure"
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        sdk.setLevel(levels[1])


def issued(state: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(storage key values, secret values) present in the emulator now."""
    keys = {v for a in state["storage"]["accounts"] for v in a["keys"].values()}
    secrets = {v["value"] for vault in state["keyvault"]["vaults"] for s in vault["secrets"] for v in s["versions"]}
    return keys, secrets


def forms(value: str, partial: bool) -> set[str]:
    out = {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode(),
           value.replace("+", "-").replace("/", "_").rstrip("=")}
    if partial:
        out |= {value[:24], value.rstrip("=")[-24:]}
    return out


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_no_key_value_appears_in_any_log_exception_ledger_row_notification_or_cli_output(
        world: World, app, captured: Capture, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    fast(world)
    keys: set[str] = set()
    secrets: set[str] = set()
    emitted: list[str] = []

    def collect(_step: Any = None) -> None:
        k, s = issued(world.emulator.state())
        keys.update(k)
        secrets.update(s)

    collect()
    settings = world.settings(ARM_MAX_RETRIES="1", ROTATION_MIN_INTERVAL_HOURS="0")
    now = datetime.now(UTC)

    # 1. a full rotation, then a dry run, an observe-mode run and an unmanaged secret
    report = world.rotator(settings, checkpoint=collect).run(rotation("leak-1"), now)
    assert outcome(report).status is Status.DONE
    collect()
    world.rotator(settings).run(rotation("leak-dry"), now + timedelta(minutes=1), dry_run=True)
    world.rotator(world.settings(mode="observe")).run(rotation("leak-observe"), now + timedelta(minutes=1))
    world.rotator(settings).run(rotation("leak-unmanaged", secret="app-insights-conn"), now)

    # 2. faulted rotations: exception messages and failure outcomes, then the re-runs that converge
    faults = [("PUT", r"/datastores/trainingdata$", {"status": 500}),
              ("POST", r"/regenerateKey$", {"status": 429, "headers": {"Retry-After": "1"}}),
              ("PUT", rf"^/keyvault/{VAULT}/secrets/{SECRET}$", {"drop": True}),
              ("POST", r"/listKeys$", {"drop": True})]
    for i, (method, path, spec) in enumerate(faults):
        at = now + timedelta(minutes=10 + i)
        world.emulator.fault(method=method, path=path, times=10, **spec)
        with pytest.raises(TransientFailure) as failure:
            world.rotator(settings, checkpoint=collect).run(rotation(f"leak-fault-{i}"), at)
        emitted.append(exception_text(failure.value))
        world.emulator.control("DELETE", "faults")
        collect()
        assert outcome(world.rotator(settings, checkpoint=collect).run(rotation(f"leak-fault-{i}"), at)).status is Status.DONE
        collect()

    # 3. through the dev host: a SecretNearExpiry event. The in-process runs above recorded their
    # azure-ai-ml cloud in this process's environment; the host must not inherit it (see the app fixture).
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    stack = app(mode="enforce", ROTATION_MIN_INTERVAL_HOURS="0")
    assert stack.host
    assert drive.event_grid(stack, world.emulator.key_vault_event(VAULT, SECRET)).status == 202
    drive.wait_quiet(stack)
    collect()
    host_log = stack.host.logs()
    assert "rotate-credential" in host_log and '"status": "done"' in host_log, "the host's log holds the rotation's outcome"
    emitted.append(host_log)

    # 4. every ledger row, every notification, the CLI's history (table and JSON)
    table = TableClient.from_connection_string(settings.storage_connection, world.table)
    rows = [dict(e) for e in table.list_entities()]
    assert {r["PartitionKey"] for r in rows} >= {"claim", f"out-{now:%Y%m%d}"}
    emitted.append(json.dumps(rows, default=str))
    sinks = world.emulator.state()["sinks"]
    assert sinks["webhooks"]["ops"] and sinks["eventgrid"]["autopilot-events"]
    emitted.append(json.dumps(sinks))
    env = {**os.environ, **world.env()}
    for extra in ([], ["--json"]):
        cli = subprocess.run([sys.executable, "-m", "shared.cli", "history", "--hours", "48", "--limit", "500", *extra],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert "rotate-credential" in cli.stdout
        emitted.append(cli.stdout + cli.stderr)

    out, err = capfd.readouterr()
    emitted += [out, err, *captured.lines]
    assert any("/listKeys" in line for line in captured.lines), "the SDKs' HTTP logging was captured"

    state = world.emulator.state()
    assert account(state)["regenerationCount"] == 6 and len(versions(state)) == 7  # six rotations done
    assert len(keys) == 8, "every value ever issued was collected (two seeded, six regenerated), not only the current two"
    haystack = "\n".join(emitted)
    control = json.dumps(state)  # the emulator's own state holds every current value: the search must find them there
    assert all(any(form in control for form in forms(v, True)) for v in account(state)["keys"].values())
    leaked = sorted({form[:12] + "…" for value in keys for form in forms(value, True) if form in haystack}
                    | {form[:12] + "…" for value in secrets for form in forms(value, value in keys) if form in haystack})
    assert not leaked, f"key material found in the app's output: {leaked}"

"""`python -m local.stack --format env|dotenv` carries what the json does: the settings and, with the dev host, its URL
and keys (a shell that sources the file can `POST $DEV_HOST_URL/admin/functions/...` with the master key)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

from local.stack import Stack, describe

SETTINGS = {"AUTOPILOT_MODE": "observe", "ARM_ENDPOINT": "https://127.0.0.1:8443"}
HOST = SimpleNamespace(url="http://127.0.0.1:7071", master_key="master-'key", function_key="function-key",
                       eventgrid_extension_key="eventgrid-key")
ALL = {**SETTINGS, "DEV_HOST_URL": HOST.url, "DEV_HOST_MASTER_KEY": HOST.master_key,
       "DEV_HOST_FUNCTION_KEY": HOST.function_key, "DEV_HOST_EVENTGRID_EXTENSION_KEY": HOST.eventgrid_extension_key}


def _stack(host: SimpleNamespace | None) -> Stack:
    return Stack(emulator=None, storage=None, env=dict(SETTINGS), host=host)


def _sourced(text: str, tmp_path: Path) -> dict[str, str]:
    exports = tmp_path / "stack.env"
    exports.write_text(text)
    script = f'. "$1"; for n in {" ".join(ALL)}; do printf "%s=%s\\0" "$n" "${{!n-unset}}"; done'
    out = subprocess.run(["bash", "-c", script, "bash", str(exports)], capture_output=True, check=True, timeout=30,
                         env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}).stdout.decode()
    return {k: v for k, _, v in (item.partition("=") for item in out.split("\0")[:-1]) if v != "unset"}


def test_the_env_output_with_the_dev_host_carries_its_url_and_keys_as_the_json_does(tmp_path: Path):
    assert _sourced(describe(_stack(HOST), "env"), tmp_path) == ALL
    doc = json.loads(describe(_stack(HOST), "json"))
    assert (doc["host"], doc["master_key"], doc["function_key"], doc["eventgrid_extension_key"]) == (
        ALL["DEV_HOST_URL"], ALL["DEV_HOST_MASTER_KEY"], ALL["DEV_HOST_FUNCTION_KEY"], ALL["DEV_HOST_EVENTGRID_EXTENSION_KEY"])


def test_the_dotenv_output_with_the_dev_host_carries_them_too():
    lines = describe(_stack(HOST), "dotenv").splitlines()
    assert [line.split("=", 1)[0] for line in lines] == list(ALL)
    assert f"DEV_HOST_URL='{HOST.url}'" in lines


def test_without_the_dev_host_the_env_output_is_the_settings_alone(tmp_path: Path):
    text = describe(_stack(None), "env")
    assert _sourced(text, tmp_path) == SETTINGS and "DEV_HOST" not in text
    assert text == "".join(f"export {k}={shlex.quote(v)}\n" for k, v in SETTINGS.items())

"""The README's "With Azure Functions Core Tools" steps, run as written, with the dev host standing in for `func`.

- The section's first bash block is run line by line in bash, in a copy of the project (its `.venv`
  and `local/node_modules` linked, not copied): `make install` as a dry run (the real one would
  touch the shared venv), Azurite exactly as written (on its default ports, the ones
  `UseDevelopmentStorage=true` names), the `cp`, the editor line with an `EDITOR` that sets
  ALLOWED_WORKSPACES to the emulator's demo workspace, and `source .venv/bin/activate && func start`
  with a `func` on PATH that runs the dev host for the current directory, and only inside the venv.
- The host must index every function of the app with no error, and reach Azurite through
  `UseDevelopmentStorage=true`: a message that does not decode, put on the work queue, ends up in
  its poison queue (the host's own rule, no function runs, nothing calls Azure).
- `python -m local.stack --format env --write FILE` writes the settings once the stack is up; bash
  sourcing it gets every value back unchanged, and the CLI reads the local stack through it.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import DEMO_WORKSPACE, REPO, dotenv_lines, env_lines

pytestmark = pytest.mark.stack

SECTION = "## With Azure Functions Core Tools"
AZURITE_PORTS = (10000, 10001, 10002)  # blob, queue, table: what UseDevelopmentStorage=true means
DEV_STORAGE = "UseDevelopmentStorage=true"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "node_modules", ".local-run", "local.settings.json", "__pycache__",
                                     ".pytest_cache", ".ruff_cache", "*.egg-info", "tests")


def _section_blocks() -> list[list[str]]:
    """The command lines of each fenced bash block of the README's Core Tools section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else len(text)]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.S | re.M)
    return [[line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
            for block in blocks]


def _steps() -> dict[str, str]:
    lines = _section_blocks()[0]
    programs = [line.split()[0] for line in lines]
    assert programs == ["make", "npx", "cp", '"${EDITOR:-vi}"', "source"], lines
    return dict(zip(("install", "azurite", "copy", "edit", "start"), lines, strict=True))


def _app_functions() -> set[str]:
    """Every function the app's blueprints declare: a `def` decorated with a `bp.…(…)` call."""
    names: set[str] = set()
    for path in (REPO / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and isinstance(d.func.value, ast.Name)
                    and d.func.value.id == "bp" for d in node.decorator_list):
                names.add(node.name)
    return names


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _accepts(port: int) -> bool:
    return not _free(port)


def _executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _stop_group(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(5)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the project, with the installed venv and npm packages linked in."""
    app = tmp_path / "app"
    shutil.copytree(REPO, app, ignore=COPY_IGNORE)
    (app / ".venv").symlink_to(REPO / ".venv")
    (app / "local" / "node_modules").symlink_to(REPO / "local" / "node_modules")
    return app


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without any setting the app reads, nor an active venv."""
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    env = {k: v for k, v in os.environ.items()
           if k not in sample and not k.startswith(("AzureWebJobs", "FUNCTIONS_")) and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO / ".venv")))
    return env


@pytest.fixture
def readme_azurite(project: Path, shell_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """The README's Azurite line, run as written in the copy; stopped with its whole process group."""
    if not all(_free(port) for port in AZURITE_PORTS):
        pytest.skip(f"Azurite's default ports {AZURITE_PORTS} are already in use on this machine")
    log = tmp_path / "azurite.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(["bash", "-c", _steps()["azurite"]], cwd=project, env=shell_env, stdout=sink,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not all(_accepts(port) for port in AZURITE_PORTS):
            assert time.monotonic() < deadline, f"Azurite did not listen on {AZURITE_PORTS}:\n{log.read_text()}"
            time.sleep(0.1)
        yield
    finally:
        _stop_group(process)


def test_the_section_lists_the_steps_in_order() -> None:
    steps = _steps()
    assert steps["install"].split("#")[0].split() == ["make", "install"]
    # The project's pinned Azurite, never one fetched on the fly, on the ports UseDevelopmentStorage=true names.
    azurite = steps["azurite"]
    assert azurite.startswith("npx --prefix local --no-install azurite ")
    assert not re.search(r"--(blob|queue|table)(Port|Host)\b", azurite)
    assert steps["copy"].split("#")[0].split() == ["cp", "local.settings.sample.json", "local.settings.json"]
    assert "ALLOWED_WORKSPACES" in steps["edit"]
    assert steps["start"] == "source .venv/bin/activate && func start"
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))
    assert sample["Values"]["AzureWebJobsStorage"] == DEV_STORAGE


def test_make_install_is_a_target(project: Path, shell_env: dict[str, str]) -> None:
    command = _steps()["install"].replace("make install", "make -n install", 1)
    result = subprocess.run(["bash", "-c", command], cwd=project, env=shell_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_steps_as_written_start_the_app_on_azurite(project: Path, shell_env: dict[str, str], tmp_path: Path,
                                                       readme_azurite: None) -> None:
    del readme_azurite
    steps = _steps()
    subprocess.run(["bash", "-c", steps["copy"]], cwd=project, env=shell_env, check=True, timeout=30)
    settings = json.loads((project / "local.settings.json").read_text(encoding="utf-8"))
    assert settings["IsEncrypted"] is False
    assert isinstance(settings["Values"], dict)
    assert settings["Values"]["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert settings["Values"]["AzureWebJobsStorage"] == DEV_STORAGE

    # The operator's edit: an EDITOR that sets ALLOWED_WORKSPACES in the one file it is given.
    tools = tmp_path / "bin"
    tools.mkdir()
    editor = _executable(tools / "edit-settings", f"""#!{sys.executable}
import json, sys
assert len(sys.argv) == 2 and sys.argv[1] == "local.settings.json", sys.argv
with open(sys.argv[1]) as f:
    doc = json.load(f)
doc["Values"]["ALLOWED_WORKSPACES"] = {DEMO_WORKSPACE!r}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f, indent=2)
""")
    subprocess.run(["bash", "-c", steps["edit"]], cwd=project, env={**shell_env, "EDITOR": str(editor)}, check=True, timeout=30)
    assert json.loads((project / "local.settings.json").read_text())["Values"]["ALLOWED_WORKSPACES"] == DEMO_WORKSPACE

    # `func start`: the dev host for the current directory, with the python of the sourced venv only.
    _executable(tools / "func", """#!/bin/sh
[ "$#" -eq 1 ] && [ "$1" = start ] || { echo "func: unexpected arguments: $*" >&2; exit 2; }
[ -n "$VIRTUAL_ENV" ] && [ "$(command -v python)" = "$VIRTUAL_ENV/bin/python" ] || { echo "func: the venv is not active" >&2; exit 3; }
exec python -m local.host --project "$PWD" --port 0
""")
    env = {**shell_env, "PATH": f"{tools}{os.pathsep}{shell_env['PATH']}"}
    log = tmp_path / "func.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(["bash", "-c", steps["start"]], cwd=project, env=env, stdout=subprocess.PIPE,
                                   stderr=sink, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        ready = _ready(process, log)
        assert ready["errors"] == {}
        indexed = {f["name"] for f in ready["functions"]}
        assert indexed == _app_functions()
        assert {"on_event", "on_alert", "idle_sweep"} <= indexed  # the URLs the section names

        from azure.storage.queue import QueueClient

        work = QueueClient.from_connection_string(DEV_STORAGE, "autopilot-work")
        poison = QueueClient.from_connection_string(DEV_STORAGE, "autopilot-work-poison")
        with contextlib.suppress(Exception):
            work.create_queue()
        body = "not base64: the host poisons it without running a function"
        work.send_message(body)
        deadline = time.monotonic() + 30
        found: list[str] = []
        while not found and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                found = [m.content for m in poison.receive_messages()]
            time.sleep(0.2)
        decoded = [_maybe_b64(text) for text in found]
        assert body in decoded, f"not poisoned through {DEV_STORAGE}; host log:\n{log.read_text()[-3000:]}"
    finally:
        _stop_group(process)


def _maybe_b64(text: str) -> str:
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        return base64.b64decode(text, validate=True).decode()
    return text


def _ready(process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> dict[str, Any]:
    """The dev host's ready line (JSON with its URL and keys) from `func start`'s stdout."""
    result: dict[str, Any] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and "url" in doc and "master_key" in doc:
                    result.update(doc)
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert result, f"`func start` did not get ready (exit code {process.poll()}):\n{log.read_text()[-4000:]}"
    return result


TRICKY = {
    "PLAIN": "observe",
    "CONNECTION": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a+b/c==;",
    "TEMPLATE": "https://127.0.0.1:1/keyvault/{name}",
    "QUOTES": "it's \"quoted\" $HOME `id` \\ back",
    "LINES": "one\ntwo",
    "EMPTY": "",
}


def test_env_lines_give_every_value_back_to_bash(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.write_text("\n".join(env_lines(TRICKY)) + "\n")
    script = 'eval "$(cat "$1")"; for n in PLAIN CONNECTION TEMPLATE QUOTES LINES EMPTY; do printf "%s\\0" "${!n}"; done'
    out = subprocess.run(["bash", "-c", script, "bash", str(exports)], capture_output=True, check=True, timeout=30,
                         env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}).stdout
    assert out.decode().split("\0")[:-1] == list(TRICKY.values())


def test_dotenv_lines_quote_what_needs_it() -> None:
    lines = dict(line.split("=", 1) for line in dotenv_lines({k: v for k, v in TRICKY.items() if k != "LINES"}))
    assert lines["CONNECTION"] == f"'{TRICKY['CONNECTION']}'"
    assert lines["TEMPLATE"] == "'https://127.0.0.1:1/keyvault/{name}'"
    assert lines["QUOTES"] == '"it\'s \\"quoted\\" $HOME `id` \\\\ back"'
    assert dotenv_lines({"LINES": "one\ntwo"}) == ['LINES="one\\ntwo"']


def test_the_stack_writes_its_settings_once_up_and_the_cli_reads_them(tmp_path: Path) -> None:
    target = tmp_path / "out" / "stack.env"
    log = tmp_path / "stack.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "--no-host", "--format", "env", "--write", str(target),
             "--run-dir", str(tmp_path / "run")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=sink, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not target.exists():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = target.read_text()
        assert all(line.startswith("export ") for line in text.splitlines())
        assert process.stdout is not None
        printed = [process.stdout.readline().decode() for _ in text.splitlines()]
        assert "".join(printed) == text  # the same lines on stdout, flushed while the stack runs

        probe = 'eval "$(cat "$1")"; printf "%s\\n%s\\n" "$ALLOWED_WORKSPACES" "$AzureWebJobsStorage"'
        out = subprocess.run(["bash", "-c", probe, "bash", str(target)], capture_output=True, text=True, check=True,
                             timeout=30).stdout.splitlines()
        assert out[0] == DEMO_WORKSPACE
        assert out[1].startswith("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;") and "QueueEndpoint=" in out[1]

        # The one line the README gives to point the CLI at the local stack.
        # As from a fresh shell: azure-ai-ml records its cloud in the environment of a process that used it.
        fresh = {k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"}
        cli = subprocess.run(["bash", "-c", f'source "$1" && {REPO}/.venv/bin/autopilot plan --workspace all --output json',
                              "bash", str(target)], capture_output=True, text=True, timeout=120, env=fresh)
        assert cli.returncode == 0, cli.stderr
        assert "mlw-demo" in cli.stdout
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            assert process.wait(30) == 0
        finally:
            _stop_group(process)
    assert not target.exists()  # removed when the stack stops: never a stale file to source

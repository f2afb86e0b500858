"""Start the host as a subprocess: `start(project_dir, port=0, timers=False, env=None) -> HostHandle`.

Rules:
- The host always runs in its own process: the app module must be imported in a process whose
  environment already holds the settings, and it can be imported only once per process.
- The child's environment is this process's plus `env` (which therefore wins over
  local.settings.json). The child runs `python -m local.host` with this repository importable.
- `start` returns once the ready line is printed; it raises RuntimeError with the log tail when
  the host exits or does not get ready within `timeout`.
- Host logs (and anything the app prints) go to `handle.log_path`.
- `stop()` sends SIGTERM, waits, then kills the process group: nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HostHandle:
    """A running host subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    master_key: str
    function_key: str
    eventgrid_extension_key: str  # the system key Event Grid subscriptions present as `code`
    functions: list[dict[str, Any]]
    errors: dict[str, str]
    log_path: Path
    _drain: threading.Thread | None = field(default=None, repr=False)

    def logs(self) -> str:
        """Everything the host has logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the host (SIGTERM, then SIGKILL); return its exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._drain is not None:
            self._drain.join(2)
        return self.process.returncode


def _copy(source: IO[bytes], log_path: Path) -> None:
    with log_path.open("ab") as sink:
        for line in iter(source.readline, b""):
            sink.write(line)
            sink.flush()


def start(
    project_dir: str | os.PathLike[str],
    port: int = 0,
    timers: bool = False,
    env: Mapping[str, str] | None = None,
    *,
    settings: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    log_path: str | os.PathLike[str] | None = None,
) -> HostHandle:
    """Start `python -m local.host` for `project_dir` and wait until it is ready."""
    project = Path(project_dir).resolve()
    if log_path is None:
        handle_fd, raw = tempfile.mkstemp(prefix="local-host-", suffix=".log")
        os.close(handle_fd)
        log = Path(raw)
    else:
        log = Path(log_path)
        log.write_bytes(b"")
    child_env = dict(os.environ)
    child_env.update(env or {})
    # The child imports `local.host` from this repository whatever its working directory.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    command = [sys.executable, "-m", "local.host", "--project", str(project), "--port", str(port)]
    if timers:
        command.append("--timers")
    if settings is not None:
        command += ["--settings", str(Path(settings).resolve())]
    with log.open("ab") as stderr_sink:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr_sink,
            env=child_env,
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )
    assert process.stdout is not None
    ready: dict[str, Any] | None = None
    lines: list[bytes] = []
    reader_done = threading.Event()

    def read_ready() -> None:
        nonlocal ready
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            try:
                doc = json.loads(line)
            except ValueError:
                lines.append(line)
                continue
            if isinstance(doc, dict) and "url" in doc and "master_key" in doc:
                ready = doc
                break
            lines.append(line)
        reader_done.set()

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not reader_done.wait(0.05):
        if time.monotonic() > deadline:
            break
    if ready is None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        with log.open("ab") as sink:
            sink.writelines(lines)
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"local.host did not become ready (exit code {process.returncode}); log {log}:\n{tail}")
    with log.open("ab") as sink:
        sink.writelines(lines)
    drain = threading.Thread(target=_copy, args=(process.stdout, log), daemon=True)
    drain.start()
    return HostHandle(
        process=process,
        url=str(ready["url"]),
        master_key=str(ready["master_key"]),
        function_key=str(ready["function_key"]),
        eventgrid_extension_key=str(ready["eventgrid_extension_key"]),
        functions=list(ready.get("functions") or []),
        errors=dict(ready.get("errors") or {}),
        log_path=log,
        _drain=drain,
    )

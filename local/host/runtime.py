"""The host: settings, the indexed app, listeners and the URL space Core Tools serves.

Rules:
- Start order: settings into the environment, host.json, keys, import and index the app (once),
  then the HTTP listener, queue listeners and (with `timers=True`) timer listeners.
- URLs, as Core Tools serves them:
  - `GET /` — 200 while running.
  - Every admin API below needs the master key: 401 without it, before anything else.
  - `GET /admin/host/status` — `{"id", "state": "Running", "version", "processUptime", "errors"}`.
  - `GET /admin/functions` and `GET /admin/functions/NAME` — function metadata.
  - `POST /admin/functions/NAME` with `{"input": ...}` — runs a non-HTTP function in the
    background and answers 202 at once (404 for an unknown function, 400 for a missing body).
    A timer gets a TimerInfo that is not past due, a queue function gets the input as the
    message body, an Event Grid function gets the input parsed as one event. Here: an
    HTTP-triggered function is refused with 400 (call its route).
  - `/runtime/webhooks/eventgrid?functionName=NAME` — the `eventgrid_extension` system key or the
    master key first (401 without it, whatever the method or the event type), then see `eventgrid`.
  - `/{routePrefix}/{route}` — HTTP triggers, most specific template first, methods honoured
    (a method the function does not accept is 404, as a route that does not match), auth level
    checked (401); the function's HttpResponse is returned as is, an exception is 500.
  - anything else — 404 (an unknown `/runtime/` path too, key or not; an unknown `/admin/` path with
    the master key — without it, 401 like every admin path).
- Stop: the HTTP listener closes, listeners stop fetching, in-flight invocations get up to the
  grace period to finish.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from local.host import auth, eventgrid, index, settings
from local.host.bindings import Metadata, event_datum, http_datum, http_response, queue_datum
from local.host.invoker import Invoker
from local.host.queues import QueueListener
from local.host.storage import QueueStore
from local.host.timers import BlobStatusStore, StatusStore, TimerListener, admin_timer_datum, schedule_zone
from local.httpwire import Request, Response, WireServer

log = logging.getLogger("local.host")


class Host:
    """One running host for one project directory."""

    def __init__(
        self,
        project: Path,
        *,
        port: int | None = None,
        timers: bool = False,
        settings_file: Path | None = None,
        environ: MutableMapping[str, str] | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        self.project = project.resolve()
        self.port = port
        self.timers_enabled = timers
        self.settings_file = settings_file
        self.environ: MutableMapping[str, str] = os.environ if environ is None else environ
        self.bind = bind
        self.state = "Initialized"
        self.started_at = time.monotonic()
        self.index = index.FunctionIndex()
        self.keys = auth.Keys("", "", "")
        self.config = settings.HostConfig()
        self.host_id = ""
        self._http: WireServer | None = None
        self._queue_listeners: list[QueueListener] = []
        self._timer_listeners: list[TimerListener] = []
        self._status_store: StatusStore | None = None
        self._invoker: Invoker | None = None
        self._queues: QueueStore | None = None
        self._http_routes: list[index.FunctionEntry] = []
        self._stop_lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start everything and return the ready-line document."""
        local = settings.load_local_settings(self.project, self.settings_file)
        applied, skipped = settings.apply_settings(local.values, self.environ)
        if local.path is not None:
            log.info("settings from %s: %d applied", local.path.name, len(applied))
        for name in skipped:
            log.info("Skipping '%s' from local settings as it's already defined in current environment variables.", name)
        if self.port is None:
            self.port = local.http_port or 7071
        self.config = settings.load_host_config(self.project)
        self.keys = auth.Keys.from_environ(self.environ)
        self.host_id = settings.host_id(self.environ)
        zone = schedule_zone(self.environ)

        app = index.load_app(self.project, self.environ)
        self.index = index.build_index(app, self.environ, self.project)
        for name, message in self.index.errors.items():
            log.error("The '%s' function is in error: %s", name, message)

        self._queues = QueueStore(self.config.queues.message_encoding)
        self._invoker = Invoker(
            self._queues,
            timeout=self.config.function_timeout,
            threads=index.python_threadpool_size(self.environ),
        )
        storage = self.environ.get(settings.STORAGE_SETTING)
        monitored = [f for f in self.index.of_type(index.TIMER_TRIGGER) if f.timer and f.timer.use_monitor]
        if monitored and storage:
            self._status_store = BlobStatusStore(storage, self.host_id, zone)
        elif monitored:
            log.warning("%s is not set: timer schedules are not monitored (no past-due runs)", settings.STORAGE_SETTING)
        self._http_routes = sorted(
            (f for f in self.index.of_type(index.HTTP_TRIGGER) if f.http is not None),
            key=lambda f: f.http.template.precedence if f.http else (),
        )

        self._http = WireServer((self.bind, self.port or 0), self.handle, name="local.host")
        self._http.start()
        for entry in self.index.of_type(index.QUEUE_TRIGGER):
            listener = QueueListener(entry, self.config.queues, self._invoker, self._queues)
            listener.start()
            self._queue_listeners.append(listener)
        if self.timers_enabled:
            for entry in self.index.of_type(index.TIMER_TRIGGER):
                timer = TimerListener(entry, self._invoker, self._status_store, zone)
                timer.start()
                self._timer_listeners.append(timer)
        self.state = "Running"
        return self.ready_info()

    @property
    def url(self) -> str:
        port = self._http.port if self._http else self.port
        return f"http://{self.bind}:{port}"

    def ready_info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "functions": [self._describe(f) for f in self.index.functions.values()],
            "errors": dict(self.index.errors),
            "master_key": self.keys.master,
            "function_key": self.keys.function,
            "eventgrid_extension_key": self.keys.eventgrid,
        }

    def _describe(self, entry: index.FunctionEntry) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": entry.name, "trigger": entry.trigger_type}
        if entry.http is not None:
            prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
            doc["url"] = f"{self.url}{prefix}/{entry.http.template.template.strip('/')}"
            doc["methods"] = sorted(entry.http.methods) if entry.http.methods else None
            doc["auth_level"] = entry.http.auth_level
        elif entry.trigger_type == index.EVENT_GRID_TRIGGER:
            doc["url"] = f"{self.url}/runtime/webhooks/eventgrid?functionName={entry.name}"
        else:
            doc["url"] = f"{self.url}/admin/functions/{entry.name}"
        if entry.queue is not None:
            doc["queue"] = entry.queue.queue_name
        if entry.timer is not None:
            doc["schedule"] = entry.timer.schedule.expression
        return doc

    def stop(self, grace: float = 10.0) -> None:
        """Stop serving; give in-flight invocations up to `grace` seconds."""
        with self._stop_lock:
            if self.state == "Stopped":
                return
            self.state = "Stopping"
            if self._http is not None:
                self._http.stop()
            # Every listener stops taking work at once; then each gets what is left of one grace period,
            # so stopping costs at most `grace`, not `grace` per listener.
            listeners = [*self._timer_listeners, *self._queue_listeners]
            for listener in listeners:
                listener.request_stop()
            deadline = time.monotonic() + grace
            for listener in listeners:
                listener.stop(max(0.0, deadline - time.monotonic()))
            if self._invoker is not None:
                if not self._invoker.wait_idle(grace):
                    log.warning("stopping with invocations still running")
                self._invoker.shutdown()
            if self._queues is not None:
                self._queues.close()
            self.state = "Stopped"

    # --- requests ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route one HTTP request."""
        path = request.path.rstrip("/") or "/"
        lowered = path.lower()
        if lowered == "/":
            return Response(200, "Your Functions host is running.")
        if lowered == "/runtime/webhooks/eventgrid":
            # The host authorizes a system webhook before the extension sees the request.
            if not self.keys.authorized("system", request):
                return Response(401)
            assert self._invoker is not None
            return eventgrid.handle(request, self.index, self._invoker)
        admin_functions = lowered == "/admin/functions" or lowered.startswith("/admin/functions/")
        # The host authorizes every /admin/ request (admin level) before it routes it: 401 comes before 404.
        if lowered.startswith("/admin/") and not self.keys.authorized("admin", request):
            return Response(401)
        if lowered == "/admin/host/status":
            return self._status()
        if admin_functions:
            return self._admin_functions(request, path[len("/admin/functions") :].strip("/"))
        if lowered.startswith("/admin/") or lowered.startswith("/runtime/"):
            return Response(404)
        return self._http_trigger(request, path)

    def _status(self) -> Response:
        doc: dict[str, Any] = {
            "id": self.host_id,
            "state": self.state,
            "version": "local.host",
            "processUptime": int((time.monotonic() - self.started_at) * 1000),
            # Not in the real host's answer: lets local tools wait until queued work has run.
            "activeInvocations": self._invoker.active if self._invoker is not None else 0,
        }
        if self.index.errors:
            doc["errors"] = [f"{name}: {message}" for name, message in self.index.errors.items()]
        return Response(200, doc)

    def _admin_functions(self, request: Request, name: str) -> Response:
        if not name:
            if request.method != "GET":
                return Response(405, None, [("Allow", "GET")])
            return Response(200, [self._describe(f) for f in self.index.functions.values()])
        entry = self.index.get(name)
        if entry is None:
            return Response(404)
        if request.method == "GET":
            return Response(200, self._describe(entry))
        if request.method != "POST":
            return Response(405, None, [("Allow", "GET, POST")])
        try:
            invocation = json.loads(request.body.decode("utf-8")) if request.body.strip() else None
        except (UnicodeDecodeError, ValueError):
            invocation = None
        if not isinstance(invocation, dict):
            return Response(400, 'expected a JSON body {"input": "..."}')
        raw_input = invocation.get("input")
        text = raw_input if isinstance(raw_input, str) else ("" if raw_input is None else json.dumps(raw_input))
        assert self._invoker is not None
        invoker = self._invoker
        metadata: Metadata = {}
        if entry.trigger_type == index.TIMER_TRIGGER:
            datum = admin_timer_datum(entry, self._status_store)
        elif entry.trigger_type == index.QUEUE_TRIGGER:
            now = dt.datetime.now(dt.UTC)
            datum, metadata = queue_datum(
                text.encode("utf-8"),
                message_id=str(uuid.uuid4()),
                dequeue_count=0,
                insertion_time=now,
                expiration_time=None,
                next_visible_time=None,
                pop_receipt=None,
            )
        elif entry.trigger_type == index.EVENT_GRID_TRIGGER:
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                return Response(400, "input must be one event as JSON text")
            datum = event_datum(event)
        else:
            return Response(400, "HTTP-triggered functions are invoked at their route")
        threading.Thread(
            target=invoker.invoke,
            args=(entry, datum, metadata),
            kwargs={"reason": "This function was programmatically called via the host APIs."},
            name=f"admin-{entry.name}",
            daemon=True,
        ).start()
        return Response(202)

    def _http_trigger(self, request: Request, path: str) -> Response:
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        if prefix:
            if not (path.lower() == prefix.lower() or path.lower().startswith(prefix.lower() + "/")):
                return Response(404)
            relative = path[len(prefix) :]
        else:
            relative = path
        for entry in self._http_routes:
            assert entry.http is not None
            params = entry.http.template.match(relative)
            if params is None:
                continue
            if entry.http.methods is not None and request.method.upper() not in entry.http.methods:
                continue
            if not self.keys.authorized(entry.http.auth_level, request):
                return Response(401)
            assert self._invoker is not None
            datum = http_datum(
                method=request.method.upper(),
                url=request.url,
                headers=request.header_map(),
                query=request.query,
                route_params=params,
                body=request.body,
            )
            result = self._invoker.invoke(entry, datum, {}, reason=f"HTTP {request.method.upper()} {path}")
            if not result.succeeded:
                return Response(500)
            try:
                status, headers, body = http_response(result.http_return)
            except Exception:
                log.exception("function %s returned a response that cannot be sent", entry.name)
                return Response(500)
            return Response(status, body, headers)
        return Response(404)

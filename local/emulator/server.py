"""The emulator's HTTPS server: TLS, dispatch, journal, faults, latency and the control API.

Rules:
- Every request outside the control API is, in this order: journaled, delayed by the
  configured latency, checked against the faults, counted by ARM's throttling (an ARM request
  over its bucket is answered 429; every ARM answer carries the rate-limit headers), then offered to each service's ``handle``
  in turn (identity, authorization, storage, ML, then Key Vault, Monitor and sinks when their modules exist);
  nobody answering is a 404 with an ARM error body. A service that raises gives a 500 with an
  ARM error body: the server never dies on bad input.
- Journal entries: ``{"seq", "time", "method", "path", "query", "api_version", "service",
  "body", "status"}``; ``body`` is the request body parsed as JSON (its text when it is not
  JSON, null when empty), kept as sent unless the service's module defines
  ``journal_body(method, path, body)`` (Key Vault does, to keep secret values out); no header
  is stored, so no Authorization either. A dropped connection is journaled with
  ``"status": null``.
- The control API (``/_emulator/...``, JSON, no auth) is neither journaled, delayed nor
  faulted: a broad fault must never lock the tests out of their own emulator.
- One lock guards all service state; latency and fault delays are served outside it, so
  concurrent requests overlap as they would against Azure.

Control API:
  GET    health                      {"status": "ok", "services": [...]}
  POST   reset                       body: a scenario, or empty for an empty state; clears
                                     journal, faults, latency and LRO settings
  GET    state                       {service name: its state()}
  GET    journal?since=SEQ           [entries with seq > SEQ]
  DELETE journal
  POST   faults                      {"method": "POST"|"*", "path": regex searched in the path,
                                      "times": 1, "status": 500, "headers": {}, "body": {...}
                                      (default: ARM error for the status), "delay_ms": 0,
                                      "drop": false}  -> the fault with its "id";
                                     without "status" (and not dropping) a fault only delays
  GET    faults                      [faults with "remaining"]
  DELETE faults
  POST   latency                     {"ms": N}
  POST   lro                         {"polls": N, "seconds": S, "retryAfter": R}
  POST   lro-fail                    {"path": regex, "times": N}
  POST   arm/computes                {"workspace": "<workspace id>", "compute": {scenario form}}
  POST   arm/jobs                    {"workspace": "<workspace id>", "job": {scenario form}}
  POST   arm/jobs:bulk               {"workspace": "<workspace id>", "count": N, "computes": [names],
                                      "activeEvery": K, "activeStatus": "Running", "since": "now-365d",
                                      "prefix": "job"}: N jobs in one call (MLService.seed_jobs)
  POST   paging                      {"pageSize": N}: ARM lists' page size (0: one page; a reset
                                     restores the scenario's "paging", default 100)
  DELETE arm/computes?id=<compute id>
  GET    throttle                    {"enabled", "reads": [burst, refill/s], "writes", "deletes", "throttled": {kind: 429s}}
  POST   throttle                    {"enabled": bool, "reads": [burst, refill/s], ...}: ARM's throttling
                                     (throttle.py), on with Azure's published sizes after every reset
  POST   permissions                 {"deny": ["<action>", ...]}: the caller loses those actions at every
                                     scope of ARM's permissions API (see authorization.py); a reset
                                     grants everything again
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import json
import re
import secrets
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.emulator import arm_endpoints, arm_ml, arm_storage, authorization, certs, identity, lro, paging, throttle, wire
from local.emulator.identity import TOKEN_PATH
from local.httpwire import Request, Response, WireServer

JournalRedaction = Callable[[str, str, Any], Any]  # (method, path, body as sent) -> body to journal

CONTROL_PREFIX = "/_emulator/"
OPTIONAL_SERVICES = ("keyvault", "monitor", "sinks", "prices", "resourcegraph", "runhistory")  # modules whose SERVICE joins the dispatch when present
IDLE_TIMEOUT_S = 30  # an idle keep-alive connection is closed after this, freeing its thread

_DEFAULT_ERROR_CODES = {
    400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "NotFound",
    408: "RequestTimeout", 409: "Conflict", 412: "PreconditionFailed", 429: "TooManyRequests",
    500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}


def _journal_service(path: str) -> str:
    """Which service a path belongs to, decided before any handler runs (faults need it too)."""
    lowered = path.lower()
    if lowered.startswith("/msi/"):
        return "identity"
    if lowered.startswith("/keyvault/"):
        return "keyvault"
    if lowered.startswith("/_sinks/"):
        return "sinks"
    if lowered.startswith("/api/retail/prices"):
        return "prices"
    if lowered.startswith("/history/") or lowered.rstrip("/") == "/discovery":
        return "runhistory"
    if "metrics:getbatch" in lowered or lowered.startswith("/v1/workspaces/") or "/providers/microsoft.insights/" in lowered:
        return "monitor"
    return "arm"


@dataclass
class Fault:
    """An injected failure for the next `remaining` requests that match."""

    id: int
    method: str
    path: str
    regex: re.Pattern[str]
    times: int
    remaining: int
    status: int | None  # None: the fault only delays (or drops); the request is then served normally
    headers: dict[str, str]
    body: Any
    delay_ms: int
    drop: bool

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "path": self.path, "times": self.times,
            "remaining": self.remaining, "status": self.status, "headers": self.headers,
            "body": self.body, "delay_ms": self.delay_ms, "drop": self.drop,
        }


class Emulator:
    """Everything the server serves, independent of sockets.

    Services are the modules' ``SERVICE`` singletons (the protocol every service module
    follows, and how Key Vault finds the storage keys it seeds from), so a process holds one
    emulator's state: start one emulator per process.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.identity = identity.SERVICE
        self.storage = arm_storage.SERVICE
        self.ml = arm_ml.SERVICE
        self.operations = self.ml.operations
        self.authorization = authorization.SERVICE
        self.throttle = throttle.SERVICE
        # (state key, journal name, service, journal redaction). Storage seeds before ML and the
        # optional services: account-key datastores and Key Vault secrets take storage keys as
        # they are at seeding time.
        self.services: list[tuple[str, str, Any, JournalRedaction | None]] = [
            ("identity", "identity", self.identity, None),
            # Before the providers: a permissions path at a resource's scope holds that resource's path.
            ("authorization", "arm", self.authorization, None),
            ("storage", "arm", self.storage, None),
            ("endpoints", "arm", arm_endpoints.SERVICE, None),  # before ML, which answers 404 for any route it lacks
            ("ml", "arm", self.ml, None),
        ]
        for module_name in OPTIONAL_SERVICES:
            qualified = f"local.emulator.{module_name}"
            # Absent module: that service is simply not offered. A present module that fails to
            # import is a bug worth seeing, so its error propagates.
            if importlib.util.find_spec(qualified) is None:
                continue
            module = importlib.import_module(qualified)
            # A module may ask for its request bodies to be redacted in the journal (Key Vault
            # does, so secret values never land there); bodies are otherwise kept as sent.
            self.services.append((module_name, module_name, module.SERVICE, getattr(module, "journal_body", None)))
        self.journal: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.latency_ms = 0
        self._seq = 0
        self._fault_ids = 0

    # --- state ------------------------------------------------------------------------------

    def reset(self, scenario: dict[str, Any] | None) -> None:
        """Re-seed every service from `scenario` (None: empty) with now = current UTC time."""
        with self.lock:
            now = lro.utcnow()
            self.operations.reset()
            for _, _, service, _ in self.services:
                service.seed(scenario or {}, now)
            self.journal.clear()
            self.faults.clear()
            self.latency_ms = 0
            self.throttle.reset()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {key: service.state() for key, _, service, _ in self.services}

    # --- request pipeline -------------------------------------------------------------------

    def record(self, req: Request) -> dict[str, Any]:
        body: Any = None
        if req.body:
            text = req.body.decode("utf-8", errors="replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        service = _journal_service(req.path)
        for _, journal_name, _, redact in self.services:
            if redact is not None and journal_name == service:
                body = redact(req.method, req.path, body)
        with self.lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": wire.iso(lro.utcnow()),
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "api_version": req.arg("api-version"),
                "service": service,
                "body": body,
                "status": None,
            }
            self.journal.append(entry)
            return entry

    def _take_fault(self, req: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.method in ("*", req.method) and fault.regex.search(req.path):
                    fault.remaining -= 1
                    return fault
        return None

    def answer(self, req: Request) -> Response | None:
        """The answer to one request, control API or not; None drops the connection."""
        resp = self.control(req) if req.path.startswith(CONTROL_PREFIX) else self.serve(req)
        if resp is not None:
            request_id = resp.header("x-ms-request-id") or secrets.token_hex(16)
            for name in ("x-ms-request-id", "x-ms-correlation-request-id"):
                if resp.header(name) is None:
                    resp.headers.append((name, request_id))
        return resp

    def serve(self, req: Request) -> Response | None:
        """The answer to one non-control request (see module rules)."""
        entry = self.record(req)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        fault = self._take_fault(req)
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.drop:
                return None
        limited, rate_headers = self._throttle(req)
        if fault is not None and fault.status is not None:
            resp = Response(fault.status, copy_json(fault.body), dict(fault.headers))
        else:
            resp = limited or self.dispatch(req)
        resp.headers.extend(rate_headers.items())
        with self.lock:
            entry["status"] = resp.status
        return resp

    def _throttle(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        """ARM's throttling (throttle.py): only ARM requests count."""
        if _journal_service(req.path) != "arm":
            return None, {}
        with self.lock:
            return self.throttle.take(req)

    def dispatch(self, req: Request) -> Response:
        with self.lock:
            for _, _, service, _ in self.services:
                try:
                    resp = service.handle(req)
                except Exception as exc:  # any service bug becomes a 500, never a dead server
                    traceback.print_exc(file=sys.stderr)
                    return wire.arm_error(500, "InternalServerError", f"Emulator error: {type(exc).__name__}: {exc}")
                if resp is not None:
                    return resp
        return wire.arm_error(404, "NotFound", f"The emulator has no route for {req.method} {req.path}.")

    # --- control API ------------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        route = req.path[len(CONTROL_PREFIX):].strip("/")
        try:
            body = req.json()
        except ValueError:
            return wire.arm_error(400, "InvalidRequestContent", "The control API takes JSON bodies.")
        try:
            return self._control(req.method, route, req, body)
        except (AttributeError, KeyError, TypeError, ValueError, re.error) as exc:
            return wire.arm_error(400, "BadRequest", f"Invalid control request: {type(exc).__name__}: {exc}")

    def _control(self, method: str, route: str, req: Request, body: Any) -> Response:
        if (method, route) == ("GET", "health"):
            return Response(200, {"status": "ok", "services": [key for key, _, _, _ in self.services]})
        if (method, route) == ("POST", "reset"):
            if body is not None and not isinstance(body, dict):
                raise TypeError("the scenario must be a JSON object")
            self.reset(body or None)
            return Response(200, {"status": "reset"})
        if (method, route) == ("GET", "state"):
            return Response(200, self.state())
        if route == "journal":
            with self.lock:
                if method == "DELETE":
                    self.journal.clear()
                    return Response(200, {"status": "cleared"})
                if method == "GET":
                    since = int(req.arg("since") or 0)
                    return Response(200, [dict(e) for e in self.journal if e["seq"] > since])
        if route == "faults":
            with self.lock:
                if method == "POST":
                    return Response(201, self._add_fault(body or {}).view())
                if method == "GET":
                    return Response(200, [f.view() for f in self.faults])
                if method == "DELETE":
                    self.faults.clear()
                    return Response(200, {"status": "cleared"})
        if (method, route) == ("POST", "latency"):
            self.latency_ms = max(0, int((body or {}).get("ms", 0)))
            return Response(200, {"ms": self.latency_ms})
        if (method, route) == ("POST", "lro"):
            with self.lock:
                spec = body or {}
                self.operations.configure(spec.get("polls"), spec.get("seconds"), spec.get("retryAfter"))
                return Response(200, self.operations.config())
        if (method, route) == ("POST", "lro-fail"):
            with self.lock:
                self.operations.fail_next(str(body["path"]), int(body.get("times", 1)))
                return Response(200, self.operations.config())
        if (method, route) == ("POST", "arm/computes"):
            with self.lock:
                return Response(200, self.ml.upsert_compute(str(body["workspace"]), dict(body["compute"])))
        if (method, route) == ("POST", "arm/jobs"):
            with self.lock:
                return Response(200, self.ml.upsert_job(str(body["workspace"]), dict(body["job"])))
        if (method, route) == ("POST", "arm/jobs:bulk"):
            with self.lock:
                return Response(200, self.ml.seed_jobs(str(body["workspace"]), dict(body)))
        if (method, route) == ("POST", "paging"):
            with self.lock:
                self.ml.page_size = max(0, int((body or {}).get("pageSize", paging.DEFAULT_PAGE_SIZE)))
                return Response(200, {"pageSize": self.ml.page_size})
        if (method, route) == ("DELETE", "arm/computes"):
            with self.lock:
                deleted = self.ml.delete_compute(str(req.arg("id") or ""))
            return Response(200 if deleted else 404, {"deleted": deleted})
        if route == "throttle" and method in ("GET", "POST"):
            with self.lock:
                return Response(200, self.throttle.configure(body or {}) if method == "POST" else self.throttle.state())
        if (method, route) == ("POST", "permissions"):
            with self.lock:
                return Response(200, self.authorization.deny(list((body or {}).get("deny") or [])))
        return wire.arm_error(404, "NotFound", f"No control route {method} {CONTROL_PREFIX}{route}.")

    def _add_fault(self, spec: dict[str, Any]) -> Fault:
        status = None if spec.get("status") is None else int(spec["status"])
        body = spec.get("body")
        if body is None and status is not None:
            code = _DEFAULT_ERROR_CODES.get(status, "Error")
            body = {"error": {"code": code, "message": f"Injected fault: {status} {http.client.responses.get(status, '')}".strip()}}
        self._fault_ids += 1
        times = max(1, int(spec.get("times", 1)))
        pattern = str(spec.get("path", ".*"))
        fault = Fault(
            id=self._fault_ids,
            method=str(spec.get("method", "*")).upper(),
            path=pattern,
            regex=re.compile(pattern),
            times=times,
            remaining=times,
            status=status,
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            body=body,
            delay_ms=max(0, int(spec.get("delay_ms", 0))),
            drop=bool(spec.get("drop", False)),
        )
        self.faults.append(fault)
        return fault


def _unreadable(status: int, message: str) -> Response:
    return wire.arm_error(status, _DEFAULT_ERROR_CODES.get(status, "BadRequest"), f"The request body could not be read: {message}.")


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (fault bodies are served many times)."""
    return json.loads(json.dumps(value)) if value is not None else None


@dataclass
class EmulatorHandle:
    """A running emulator: where it is, what clients need to trust and present, how to stop it."""

    url: str
    ca: str
    identity_header: str
    state_dir: Path
    app: Emulator
    _server: WireServer

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    def announcement(self) -> dict[str, str]:
        """The JSON line `python -m local.emulator` prints when ready."""
        return {"url": self.url, "ca": self.ca, "identity_endpoint": self.identity_endpoint, "identity_header": self.identity_header}

    def stop(self) -> None:
        self._server.stop()


def load_scenario(scenario: dict[str, Any] | str | Path | None) -> dict[str, Any] | None:
    if scenario is None or isinstance(scenario, dict):
        return scenario
    loaded = json.loads(Path(scenario).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"scenario {scenario} is not a JSON object")
    return loaded


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | Path = ".local-run/emulator",
    scenario: dict[str, Any] | str | Path | None = None,
) -> EmulatorHandle:
    """Generate TLS material in `state_dir`, seed `scenario`, serve HTTPS on a background thread."""
    directory = Path(state_dir)
    files = certs.generate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    app = Emulator()
    app.reset(load_scenario(scenario))
    server = WireServer((host, port), app.answer, name="aml-autopilot-emulator", tls=context, idle_timeout=IDLE_TIMEOUT_S,
                        refuse=_unreadable)
    server.start()
    return EmulatorHandle(
        url=server.url,
        ca=str(files.ca),
        identity_header=app.identity.secret,
        state_dir=directory,
        app=app,
        _server=server,
    )

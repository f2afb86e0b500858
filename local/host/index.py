"""Import the app once and index its functions, as the Python worker and the host do.

Rules:
- The script is `function_app.py` (or `PYTHON_SCRIPT_FILE_NAME`) in the project directory,
  imported once as a top-level module with the project directory first on `sys.path`, as the
  worker does, so the app's own packages import unchanged.
- The app object is the single module-level instance of `azure.functions.FunctionRegister`
  (FunctionApp, AsgiFunctionApp, ...); none or several is an error, as in the worker.
- `get_functions()` is called exactly once: a second call fails on "duplicate" names.
- Worker-side checks fail the whole app (the worker fails indexing): every binding has a
  parameter of the same name and vice versa (`context` excepted), output parameters are
  `func.Out[T]`, and annotations are ones the binding's converter accepts — or `str` / `bytes`, which
  take the worker's generic binding (the data as sent, no converter).
- Host-side checks put only that function in error (the host keeps the others running):
  trigger and binding types this host does not serve, `%SETTING%` tokens that do not resolve,
  invalid queue names or schedules, missing connection strings. A function in error cannot be
  invoked (404) and is listed in the ready line.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta

from local.host import settings as cfg
from local.host.routes import RouteError, RouteTemplate, compile_route
from local.host.timers import Schedule, ScheduleError

HTTP_TRIGGER = "httpTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, EVENT_GRID_TRIGGER, TIMER_TRIGGER, QUEUE_TRIGGER)
RETURN = "$return"


class AppLoadError(RuntimeError):
    """The app cannot be imported or indexed at all; the message says why."""


@dataclass(frozen=True)
class Binding:
    """One binding as the host sees it in the function's metadata."""

    name: str
    type: str
    direction: str  # "IN" or "OUT"
    props: Mapping[str, Any]


@dataclass(frozen=True)
class QueueTarget:
    """A resolved queue: its name and the connection string of its storage account."""

    queue_name: str
    connection: str


@dataclass(frozen=True)
class HttpRoute:
    """A resolved HTTP trigger."""

    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: str  # "anonymous" | "function" | "admin"


@dataclass(frozen=True)
class TimerSpec:
    """A resolved timer trigger."""

    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool


@dataclass
class FunctionEntry:
    """An indexed function: its callable, trigger and outputs, resolved against the settings."""

    name: str
    func: Callable[..., Any]
    trigger: Binding
    outputs: dict[str, Binding] = field(default_factory=dict)  # parameter name -> binding
    out_types: dict[str, type | None] = field(default_factory=dict)
    return_binding: Binding | None = None
    return_type: type | None = None
    is_async: bool = False
    wants_context: bool = False
    directory: str = ""
    http: HttpRoute | None = None
    queue: QueueTarget | None = None
    timer: TimerSpec | None = None
    queue_outputs: dict[str, QueueTarget] = field(default_factory=dict)  # binding name (or $return) -> queue
    generic_trigger: bool = False  # the trigger parameter is `str` or `bytes`: it gets the raw data, no converter

    @property
    def trigger_type(self) -> str:
        return self.trigger.type


@dataclass
class FunctionIndex:
    """The functions the host serves, and those in error."""

    functions: dict[str, FunctionEntry] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> FunctionEntry | None:
        """Exact name first, then case-insensitively, as function names are in the host."""
        if name in self.functions:
            return self.functions[name]
        lowered = name.lower()
        for key, entry in self.functions.items():
            if key.lower() == lowered:
                return entry
        return None

    def of_type(self, trigger_type: str) -> list[FunctionEntry]:
        return [f for f in self.functions.values() if f.trigger_type == trigger_type]


def load_app(project: Path, environ: Mapping[str, str]) -> func.FunctionRegister:
    """Import the app script once and return its FunctionRegister instance."""
    script = environ.get("PYTHON_SCRIPT_FILE_NAME") or "function_app.py"
    path = project / script
    if not path.is_file():
        raise AppLoadError(f"{path} does not exist")
    module_name = path.stem
    root = str(project.resolve())
    # The worker puts the script root first on sys.path so the app's own packages import.
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise AppLoadError(f"{path} defines no module-level FunctionApp instance")
    if len(apps) > 1:
        raise AppLoadError(f"{path} defines more than one module-level FunctionApp instance")
    return apps[0]


def build_index(app: func.FunctionRegister, environ: Mapping[str, str], directory: Path) -> FunctionIndex:
    """Index the app's functions; call once per app (get_functions() cannot be repeated)."""
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise AppLoadError(f"indexing the app failed: {exc}") from exc
    index = FunctionIndex()
    for function in functions:
        name = function.get_function_name() or function.get_user_function().__name__
        entry = _worker_entry(name, function, directory)
        try:
            _resolve(entry, environ)
        except (cfg.SettingsError, RouteError, ScheduleError, ValueError) as exc:
            index.errors[name] = str(exc)
            continue
        index.functions[name] = entry
    return index


def _bindings(function: func.Function) -> list[Binding]:
    doc = json.loads(function.get_function_json())
    result = []
    for raw in doc.get("bindings", []):
        props = {k: v for k, v in raw.items() if k not in ("name", "type", "direction")}
        result.append(Binding(str(raw["name"]), str(raw["type"]), str(raw.get("direction", "IN")).upper(), props))
    return result


def _out_inner(annotation: Any) -> tuple[bool, Any]:
    """(is func.Out[...], the T of Out[T])."""
    origin = typing.get_origin(annotation)
    if origin is not None and isinstance(origin, type) and issubclass(origin, func.Out):
        args = typing.get_args(annotation)
        return True, args[0] if args else None
    if isinstance(annotation, type) and issubclass(annotation, func.Out):
        return True, None
    return False, None


def _check_annotation(name: str, binding: Binding, annotation: Any, direction: str) -> None:
    """The converter's own check that `annotation` suits the binding; `direction` is "input" or "output"."""
    converter = meta.get_binding_registry().get(binding.type)
    if annotation is None or annotation is inspect.Parameter.empty or converter is None:
        return
    checker = getattr(converter, f"check_{direction}_type_annotation", None)
    if checker is None:
        return
    try:
        ok = bool(checker(annotation))
    except TypeError:
        ok = False
    if not ok:
        shown = getattr(annotation, "__name__", repr(annotation))
        raise AppLoadError(
            f"function {name}: type of {binding.name} binding {binding.type!r} does not match its Python annotation {shown!r}"
        )


def _worker_entry(name: str, function: func.Function, directory: Path) -> FunctionEntry:
    user = function.get_user_function()
    signature = inspect.signature(user)
    params = dict(signature.parameters)
    bindings = _bindings(function)
    trigger = next((b for b in bindings if b.type.endswith("Trigger") and b.direction == "IN"), None)
    if trigger is None:
        raise AppLoadError(f"function {name} has no trigger binding")
    wants_context = "context" in params and not any(b.name == "context" for b in bindings)
    if wants_context:
        params.pop("context")
    bound = {b.name for b in bindings if b.name != RETURN}
    missing_in_python = sorted(bound - set(params))
    missing_in_bindings = sorted(set(params) - bound)
    if missing_in_python:
        raise AppLoadError(f"function {name}: bindings without a Python parameter: {', '.join(missing_in_python)}")
    if missing_in_bindings:
        raise AppLoadError(f"function {name}: Python parameters without a binding: {', '.join(missing_in_bindings)}")

    try:
        hints = typing.get_type_hints(user)
    except Exception:
        # Unresolvable forward references: fall back to the raw annotations, as checks are best effort.
        hints = {p.name: p.annotation for p in signature.parameters.values()}
        hints["return"] = signature.return_annotation
    entry = FunctionEntry(
        name=name,
        func=user,
        trigger=trigger,
        is_async=inspect.iscoroutinefunction(user),
        wants_context=wants_context,
        directory=str(directory),
    )
    for binding in bindings:
        if binding.name == RETURN:
            entry.return_binding = binding
            annotation = hints.get("return", inspect.Parameter.empty)
            if annotation not in (inspect.Parameter.empty, None, type(None)):
                entry.return_type = annotation
                _check_annotation(name, binding, annotation, "output")
            continue
        annotation = hints.get(binding.name, params[binding.name].annotation)
        is_out, inner = _out_inner(annotation)
        if binding.direction == "OUT":
            if not is_out:
                raise AppLoadError(f"function {name}: output binding {binding.name!r} must be annotated func.Out[T]")
            entry.outputs[binding.name] = binding
            entry.out_types[binding.name] = inner
            _check_annotation(name, binding, inner, "output")
        else:
            if is_out:
                raise AppLoadError(f"function {name}: input binding {binding.name!r} cannot be func.Out")
            if annotation in (str, bytes):
                # The Python worker's rule: a `str` or `bytes` parameter takes the generic binding (the data as the
                # host sent it), whatever the binding type's own converter would accept.
                entry.generic_trigger = entry.generic_trigger or binding is trigger
                continue
            _check_annotation(name, binding, annotation, "input")
    if entry.return_binding is None and hints.get("return") not in (None, type(None), inspect.Parameter.empty):
        raise AppLoadError(f"function {name}: return annotation must be None when there is no $return binding")
    return entry


def _resolve(entry: FunctionEntry, environ: Mapping[str, str]) -> None:
    """Host-side binding resolution; raises for a function the host must put in error."""
    trigger = entry.trigger
    if trigger.type not in SUPPORTED_TRIGGERS:
        raise ValueError(f"trigger type {trigger.type!r} is not served by this dev host")
    if trigger.type == HTTP_TRIGGER:
        route = str(trigger.props.get("route") or entry.name)
        methods = trigger.props.get("methods")
        level = str(trigger.props.get("authLevel") or "function").lower()
        if level not in ("anonymous", "function", "admin"):
            raise ValueError(f"unknown authLevel {level!r}")
        entry.http = HttpRoute(
            compile_route(cfg.resolve_tokens(route, environ)),
            frozenset(str(m).upper() for m in methods) if methods else None,
            level,
        )
    elif trigger.type == QUEUE_TRIGGER:
        entry.queue = _queue_target(trigger, environ)
    elif trigger.type == TIMER_TRIGGER:
        schedule = Schedule.parse(cfg.resolve_tokens(str(trigger.props.get("schedule") or ""), environ))
        use_monitor = trigger.props.get("useMonitor")
        entry.timer = TimerSpec(
            schedule=schedule,
            run_on_startup=bool(trigger.props.get("runOnStartup")),
            # Unset means monitored; sub-minute schedules are never monitored (the extension
            # turns persistence off for them even when asked).
            use_monitor=(True if use_monitor is None else bool(use_monitor)) and not schedule.is_sub_minute(),
        )
    for binding in [*entry.outputs.values(), *([entry.return_binding] if entry.return_binding else [])]:
        if binding.type == "queue":
            entry.queue_outputs[binding.name] = _queue_target(binding, environ)
        elif binding.type == "http" and binding.name == RETURN and trigger.type == HTTP_TRIGGER:
            continue
        else:
            raise ValueError(f"output binding {binding.name!r} of type {binding.type!r} is not served by this dev host")


def _queue_target(binding: Binding, environ: Mapping[str, str]) -> QueueTarget:
    raw_name = str(binding.props.get("queueName") or "")
    name = cfg.resolve_tokens(raw_name, environ)
    if "{" in name:
        raise ValueError(f"queue name {raw_name!r}: binding expressions are not supported by this dev host")
    return QueueTarget(cfg.normalize_queue_name(name), cfg.resolve_connection(binding.props.get("connection"), environ))


def python_threadpool_size(environ: Mapping[str, str]) -> int:
    """The worker's sync-function thread pool size: PYTHON_THREADPOOL_THREAD_COUNT, else min(32, cpus + 4)."""
    configured = environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return min(32, (os.cpu_count() or 1) + 4)

"""Properties of the intake, over generated payloads: any input is accepted, ignored or rejected —
never an exception — and nothing accepted can make the worker write outside the allow-list.

Inputs: the sample payloads with any part replaced by anything (hostile names, huge or deeply
nested values, lone surrogates, wrong types), arbitrary JSON, batches, and raw bytes. Each accepted
event goes through the queue's re-authentication and then the real engine on in-memory ports, in
enforce mode, over a workspace that holds every compute the samples name.

`make test` runs a modest number of examples; `make fuzz` (the `fuzz` profile) runs over 10,000 and
prints how many payloads were tried and how many crashed.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from local.memory import MemoryLedger, MemoryMetrics, MemoryNotifier, MemoryWorkspace
from shared import payload
from shared.engine import Engine
from shared.errors import TransientFailure
from shared.events import ACTIONABLE, Allowed, Ignored, Rejected, parse_any
from shared.intake import accept_alert, accept_alert_body, accept_event, accept_event_text
from shared.model import ResourceId
from shared.ondemand import RequestError, rotation_request
from shared.settings import Settings
from shared.work import BadWorkItem, Kind, WorkItem
from tests.unit.builders import NOW, cluster, instance

PAYLOADS = Path(__file__).parent.parent / "payloads"
SAMPLES = [json.loads(p.read_text()) for p in sorted(PAYLOADS.glob("*.json"))]
EVENTS = [e for doc in SAMPLES for e in (doc if isinstance(doc, list) else [doc]) if "schemaId" not in e]
ALERTS = [doc for doc in SAMPLES if isinstance(doc, dict) and "schemaId" in doc]
SETTINGS = Settings.from_env({
    "ALLOWED_WORKSPACES": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                          "Microsoft.MachineLearningServices/workspaces/mlw-demo",
    "ALLOWED_VAULTS": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                      "Microsoft.KeyVault/vaults/kv-ml-demo",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true", "AUTOPILOT_MODE": "enforce",
})
ALLOWED = Allowed(SETTINGS.workspaces, SETTINGS.vaults)
(WS,) = SETTINGS.workspaces

HOSTILE = st.sampled_from([
    "../../mlw-prod/computes/gpu-cluster", "gpu-cluster?api-version=2020-01-01&x=", "..", ".", "", " ", "%2e%2e",
    "\ud800", "x" * 70_000, "CPU-CLUSTER", "cpu-cluster", "Failed", "FAILED", "Fired", "Resolved", WS.id, WS.id.upper(),
    "/subscriptions/ffffffff-0000-0000-0000-00000000dead/resourceGroups/x/providers/Microsoft.MachineLearningServices/workspaces/x",
    "Microsoft.MachineLearningServices.RunStatusChanged", "Microsoft.KeyVault.SecretNearExpiry",
    "Microsoft.EventGrid.SubscriptionValidationEvent", "azureMonitorCommonAlertSchema", "1e18", "NaN",
])
LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40) | HOSTILE
JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | HOSTILE, inner, max_size=4),
                    max_leaves=8)


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


ANYTHING = JSON | st.integers(40, 400).map(_deep)  # past the depth bound; the byte strategy goes to 100,000


def _paths(doc: Any, max_depth: int = 8) -> Iterator[tuple[Any, ...]]:
    """Every part's path, shallow ones only (a deep value already put in is replaced whole, not walked)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        yield path
        if len(path) < max_depth:
            children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
            stack.extend((child, (*path, key)) for key, child in children)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, samples: list[Any]) -> Any:
    """A sample payload with one to four of its parts (a value, an object, a list, the whole) replaced."""
    doc = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(doc))))
        doc = _set(doc, path, draw(ANYTHING))
    return doc


def _dumps(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode("utf-8", "surrogatepass")
    except RecursionError:
        return b'{"a": ' * 5000 + b"1" + b"}" * 5000


TRIED: Counter[str] = Counter()
PROFILE = settings()  # the loaded profile's (tests/unit/conftest.py)


def fleet() -> MemoryWorkspace:
    """The allowed workspace with every compute the samples name, in states that invite a write."""
    return MemoryWorkspace(WS, [instance("ci-alice", op_ago=600), cluster("cpu-cluster", unusable=1, min_nodes=0, current=2),
                                cluster("gpu-cluster", unusable=1, min_nodes=1, current=1)])


def worker_acts_on(item: WorkItem) -> None:
    """The worker's path: the queue's re-authentication, then the real engine, writing only inside the allow-list."""
    back = WorkItem.from_json(item.to_json(), ALLOWED)
    assert back.target == item.target and back.params == item.params
    if back.kind is Kind.ROTATE:
        assert any(v.same_as(back.target) for v in SETTINGS.vaults)
        return
    ws = fleet()
    spaces = {WS.key: ws}

    def workspace(rid: ResourceId) -> MemoryWorkspace:
        return spaces[rid.key]  # a KeyError here would be a read outside the allow-list

    engine = Engine(SETTINGS, workspace, MemoryMetrics(), MemoryLedger(), MemoryNotifier())
    with contextlib.suppress(TransientFailure):
        engine.run(back, NOW)
    known = {c.name for c in fleet().computes}
    assert all(args[0] in known for _, args in ws.writes), ws.writes


def check(parsed_items: list[Any], intakes: list[Any]) -> None:
    for parsed in parsed_items:
        assert isinstance(parsed, (*ACTIONABLE, Ignored, Rejected))
        assert "\n" not in parsed.describe()
    for intake in intakes:
        if intake.item is not None:
            worker_acts_on(intake.item)


@PROFILE
@given(mutated(EVENTS))
def test_any_event_is_accepted_ignored_or_rejected_and_never_steers_a_write(doc):
    TRIED["event"] += 1
    check(parse_any(doc, ALLOWED), [accept_event(doc, SETTINGS)])


@PROFILE
@given(st.lists(mutated(EVENTS), min_size=1, max_size=3))
def test_any_batch_is_accepted_ignored_or_rejected_event_by_event(batch):
    TRIED["batch"] += 1
    check(parse_any(batch, ALLOWED), [accept_event(e, SETTINGS) for e in batch])


@PROFILE
@given(mutated(ALERTS))
def test_any_alert_is_accepted_ignored_or_rejected_and_never_steers_a_write(doc):
    TRIED["alert"] += 1
    check(parse_any(doc, ALLOWED), [accept_alert(doc, SETTINGS)])


@PROFILE
@given(ANYTHING)
def test_any_json_document_at_all_is_accepted_ignored_or_rejected(doc):
    TRIED["json"] += 1
    check(parse_any(doc, ALLOWED), [accept_event(doc, SETTINGS), accept_alert(doc, SETTINGS)])


@PROFILE
@given(st.binary(max_size=2000) | mutated(ALERTS).map(_dumps) | st.integers(40, 100_000).map(lambda n: b"[" * n + b"]" * n))
def test_any_bytes_at_the_event_and_alert_doors_and_the_queue_are_refused_with_one_line(raw):
    TRIED["bytes"] += 1
    check([], [accept_alert_body(raw, SETTINGS), accept_event_text(raw, SETTINGS)])
    try:
        item = WorkItem.from_json(raw, ALLOWED)
    except BadWorkItem as exc:
        assert "\n" not in str(exc)
    else:
        worker_acts_on(item)


@PROFILE
@given(mutated([{"vault": "kv-ml-demo", "secret": "stmldemo-key", "dryRun": True}]))
def test_any_rotation_request_is_a_work_item_or_one_clear_error(doc):
    TRIED["rotate"] += 1
    try:
        item, _ = rotation_request(doc, SETTINGS, NOW)
    except RequestError as exc:
        assert "\n" not in str(exc)
    else:
        worker_acts_on(item)


@contextlib.contextmanager
def strict_parser_only() -> Iterator[None]:
    """Every document read by the strict parser alone, as before the parser in C (``payload._quick``)."""
    quick = payload._quick
    payload._quick = lambda raw: payload._DOUBT
    try:
        yield
    finally:
        payload._quick = quick


def _verdict(intake: Any) -> tuple[Any, ...]:
    return type(intake.parsed).__name__, intake.line(), intake.item, intake.queued


def _repeat_a_key(raw: bytes, at: int) -> bytes:
    """The document with the key of its `at`-th entry (counting colons) written twice, first with a stand-in value."""
    starts = [i for i, c in enumerate(raw) if c == ord(":")]
    if not starts:
        return raw
    colon = starts[at % len(starts)]
    quote = raw.rfind(b'"', 0, colon)
    opening = raw.rfind(b'"', 0, quote)
    return raw[:opening] + raw[opening:quote + 1] + b": 0, " + raw[opening:] if opening >= 0 else raw


@PROFILE
@given(st.one_of(mutated(EVENTS).map(_dumps), mutated(ALERTS).map(_dumps), st.binary(max_size=300),
                 st.tuples(mutated(EVENTS + ALERTS).map(_dumps), st.integers(0, 200)).map(lambda d: _repeat_a_key(*d))))
def test_the_parser_in_c_gives_every_door_the_strict_parsers_verdict(raw):
    TRIED["quick"] += 1
    doors = (accept_event_text, accept_alert_body)
    quick = [_verdict(door(raw, SETTINGS)) for door in doors]
    with strict_parser_only():
        strict = [_verdict(door(raw, SETTINGS)) for door in doors]
    assert quick == strict

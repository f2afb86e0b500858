"""What the intake does for speed gives the same values as the plain way: frozen values filled in one step,
case-insensitive look-ups through folded key spellings kept per key set, a date written without strftime,
record templates that a forked child does not inherit."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import events, intake
from shared.events import AlertFired, Envelope, Ignored, Rejected, RunEnded, RunNotResponding, SecretExpiring
from shared.intake import Intake
from shared.model import ResourceId, quick_init
from shared.work import Kind, WorkItem

WS = ResourceId.parse("/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w")
VAULT = ResourceId.parse("/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv")
ENV = Envelope("eventgrid", "1", "t", "s", "subject", "time")


def _plain(cls: type) -> type:
    """The same dataclass with the __init__ dataclasses writes."""
    return dataclasses.make_dataclass(cls.__name__, [(f.name, f.type, dataclasses.field(
        default=f.default, default_factory=f.default_factory, compare=f.compare)) for f in dataclasses.fields(cls)], frozen=True)


@pytest.mark.parametrize(("cls", "args", "kwargs"), [
    (Envelope, ("alert", "id", "type", "source", "subject", "time"), {}),
    (RunEnded, (ENV, WS, "run-1", "Failed", "exp"), {}),
    (RunNotResponding, (ENV, WS, "run-1"), {"experiment": "exp"}),
    (AlertFired, (ENV, WS, "rule", "unusable nodes", {"ClusterName": "c"}, 1.0), {}),
    (SecretExpiring, (ENV, VAULT, "s", "v", None), {}),
    (Ignored, ("why",), {}), (Ignored, ("why", ENV), {}),
    (Rejected, ("why",), {}), (Rejected, ("why",), {"security": True, "envelope": ENV}),
    (WorkItem, (Kind.QUOTA, "t", "k"), {}), (WorkItem, (Kind.QUOTA, "t", "k", {"value": 1.0}), {}),
    (Intake, (Ignored("why"), None), {}), (Intake, (Ignored("why"), None, "message"), {}),
])
def test_a_value_filled_in_one_step_equals_what_the_dataclass_init_makes(cls, args, kwargs):
    quick, plain = cls(*args, **kwargs), _plain(cls)(*args, **kwargs)
    assert vars(quick) == vars(plain) and list(vars(quick)) == list(vars(plain))
    assert repr(quick).split("(", 1)[1] == repr(plain).split("(", 1)[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.__setattr__(dataclasses.fields(cls)[0].name, None)
    assert quick == cls(*args, **kwargs)


def test_a_default_factory_still_makes_a_new_value_and_a_field_left_out_of_init_is_refused():
    assert WorkItem(Kind.QUOTA, "t", "k").params == {}
    assert WorkItem(Kind.QUOTA, "t", "k").params is not WorkItem(Kind.QUOTA, "t", "k").params
    with pytest.raises(TypeError, match="fills every field"):
        quick_init(dataclasses.make_dataclass("X", [("a", int, dataclasses.field(init=False, default=0))], frozen=True))


KEYS = st.text(max_size=4) | st.sampled_from(["runId", "RUNID", " runid ", "RunId", "runStatus", "runstatus\t", "x"])


@given(st.dictionaries(KEYS | st.integers(-2, 2) | st.booleans(), st.integers(), max_size=6),
       st.lists(KEYS, max_size=4))
def test_a_look_up_through_the_kept_spellings_finds_what_the_folded_mapping_holds(mapping, wanted):
    folded = events._folded(mapping)
    for key in [*folded, *(w.strip().lower() for w in wanted)]:
        assert mapping.get(events._spellings(mapping).get(key, events._ABSENT)) == folded.get(key)


def test_the_spellings_of_other_keys_are_not_taken_for_text_keys_that_compare_equal():
    assert events._spellings({"1": 0})["1"] == "1"
    assert events._spellings({1: 0}) == {"1": 1} and events._spellings({True: 0}) == {"true": True}


@pytest.mark.parametrize("seconds", [0, 1_700_000_000, 253_402_300_799, -30_000_000_000, -62_000_000_000])
def test_an_expiry_is_written_as_strftime_writes_it(seconds):
    expires = datetime.fromtimestamp(seconds, UTC)
    line = SecretExpiring(Envelope("eventgrid", "1", "Microsoft.KeyVault.SecretNearExpiry", "s", "x", "t"), VAULT, "s", "", expires).describe()
    assert f", expires {expires:%Y-%m-%d}:" in line


def test_a_forked_child_makes_its_own_record_templates():
    intake._record(20, "a template for this process")
    assert intake._TEMPLATES
    child = os.fork()
    if child == 0:  # the child: exit 0 only if it started without the parent's templates
        os._exit(0 if not intake._TEMPLATES and vars(intake._record(20, "x"))["process"] == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0

"""The host's rules that need no running stack: routes, schedules, settings, back-off, converters."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import azure.functions as func
import pytest

from local.host import bindings, settings
from local.host.auth import Keys
from local.host.index import Binding, FunctionEntry
from local.host.invoker import FunctionTimeoutError, Invoker
from local.host.queues import Backoff
from local.host.routes import compile_route
from local.host.storage import QueueStore, decode_message, encode_message
from local.host.timers import Schedule, ScheduleError, ScheduleStatus, check_past_due
from local.httpwire import Request

UTC = dt.UTC


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("hello/{name}", "hello/ada", {"name": "ada"}),
        ("hello/{name}", "HELLO/ada/", {"name": "ada"}),
        ("hello/{name}", "hello", None),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/x", None),
        ("files/{name}.{ext}", "files/report.csv", {"name": "report", "ext": "csv"}),
        ("docs/{page?}", "docs", {}),
        ("docs/{page=home}", "docs", {"page": "home"}),
        ("blob/{*path}", "blob/a/b/c", {"path": "a/b/c"}),
        ("hello/{name}", "hello/a%2Fb", {"name": "a/b"}),
    ],
)
def test_route_templates_match_like_aspnet(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected


def test_literal_routes_take_precedence_over_parameters() -> None:
    routes = sorted([compile_route("items/{id}"), compile_route("items/latest"), compile_route("items/{*rest}")], key=lambda r: r.precedence)
    assert [r.template for r in routes] == ["items/latest", "items/{id}", "items/{*rest}"]


def test_ncrontab_has_six_fields_seconds_first() -> None:
    schedule = Schedule.parse("*/5 * * * * *")
    assert schedule.next_after(dt.datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)) == dt.datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert schedule.is_sub_minute()
    with pytest.raises(ScheduleError):
        Schedule.parse("0 0 * * *")


def test_ncrontab_requires_both_day_of_month_and_day_of_week() -> None:
    friday_13th = Schedule.parse("0 0 0 13 * 5").next_after(dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert friday_13th == dt.datetime(2024, 9, 13, tzinfo=UTC)


def test_timespan_schedules_are_constant_periods() -> None:
    schedule = Schedule.parse("00:10:00")
    assert schedule.next_after(dt.datetime(2024, 1, 1, tzinfo=UTC)) == dt.datetime(2024, 1, 1, 0, 10, tzinfo=UTC)
    assert not schedule.is_sub_minute()


class MemoryStore:
    def __init__(self) -> None:
        self.saved: dict[str, ScheduleStatus] = {}

    def get(self, timer_name: str) -> ScheduleStatus | None:
        return self.saved.get(timer_name)

    def update(self, timer_name: str, status: ScheduleStatus) -> None:
        self.saved[timer_name] = status


def test_a_missed_occurrence_is_past_due_but_a_changed_schedule_is_rebased() -> None:
    daily = Schedule.parse("0 0 3 * * *")
    now = dt.datetime(2024, 1, 10, 12, tzinfo=UTC)
    last = dt.datetime(2024, 1, 8, 3, tzinfo=UTC)
    missed = ScheduleStatus(last, daily.next_after(last), last)
    assert check_past_due(daily, now, missed, MemoryStore(), "t")[0] is True
    changed = ScheduleStatus(last, dt.datetime(2024, 1, 9, 4, tzinfo=UTC), last)
    past_due, rebased = check_past_due(daily, now, changed, MemoryStore(), "t")
    assert past_due is False
    assert rebased.next == dt.datetime(2024, 1, 11, 3, tzinfo=UTC)
    store = MemoryStore()
    assert check_past_due(daily, now, None, store, "t")[0] is False
    assert store.saved["t"].next == dt.datetime(2024, 1, 11, 3, tzinfo=UTC)


def test_environment_wins_over_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "local.settings.sample.json").write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "N": 5}}))
    local = settings.load_local_settings(tmp_path)
    environ = {"A": "env"}
    applied, skipped = settings.apply_settings(local.values, environ)
    assert environ == {"A": "env", "B": "file", "N": "5"}
    assert (sorted(applied), skipped) == (["B", "N"], ["A"])


def test_local_settings_json_is_preferred_to_the_sample_and_encrypted_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "local.settings.sample.json").write_text(json.dumps({"Values": {"A": "sample"}}))
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"A": "real"}, "Host": {"LocalHttpPort": 7072}}))
    local = settings.load_local_settings(tmp_path)
    assert (local.values, local.http_port) == ({"A": "real"}, 7072)
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": True, "Values": {}}))
    with pytest.raises(settings.SettingsError, match="IsEncrypted"):
        settings.load_local_settings(tmp_path)


def test_setting_tokens_connections_and_queue_names_resolve_like_the_host() -> None:
    environ = {"Q": "Work-Items", "AzureWebJobsStorage": "cs-default", "Other": "cs-other", "AzureWebJobsOther": "cs-prefixed"}
    assert settings.resolve_tokens("%Q%-x", environ) == "Work-Items-x"
    with pytest.raises(settings.SettingsError, match="'%MISSING%' does not resolve"):
        settings.resolve_tokens("%MISSING%", environ)
    assert settings.resolve_connection("", environ) == "cs-default"
    assert settings.resolve_connection("AzureWebJobsStorage", environ) == "cs-default"
    assert settings.resolve_connection("Other", environ) == "cs-prefixed"
    with pytest.raises(settings.SettingsError, match="identity-based"):
        settings.resolve_connection("Ident", {"Ident__queueServiceUri": "https://x"})
    assert settings.normalize_queue_name("Work-Items") == "work-items"
    with pytest.raises(settings.SettingsError):
        settings.normalize_queue_name("bad--name")
    assert settings.poison_queue_name("work") == "work-poison"
    assert settings.poison_queue_name("work-poison") is None
    assert settings.poison_queue_name("x" * 60) is None


def test_host_json_queue_defaults_and_timespans(tmp_path: Path) -> None:
    assert settings.load_host_config(tmp_path) == settings.HostConfig()
    (tmp_path / "host.json").write_text(
        json.dumps({"functionTimeout": "00:05:00", "extensions": {"queues": {"maxPollingInterval": 2000, "visibilityTimeout": "00:00:30"}}})
    )
    config = settings.load_host_config(tmp_path)
    assert config.function_timeout == 300
    assert (config.queues.max_polling_interval, config.queues.visibility_timeout, config.queues.max_dequeue_count) == (2.0, 30.0, 5)
    assert settings.parse_timespan("1.02:03:04.5") == 93784.5


def test_backoff_grows_exponentially_to_the_maximum_and_resets_on_messages() -> None:
    backoff = Backoff(0.1, 1.0, random.Random(1))
    delays = [backoff.next_delay(False) for _ in range(8)]
    assert delays[0] == pytest.approx(0.1)
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 1.0
    assert backoff.next_delay(True) == pytest.approx(0.1)


def test_message_encoding_matches_the_extension() -> None:
    assert encode_message("hé", "base64") == "aMOp"
    assert decode_message(" aM\nOp ", "base64") == "hé".encode()
    with pytest.raises(ValueError):
        decode_message("not base64!", "base64")
    assert decode_message("plain", "none") == b"plain"


def test_the_library_converter_turns_a_cloudevent_into_func_cloudevent() -> None:
    cloud = {"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data": {"a": 1}, "traceparent": "00-x"}
    value = bindings.decode_trigger("eventGridTrigger", bindings.event_datum(cloud), {})
    assert isinstance(value, func.CloudEvent)
    assert (value.type, value.get_json(), value.extension_attrs) == ("T", {"a": 1}, {"traceparent": "00-x"})
    grid = {"id": "2", "eventType": "E", "subject": "s", "eventTime": "2024-01-01T00:00:00Z", "data": {}, "dataVersion": "1"}
    event = bindings.decode_trigger("eventGridTrigger", bindings.event_datum(grid), {})
    assert isinstance(event, func.EventGridEvent)
    assert event.event_type == "E"


def test_queue_and_timer_data_reach_the_converters_in_the_hosts_shape() -> None:
    inserted = dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    datum, metadata = bindings.queue_datum(
        b"hello",
        message_id="m1",
        dequeue_count=3,
        insertion_time=inserted,
        expiration_time=None,
        next_visible_time=None,
        pop_receipt="pr",
    )
    message = bindings.decode_trigger("queueTrigger", datum, metadata)
    assert (message.get_body(), message.id, message.dequeue_count, message.insertion_time, message.pop_receipt) == (
        b"hello",
        "m1",
        3,
        inserted,
        "pr",
    )
    timer = bindings.decode_trigger("timerTrigger", bindings.timer_datum(past_due=True, schedule_status=None), {})
    assert (timer.past_due, timer.schedule_status) == (True, {})


def test_outputs_encode_with_the_library_converters() -> None:
    assert bindings.queue_messages(bindings.encode_output("queue", ["a", "b"], None)) == ["a", "b"]
    assert bindings.queue_messages(bindings.encode_output("queue", "one", str)) == ["one"]
    response = func.HttpResponse("hi", status_code=201, headers={"X-A": "1"})
    status, headers, body = bindings.http_response(bindings.encode_output("http", response, func.HttpResponse))
    assert (status, body) == (201, b"hi")
    assert ("X-A", "1") in headers
    assert bindings.http_response(None) == (204, [], b"")


def _timer_entry(function: Callable[..., None]) -> FunctionEntry:
    return FunctionEntry(name="slow", func=function, trigger=Binding("timer", "timerTrigger", "IN", {}))


def test_an_invocation_past_function_timeout_fails_with_the_hosts_message() -> None:
    invoker = Invoker(QueueStore("base64"), timeout=0.2, threads=2)
    try:
        result = invoker.invoke(_timer_entry(lambda timer: time.sleep(1)), bindings.timer_datum(past_due=False, schedule_status=None), {}, reason="test")
        assert not result.succeeded
        assert isinstance(result.error, FunctionTimeoutError)
        assert "Timeout value of 00:00:00 exceeded by function 'Functions.slow'" in str(result.error)
        ok = invoker.invoke(_timer_entry(lambda timer: None), bindings.timer_datum(past_due=False, schedule_status=None), {}, reason="test")
        assert ok.succeeded
    finally:
        invoker.shutdown()


def test_keys_follow_the_auth_levels() -> None:
    keys = Keys(master="m", function="f", eventgrid="e")

    def request(**query: str) -> Request:
        target = "/api/x" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        return Request("GET", target, [])

    assert keys.authorized("anonymous", request())
    assert keys.authorized("function", request(code="f"))
    assert keys.authorized("function", Request("GET", "/api/x", [("X-Functions-Key", "m")]))
    assert not keys.authorized("admin", request(code="f"))
    assert keys.authorized("admin", request(code="m"))
    assert not keys.authorized("function", request(code="nope"))
    assert not keys.authorized("function", request(code="e"))
    assert keys.authorized("system", request(code="e"))
    assert keys.authorized("system", request(code="m"))
    assert not keys.authorized("system", request(code="f"))
    assert not keys.authorized("system", request())
    assert not keys.authorized("admin", request(code="e"))

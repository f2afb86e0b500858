"""Timer triggers: NCRONTAB schedules, schedule monitoring and past-due runs, as the timer extension does.

Rules:
- A schedule is an NCRONTAB expression of exactly six fields, seconds first
  (`{second} {minute} {hour} {day} {month} {day-of-week}`), or a TimeSpan ("hh:mm:ss", as
  `settings.parse_timespan` reads it) for a constant period. Day of month and day of week must BOTH match (NCrontab ANDs them, unlike
  Vixie cron). The next occurrence is strictly after the base time.
- Times are UTC, or the IANA zone named by `WEBSITE_TIME_ZONE` (as on Linux in Azure).
- Monitoring (`use_monitor`, default on) keeps a status blob `{"Last", "Next", "LastUpdated"}` at
  `azure-webjobs-hosts/timers/{hostId}/Host.Functions.{name}/status` in AzureWebJobsStorage.
  Schedules firing more than once a minute are never monitored, even when asked.
- At start, a monitored timer whose recorded `Next` is already past runs once immediately with
  `past_due=True` (a changed schedule is re-based first, so it is not reported past due).
  Otherwise `run_on_startup` runs it once immediately (not past due). Then it runs on schedule
  with `past_due=False`, whatever the lateness: lateness alone never sets past_due.
- After each run the status becomes Last = run time (or the scheduled time when the run started a
  little early), Next = next occurrence after it. A failing run never stops the schedule.
- The function receives ScheduleStatus only when the timer is monitored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions import meta
from croniter import CroniterError, croniter

from local.host.bindings import timer_datum
from local.host.settings import SettingsError, parse_timespan
from local.host.storage import client_options

if TYPE_CHECKING:
    from local.host.index import FunctionEntry
    from local.host.invoker import Invoker

log = logging.getLogger("local.host.timers")

HOSTS_CONTAINER = "azure-webjobs-hosts"
_DEFAULT_TIME = "0001-01-01T00:00:00"


class ScheduleError(ValueError):
    """An expression that is neither a valid NCRONTAB expression nor a TimeSpan."""


class Schedule:
    """A timer schedule: NCRONTAB with seconds, or a constant period."""

    def __init__(self, expression: str, cron: str | None, period: dt.timedelta | None) -> None:
        self.expression = expression
        self._cron = cron
        self._period = period

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = " ".join(expression.split())
        if len(text.split(" ")) == 6 and croniter.is_valid(text, second_at_beginning=True):
            return cls(text, text, None)
        with contextlib.suppress(SettingsError):
            period = dt.timedelta(seconds=parse_timespan(text))
            if period > dt.timedelta(0):
                return cls(text, None, period)
        raise ScheduleError(
            f"The schedule expression '{expression}' was not recognized as a valid cron expression or timespan string."
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after `moment` (an aware datetime, in the schedule's zone)."""
        if self._period is not None:
            return moment + self._period
        assert self._cron is not None
        base = moment.replace(microsecond=0)
        try:
            # day_or=False: NCrontab requires day-of-month AND day-of-week to match.
            result = croniter(self._cron, base, second_at_beginning=True, day_or=False).get_next(dt.datetime)
        except CroniterError as exc:
            raise ScheduleError(str(exc)) from exc
        return result  # type: ignore[no-any-return]

    def is_sub_minute(self, now: dt.datetime | None = None) -> bool:
        """True when the schedule fires more than once within a minute (such timers are not monitored)."""
        if self._period is not None:
            return self._period < dt.timedelta(minutes=1)
        start = now or dt.datetime.now(dt.UTC)
        first = self.next_after(start)
        return self.next_after(first) <= start + dt.timedelta(minutes=1)


def schedule_zone(environ: Mapping[str, str]) -> dt.tzinfo:
    """UTC, or the IANA zone in WEBSITE_TIME_ZONE."""
    name = environ.get("WEBSITE_TIME_ZONE")
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"WEBSITE_TIME_ZONE '{name}' is not an IANA time zone name") from exc


@dataclass
class ScheduleStatus:
    """The timer extension's persisted status; None stands for .NET's default DateTime."""

    last: dt.datetime | None
    next: dt.datetime
    last_updated: dt.datetime | None

    def to_json(self) -> dict[str, str]:
        def text(moment: dt.datetime | None) -> str:
            return moment.isoformat() if moment is not None else _DEFAULT_TIME

        return {"Last": text(self.last), "Next": text(self.next), "LastUpdated": text(self.last_updated)}

    @classmethod
    def from_json(cls, doc: Mapping[str, object], zone: dt.tzinfo) -> ScheduleStatus | None:
        def moment(key: str) -> dt.datetime | None:
            raw = doc.get(key)
            if not isinstance(raw, str) or raw.startswith("0001-01-01"):
                return None
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)

        nxt = moment("Next")
        if nxt is None:
            return None
        return cls(moment("Last"), nxt, moment("LastUpdated"))


class StatusStore(Protocol):
    """Where monitored timers keep their status."""

    def get(self, timer_name: str) -> ScheduleStatus | None: ...

    def update(self, timer_name: str, status: ScheduleStatus) -> None: ...


class BlobStatusStore:
    """Status blobs in AzureWebJobsStorage, at the timer extension's path."""

    def __init__(self, connection_string: str, host_id: str, zone: dt.tzinfo) -> None:
        from azure.storage.blob import BlobServiceClient  # only monitored timers need blobs

        service = BlobServiceClient.from_connection_string(connection_string, **client_options())
        self._container = service.get_container_client(HOSTS_CONTAINER)
        self._host_id = host_id
        self._zone = zone
        self._created = False

    def _blob_name(self, timer_name: str) -> str:
        return f"timers/{self._host_id}/{timer_name}/status"

    def get(self, timer_name: str) -> ScheduleStatus | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            raw = self._container.download_blob(self._blob_name(timer_name)).readall()
        except ResourceNotFoundError:
            return None
        return ScheduleStatus.from_json(json.loads(raw), self._zone)

    def update(self, timer_name: str, status: ScheduleStatus) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._created:
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container()
                self._created = True
            self._container.upload_blob(self._blob_name(timer_name), json.dumps(status.to_json()), overwrite=True)
        except Exception:
            # Best effort, as in the extension: a status write never stops the schedule.
            log.exception("Function '%s' failed to update the timer trigger status.", timer_name)


def timer_name(function_name: str) -> str:
    """The name the extension keys status by for a script-host function."""
    return f"Host.Functions.{function_name}"


def check_past_due(
    schedule: Schedule, now: dt.datetime, status: ScheduleStatus | None, store: StatusStore, name: str
) -> tuple[bool, ScheduleStatus]:
    """The extension's start-up check: (past due?, the status to run with)."""
    if status is None:
        status = ScheduleStatus(None, schedule.next_after(now), now)
        store.update(name, status)
        return False, status
    if status.last is not None:
        expected, basis = schedule.next_after(status.last), status.last
    elif status.last_updated is not None:
        expected, basis = schedule.next_after(status.last_updated), status.last_updated
    else:
        expected, basis = schedule.next_after(now), now
    if status.next != expected:
        # The schedule changed since the status was written: re-base it rather than report past due.
        if now > expected:
            expected, basis = schedule.next_after(now), now
        status = ScheduleStatus(None, expected, basis)
        store.update(name, status)
    return now > status.next, status


class TimerListener:
    """Runs one timer function on its schedule in a background thread."""

    def __init__(
        self,
        entry: FunctionEntry,
        invoker: Invoker,
        store: StatusStore | None,
        zone: dt.tzinfo,
    ) -> None:
        assert entry.timer is not None
        self._entry = entry
        self._spec = entry.timer
        self._invoker = invoker
        self._store = store if entry.timer.use_monitor else None
        self._zone = zone
        self._name = timer_name(entry.name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{entry.name}", daemon=True)
        self.status: ScheduleStatus | None = None

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Fire no more (the host signals every listener before waiting on any)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self._thread.join(timeout)

    def _now(self) -> dt.datetime:
        return dt.datetime.now(self._zone)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("timer listener for %s stopped", self._entry.name)

    def _loop(self) -> None:
        schedule = self._spec.schedule
        now = self._now()
        past_due = False
        status: ScheduleStatus | None = None
        if self._store is not None:
            try:
                status = self._store.get(self._name)
                past_due, status = check_past_due(schedule, now, status, self._store, self._name)
            except Exception:
                log.exception("reading the timer status of %s failed; running unmonitored this time", self._entry.name)
                status = None
        self.status = status or ScheduleStatus(None, schedule.next_after(now), None)
        upcoming = [self.status.next]
        for _ in range(4):
            upcoming.append(schedule.next_after(upcoming[-1]))
        log.info(
            "timer %s: schedule '%s', next occurrences %s",
            self._entry.name,
            schedule.expression,
            ", ".join(u.isoformat() for u in upcoming),
        )
        if past_due:
            self._fire(self._now(), past_due=True, reason="IsPastDue")
        elif self._spec.run_on_startup:
            self._fire(self._now(), run_on_startup=True, reason="RunOnStartup")
        while not self._stop.is_set():
            delay = (self.status.next - self._now()).total_seconds()
            if self._stop.wait(max(0.0, delay)):
                break
            self._fire(self._now(), reason="Timer")

    def _fire(self, invocation_time: dt.datetime, *, past_due: bool = False, run_on_startup: bool = False, reason: str) -> None:
        assert self.status is not None
        status_json = self.status.to_json() if self._store is not None else None
        self._invoker.invoke(self._entry, timer_datum(past_due=past_due, schedule_status=status_json), {}, reason=reason)
        adjusted = invocation_time
        if not past_due and not run_on_startup and self.status.next > invocation_time:
            # Fired marginally before the scheduled time: compute from the schedule, so the
            # same occurrence is not scheduled twice.
            adjusted = self.status.next
        self.status = ScheduleStatus(adjusted, self._spec.schedule.next_after(adjusted), adjusted)
        if self._store is not None:
            self._store.update(self._name, self.status)


def admin_timer_datum(entry: FunctionEntry, store: StatusStore | None) -> meta.Datum:
    """The TimerInfo a manual (admin) run receives: never past due, status when monitored."""
    assert entry.timer is not None
    status_json = None
    if store is not None and entry.timer.use_monitor:
        try:
            status = store.get(timer_name(entry.name))
        except Exception:
            log.exception("reading the timer status of %s failed", entry.name)
            status = None
        status_json = status.to_json() if status else None
    return timer_datum(past_due=False, schedule_status=status_json)

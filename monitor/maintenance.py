"""Maintenance windows: one-off, cron, or weekly at a time, each in its own time zone, for every
instance or some. During one no alert is sent, and runs count as maintenance, not downtime.

The status page calls `active` (is an instance in maintenance now?) and `upcoming` (what is
planned); the scheduler's `in_maintenance` hook calls `active` for every result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from monitor.config import MaintenanceWindow, Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_OCCURRENCES = 1000  # per window and query: a cron firing every minute over a week stops here


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One stretch of a window: [start, end) in unix seconds."""

    window: MaintenanceWindow
    start: float
    end: float

    @property
    def title(self) -> str:
        return self.window.title

    @property
    def description(self) -> str:
        return self.window.description

    @property
    def instances(self) -> list[str]:
        """The instances it covers; empty means every instance."""
        return self.window.instances


def covers(window: MaintenanceWindow, instance: str) -> bool:
    """Does the window apply to this instance (no `instances` list: every one)?"""
    return not window.instances or instance in window.instances


def occurrences(window: MaintenanceWindow, start: float, end: float) -> Iterator[Occurrence]:
    """The window's stretches that overlap [start, end), in order."""
    if window.start is not None:
        first = window.local(window.start).timestamp()
        last = window.local(window.end).timestamp() if window.end else first + (window.duration or 0)
        if first < end and last > start:
            yield Occurrence(window, first, last)
        return
    duration = window.duration or 0.0
    tz = ZoneInfo(window.timezone)
    if window.cron is not None:
        fires = croniter(window.cron, datetime.fromtimestamp(start - duration, tz))
        for _ in range(_MAX_OCCURRENCES):
            began = fires.get_next(datetime).timestamp()
            if began >= end:
                return
            if began + duration > start:
                yield Occurrence(window, began, began + duration)
        return
    assert window.time is not None
    days = {WEEKDAYS.index(d) for d in window.weekdays} or set(range(7))
    day = datetime.fromtimestamp(start - duration, tz).date() - timedelta(days=1)
    for _ in range(_MAX_OCCURRENCES):
        began = datetime.combine(day, window.time, tzinfo=tz).timestamp()
        if began >= end:
            return
        if day.weekday() in days and began + duration > start:
            yield Occurrence(window, began, began + duration)
        day += timedelta(days=1)


def active(settings: Settings, instance: str, at: float) -> Occurrence | None:
    """The maintenance window covering this instance at this time, if any."""
    for window in settings.maintenance:
        if not covers(window, instance):
            continue
        for occurrence in occurrences(window, at, at + 1e-6):
            if occurrence.start <= at < occurrence.end:
                return occurrence
    return None


def upcoming(
    settings: Settings, now: float, horizon: float = 7 * 86400, instance: str | None = None
) -> list[Occurrence]:
    """Windows in progress or starting within `horizon` seconds, soonest first (for one instance, or all)."""
    found = [
        occurrence
        for window in settings.maintenance
        if instance is None or covers(window, instance)
        for occurrence in occurrences(window, now, now + horizon)
    ]
    return sorted(found, key=lambda o: (o.start, o.end))

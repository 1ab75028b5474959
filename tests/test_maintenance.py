"""Maintenance windows: one-off, cron and weekly, in their time zones (DST included), per instance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor import config, maintenance


def settings(*windows, instances=("a", "b")):
    raw = {
        "instances": [{"name": n, "url": "http://127.0.0.1:9"} for n in instances],
        "maintenance": list(windows),
    }
    return config.from_mapping(raw, env={})


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=datetime.fromisoformat(text).tzinfo or UTC).timestamp()


def active_at(s, text, instance="a"):
    return maintenance.active(s, instance, ts(text)) is not None


def test_one_off_window_read_in_its_time_zone():
    s = settings({"start": "2026-06-01 22:00", "end": "2026-06-02 01:00", "timezone": "Europe/Paris"})
    assert not active_at(s, "2026-06-01T19:59:59")  # 21:59:59 in Paris (UTC+2)
    assert active_at(s, "2026-06-01T20:00:00")
    assert active_at(s, "2026-06-01T22:59:59")
    assert not active_at(s, "2026-06-01T23:00:00")  # end is exclusive


def test_one_off_with_offset_and_duration():
    s = settings({"start": "2026-06-01T10:00:00+05:00", "duration": "90m"})
    assert active_at(s, "2026-06-01T05:00:00") and active_at(s, "2026-06-01T06:29:00")
    assert not active_at(s, "2026-06-01T06:30:00")


def test_cron_follows_local_time_across_daylight_saving():
    s = settings({"cron": "0 3 * * *", "duration": "1h", "timezone": "Europe/Paris"})
    assert active_at(s, "2026-01-15T02:30:00")  # winter: 03:00 Paris is 02:00 UTC
    assert not active_at(s, "2026-01-15T01:30:00")
    assert active_at(s, "2026-07-15T01:30:00")  # summer: 03:00 Paris is 01:00 UTC
    assert not active_at(s, "2026-07-15T02:30:00")


def test_weekly_window_crossing_midnight_on_chosen_days():
    # quoted and unquoted times: YAML reads 23:30 as the number 1410
    for time_value in ("23:30", 1410):
        s = settings({"weekdays": ["sat"], "time": time_value, "duration": "1h"})
        assert active_at(s, "2026-11-28T23:45:00")  # Saturday
        assert active_at(s, "2026-11-29T00:15:00")  # into Sunday
        assert not active_at(s, "2026-11-29T00:30:00")
        assert not active_at(s, "2026-11-27T23:45:00")  # Friday


def test_every_day_when_no_weekdays_are_given():
    s = settings({"time": "04:00", "duration": "10m", "timezone": "America/New_York"})
    for day in range(1, 8):
        assert active_at(s, f"2026-03-0{day}T09:05:00")  # 04:05 EST


def test_windows_can_cover_some_instances_only():
    s = settings({"start": "2026-06-01 00:00", "duration": "1d", "instances": ["b"]})
    assert not active_at(s, "2026-06-01T12:00:00", "a")
    assert active_at(s, "2026-06-01T12:00:00", "b")


def test_upcoming_lists_in_progress_and_planned_soonest_first():
    s = settings(
        {"title": "DB upgrade", "start": "2026-06-03 10:00", "duration": "2h", "instances": ["a"]},
        {"title": "Nightly", "cron": "0 2 * * *", "duration": "30m"},
    )
    now = ts("2026-06-01T02:10:00")
    found = maintenance.upcoming(s, now, horizon=3 * 86400)
    assert [(o.title, datetime.fromtimestamp(o.start, UTC).strftime("%d %H:%M")) for o in found] == [
        ("Nightly", "01 02:00"),  # in progress
        ("Nightly", "02 02:00"),
        ("Nightly", "03 02:00"),
        ("DB upgrade", "03 10:00"),
        ("Nightly", "04 02:00"),  # 02:00 is within three days of 02:10
    ]
    assert found[0].end == ts("2026-06-01T02:30:00")
    assert [o.title for o in maintenance.upcoming(s, now, 3 * 86400, instance="b")] == ["Nightly"] * 4


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        (
            {"cron": "every night", "duration": "1h"},
            "maintenance[0].cron: is not a cron expression",
        ),
        ({"cron": "0 3 * * *"}, "maintenance[0]: a recurring window needs duration"),
        ({"start": "2026-01-01 10:00"}, "maintenance[0]: a one-off window needs end or duration"),
        ({"start": "2026-01-01 10:00", "end": "2026-01-01 09:00"}, "maintenance[0]: end must be after start"),
        ({"weekdays": ["mon"], "duration": "1h"}, "maintenance[0]: weekdays needs time"),
        (
            {"weekdays": ["monday"], "time": "02:00", "duration": "1h"},
            "maintenance[0].weekdays[0]: must be 'mon'",
        ),
        (
            {"time": "02:00", "duration": "1h", "timezone": "Mars/Olympus"},
            "maintenance[0].timezone: unknown time zone: use a name",
        ),
        ({"time": "02:00", "cron": "0 2 * * *", "duration": "1h"}, "maintenance[0]: set one of start"),
        (
            {"time": "02:00", "duration": "1h", "instances": ["zz"]},
            "maintenance[0].instances[0]: no instance has this name",
        ),
    ],
)
def test_bad_windows_are_one_clear_line(window, problem):
    with pytest.raises(config.ConfigError) as err:
        settings(window)
    [line] = err.value.problems
    assert line.startswith(problem), line


def test_yaml_file_with_unquoted_times(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "instances:\n  - name: a\n    url: http://127.0.0.1:9\n"
        "maintenance:\n  - weekdays: [sun]\n    time: 02:30\n    duration: 2h\n    timezone: Europe/Berlin\n"
        "  - start: 2026-12-24 18:00\n    end: 2026-12-26 08:00\n"
    )
    s = config.load(path, env={})
    assert str(s.maintenance[0].time) == "02:30:00"
    assert active_at(s, "2026-11-29T02:00:00")  # Sunday 03:00 in Berlin
    assert active_at(s, "2026-12-25T12:00:00")

"""What the page says about incidents and uptime, from a real SQLite history written through the
store: outages apart by healthy runs stay apart, a consequence follows its cause, a line is one
run's kind and message, repeated failures fold, and a fresh install says since when it watches
(as the page, JSON and badge of a running monitor show)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor import config
from monitor.models import Kind, Result, Status
from monitor.store import Store
from monitor.web.context import page_context
from monitor.web.render import links_for, render
from monitor.web.source import Source

from .conftest import instance_config, wait_for

MINUTE = 60.0
T0 = 1_790_000_000.0 // 86400 * 86400 + 8 * 3600  # 08:00 UTC on a fixed day


def settings_for(tmp_path: Path) -> config.Settings:
    raw = {
        "instances": [{"name": "home", "url": "http://10.0.0.1:8000", "interval": "60s"}],
        "storage": {"path": str(tmp_path / "m.db")},
        "alerts": {"success_threshold": 2},
    }
    return config.from_mapping(raw, env={})


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "m.db")
    yield s
    s.close()


def runs(store: Store, minutes: range, **checks: tuple[str | None, str]) -> None:
    """One result a minute of each check: (kind, message), kind None for up."""
    for minute in minutes:
        for check, (kind, message) in checks.items():
            status = Status.UP if kind is None else Status.DOWN
            store.record(
                Result("home", check, status, Kind(kind) if kind else None, message,
                       started_at=T0 + minute * MINUTE + (5 if check == "ready" else 0)),
            )  # fmt: skip
    store.flush()


UP = (None, "")
REFUSED = ("connect", "cannot connect: 10.0.0.1:8000 refused")


def incidents(tmp_path: Path, store: Store, at_minute: float) -> list[dict[str, Any]]:
    ctx = page_context(Source(settings_for(tmp_path), store), now=T0 + at_minute * MINUTE, window="24h")
    return list(reversed(ctx["incidents"]))  # oldest first


def test_outages_apart_by_healthy_runs_are_separate_incidents(tmp_path: Path, store: Store) -> None:
    runs(store, range(0, 5), live=UP, ready=UP)
    runs(store, range(5, 9), live=("maintenance", "GET /up answered 503"), ready=("maintenance", "503"))
    runs(store, range(9, 12), live=UP, ready=UP)  # three healthy runs: the next failure is new
    runs(store, range(12, 15), live=REFUSED, ready=REFUSED)
    runs(store, range(15, 16), live=UP, ready=UP)  # one healthy run: a flap of the same outage
    runs(store, range(16, 18), live=REFUSED, ready=REFUSED)
    runs(store, range(18, 21), live=UP, ready=UP)
    found = incidents(tmp_path, store, 21)
    assert [(i["kind"], round((i["started_at"] - T0) / MINUTE)) for i in found] == [
        ("maintenance", 5),
        ("connect", 12),
    ]
    assert [round(i["duration_s"] / MINUTE) for i in found] == [4, 6]
    assert [p["check"] for p in found[1]["checks"]] == ["live", "ready"]  # a flap: one line per check
    assert round((found[1]["checks"][0]["ended_at"] - found[1]["checks"][0]["started_at"]) / MINUTE) == 6


def test_a_consequence_follows_its_cause_and_a_line_is_one_run(tmp_path: Path, store: Store) -> None:
    runs(store, range(0, 2), live=UP, ready=UP)
    # readiness: refused once (2FAuth restarting), then the token is refused for a while
    runs(store, range(2, 3), live=UP, ready=REFUSED)
    runs(store, range(3, 8), live=UP, ready=("auth", "GET /api/v1/twofaccounts/count answered 401"))
    runs(store, range(8, 11), live=UP, ready=UP)
    runs(store, range(11, 14), live=REFUSED, ready=REFUSED)  # the server stopped
    runs(store, range(14, 17), live=UP, ready=UP)
    token, stopped = incidents(tmp_path, store, 17)
    assert (token["cause"], token["kind"], token["kind_text"]) == ("ready", "auth", "access refused")
    [part] = token["checks"]
    assert (part["kind"], part["message"]) == ("auth", "GET /api/v1/twofaccounts/count answered 401")
    assert (stopped["cause"], stopped["kind"]) == ("live", "connect")
    assert [(p["check"], p["consequence_of"]) for p in stopped["checks"]] == [
        ("live", None),
        ("ready", "live"),
    ]
    settings = settings_for(tmp_path)
    ctx = page_context(Source(settings, store), now=T0 + 17 * MINUTE, window="24h")
    html = render("index.html", ctx, links_for(settings, "24h"))
    assert "Readiness</strong> (cannot connect): a consequence of Web server" in html
    assert (
        "access refused" in html
        and "(cannot connect): GET /api/v1/twofaccounts/count answered 401" not in html
    )


def test_latest_failures_fold_repeats_with_count_and_first_time(tmp_path: Path, store: Store) -> None:
    runs(store, range(0, 10), live=UP, ready=("server_error", "GET /api/v1/twofaccounts/count answered 500"))
    runs(store, range(10, 12), live=REFUSED, ready=REFUSED)
    settings = settings_for(tmp_path)
    ctx = page_context(Source(settings, store), now=T0 + 12 * MINUTE, window="24h", instance="home")
    lines = [(f["check"], f["kind"], f["count"]) for f in ctx["detail"]["failures"]]
    assert lines == [("ready", "connect", 2), ("live", "connect", 2), ("ready", "server_error", 10)]
    folded = ctx["detail"]["failures"][2]
    assert (folded["first_at"], folded["started_at"]) == (T0 + 5, T0 + 9 * MINUTE + 5)
    html = render("instance.html", ctx, links_for(settings, "24h", root="../", instance_page="home"))
    failures = html[html.index('id="failures"') :]
    assert failures.count("<tr><td") == 3 and "10 times since" in failures


def test_a_fresh_install_says_since_when_it_watches(tmp_path: Path, store: Store) -> None:
    runs(store, range(0, 2), live=UP, ready=REFUSED)
    settings = settings_for(tmp_path)
    now = T0 + 2 * MINUTE + 30
    ctx = page_context(Source(settings, store), now=now)
    inst = ctx["instances"][0]
    assert inst["observed_since"] == T0
    assert inst["uptime_since"] == dict.fromkeys(("24h", "7d", "30d", "90d", "365d"), T0)
    html = render("index.html", ctx, links_for(settings, "30d"))
    assert 'uptime <span class="uptime-since">since 08:00 UTC, 2 min 30 s</span>' in html
    assert "uptime over 30d" not in html and "over 90 days" not in html


def test_a_running_monitor_says_since_when_it_watches_on_page_json_and_badge(
    sim, write_config, start_monitor
):
    mon = start_monitor(write_config({"instances": [instance_config(sim.url, interval="1s", timeout="1s")]}))
    began = time.time()
    status = wait_for(
        lambda: (s := httpx.get(mon.url + "/api/v1/status").json())["instances"][0]["observed_since"] and s,
        message="the first results",
    )
    inst = status["instances"][0]
    assert began - 5 < inst["observed_since"] < time.time()
    assert set(inst["uptime_since"].values()) == {inst["observed_since"]}
    assert all(c["uptime_since"]["30d"] for c in inst["checks"])
    page = httpx.get(mon.url + "/").text
    assert re.search(r"uptime <span class=\"uptime-since\">since \d\d:\d\d UTC, \d+ s</span>", page)
    assert "Collecting data since" in page  # the hourly chart has no finished point yet
    badge = httpx.get(mon.url + "/badge/home/uptime.svg").text
    assert re.search(r"uptime \d+ s", badge) and "uptime 30d" not in badge
    assert mon.stop() == 0

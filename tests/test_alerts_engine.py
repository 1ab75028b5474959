"""The alert engine inside a real Monitor: results go through the scheduler's record-then-listen
path into SQLite, alerts out through the outbox to a loopback receiver; the retry re-runs real
checks against the simulator; maintenance windows silence alerts and count as maintenance."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitor import alerts, config
from monitor.checks import make_context
from monitor.models import Kind, Result, Status
from monitor.scheduler import Monitor
from monitor.store import Store

from .conftest import AWKWARD, instance_config


async def until(predicate, timeout: float = 10.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        await asyncio.sleep(0.02)


def down(instance: str, check: str = "live", at: float | None = None) -> Result:
    return Result(instance, check, Status.DOWN, Kind.CONNECT, "cannot connect", started_at=at or time.time())


def up(instance: str, check: str = "live") -> Result:
    return Result(instance, check, Status.UP, started_at=time.time())


RUNNING: dict[int, alerts.Running] = {}  # id(monitor) -> its alerting, for close()


async def close(monitor: Monitor) -> None:
    """What monitor/runtime.py does at the end: alerting stops, then the store closes."""
    running = RUNNING.pop(id(monitor), None)
    if running is None:
        return
    await running.stop()
    for ctx in monitor.contexts.values():
        await ctx.aclose()
    assert monitor.store is not None
    monitor.store.close()


@pytest.fixture
async def make_monitor(tmp_path):
    """make_monitor(raw settings) -> a Monitor with alerting attached (no scheduler running)."""
    made: list[Monitor] = []

    def make(raw: dict) -> Monitor:
        raw = {"storage": {"path": str(tmp_path / "monitor.db")}, **raw}
        raw.setdefault("alerts", {}).setdefault(
            "delivery", {"backoff_initial": "50ms", "backoff_max": "100ms"}
        )
        monitor = Monitor(config.from_mapping(raw, env={}), Store(raw["storage"]["path"]))
        running = alerts.start(monitor)  # as monitor/runtime.py starts it
        assert running is not None
        RUNNING[id(monitor)] = running
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        await close(monitor)


LIVE_ONLY = {"checks": {"ready": {"enabled": False}}}  # an alert need not wait for another check


def events(monitor: Monitor) -> list[tuple]:
    assert monitor.store is not None
    return monitor.store.db.execute(
        'select instance, "check", event from alert_events order by id'
    ).fetchall()


async def test_routing_overrides_display_names_and_links(make_monitor, receiver):  # noqa: F811
    monitor = make_monitor(
        {
            "web": {"base_url": "https://status.example/"},
            "instances": [
                {"name": "home", "url": "http://127.0.0.1:9", "display_name": AWKWARD, **LIVE_ONLY},
                {
                    "name": "work",
                    "url": "http://127.0.0.1:9",
                    "alerts": {"failure_threshold": 1, "notify": ["chat"]},
                    **LIVE_ONLY,
                },
                {"name": "quiet", "url": "http://127.0.0.1:9", "alerts": {"enabled": False}, **LIVE_ONLY},
            ],
            "notifiers": [
                {"name": "ops", "type": "webhook", "url": receiver.url + "/ops"},
                {"name": "chat", "type": "webhook", "url": receiver.url + "/chat"},
            ],
            "alerts": {"failure_threshold": 2, "notify": ["ops", {"name": "chat", "events": ["down"]}]},
        }
    )
    for result in [down("home"), down("home"), up("home"), up("home"), down("work")] + [down("quiet")] * 4:
        await monitor.handle_result(result)
    await until(lambda: len(receiver.requests) == 4, message="four deliveries")
    got = sorted((r["path"], b["instance"], b["event"]) for r, b in zip(receiver.requests, receiver.bodies()))
    assert got == [
        ("/chat", "home", "down"),
        ("/chat", "work", "down"),
        ("/ops", "home", "down"),
        ("/ops", "home", "resolved"),
    ]
    home = next(b for b in receiver.bodies() if b["instance"] == "home")
    assert home["instance_label"] == AWKWARD
    assert home["link"] == "https://status.example/instances/home"
    assert ("quiet", "live", "down") not in events(monitor)
    await close(monitor)


async def test_retry_takes_a_second_look_before_a_failure_counts(sim, make_monitor, receiver):  # noqa: F811
    monitor = make_monitor(
        {
            "instances": [instance_config(sim.url, "home")],
            "notifiers": [{"name": "ops", "type": "webhook", "url": receiver.url}],
            "alerts": {"failure_threshold": 2, "retry": "100ms"},
        }
    )
    monitor.contexts["home"] = make_context(monitor.settings.instances[0])
    assert monitor.store is not None
    results = lambda: monitor.store.db.execute(  # noqa: E731
        "select status from results where \"check\" = 'live' order by id"
    ).fetchall()

    await monitor.handle_result(down("home"))  # a blip: the second look finds 2FAuth answering
    await until(lambda: len(results()) == 2, message="the second look")
    assert results() == [("down",), ("up",)]

    sim.set_faults(["down"])  # a real outage: each failure and its second look count once
    await monitor.handle_result(down("home"))
    await until(lambda: len(results()) == 4, message="the second look")
    await asyncio.sleep(0.2)
    assert events(monitor) == []
    await monitor.handle_result(down("home"))
    await until(lambda: len(receiver.requests) == 1, message="the down alert")
    assert receiver.bodies()[0]["event"] == "down"
    assert len(results()) == 6
    await close(monitor)


async def test_maintenance_silences_alerts_and_counts_as_maintenance(make_monitor, receiver):  # noqa: F811
    now = time.time()
    monitor = make_monitor(
        {
            "instances": [
                {"name": "home", "url": "http://127.0.0.1:9", **LIVE_ONLY},
                {"name": "work", "url": "http://127.0.0.1:9", **LIVE_ONLY},
            ],
            "notifiers": [{"name": "ops", "type": "webhook", "url": receiver.url}],
            "maintenance": [
                {
                    "title": "Upgrade",
                    "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60)),
                    "duration": "1h",
                    "instances": ["home"],
                }
            ],
            "alerts": {"failure_threshold": 1},
        }
    )
    for _ in range(3):
        await monitor.handle_result(down("home"))
        await monitor.handle_result(down("work"))
    await until(lambda: len(receiver.requests) == 1, message="work's alert")
    assert [(b["instance"], b["event"]) for b in receiver.bodies()] == [("work", "down")]
    assert monitor.store is not None
    assert monitor.store.uptime("home", "live", 3600)["maintenance"] == 3
    assert monitor.store.uptime("home", "live", 3600)["uptime"] is None  # left out of uptime
    await close(monitor)


async def test_start_makes_the_alerts_that_were_due_when_the_monitor_was_killed(make_monitor, receiver):  # noqa: F811
    raw = {
        "instances": [{"name": "home", "url": "http://127.0.0.1:9", **LIVE_ONLY}],
        "notifiers": [{"name": "ops", "type": "webhook", "url": receiver.url}],
        "alerts": {"failure_threshold": 2},
    }
    monitor = make_monitor(raw)
    await monitor.handle_result(down("home"))
    await close(monitor)
    # the scheduler recorded the second failure, then died before the alert listener ran
    store = Store(monitor.settings.storage.path)
    store.record(down("home"))
    store.flush()
    store.close()
    assert receiver.requests == []
    again = make_monitor(raw)
    await until(lambda: len(receiver.requests) == 1, message="the alert that was due")
    assert receiver.bodies()[0]["event"] == "down"
    await close(again)
    third = make_monitor(raw)  # nothing is due twice
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1 and len(events(third)) == 1
    await close(third)

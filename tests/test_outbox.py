"""The outbox: every alert is written before it is sent, retried with bounded backoff until the
receiver takes it, each attempt recorded, in order per instance, never re-sent once delivered.

These tests drive the worker round by round with an injectable clock (no sleeping for backoff)
against a real receiver on loopback and a real SQLite file.
"""

from __future__ import annotations

import sqlite3

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor import alerts, config
from monitor.alerts.engine import Alerting
from monitor.alerts.metrics import DeliveryCollector
from monitor.alerts.outbox import OutboxWorker, backoff
from monitor.models import Kind, Result, Status
from monitor.store import Store

from .receiver import SECRET

T0 = 1_800_000_000.0
URL_TOKEN = "tok-in-path-31337"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_settings(tmp_path, url, *, delivery=None, **alert_rules):
    raw = {
        "storage": {"path": str(tmp_path / "monitor.db")},
        # the web server check alone, so an alert need not wait for another check (incident.py)
        "instances": [
            {"name": "home", "url": "http://127.0.0.1:9", "checks": {"ready": {"enabled": False}}},
            {"name": "work", "url": "http://127.0.0.1:9", "checks": {"ready": {"enabled": False}}},
        ],
        "notifiers": [
            {
                "name": "ops",
                "type": "webhook",
                "url": f"{url}/{URL_TOKEN}",
                "secret": SECRET,
                "headers": {"Authorization": "Bearer hdr-secret-4242"},
            }
        ],
        "alerts": {
            "failure_threshold": 1,
            "success_threshold": 1,
            "delivery": {"backoff_initial": "10s", "backoff_max": "1m", **(delivery or {})},
            **alert_rules,
        },
    }
    return config.from_mapping(raw, env={})


class Rig:
    """Store, alert engine and outbox worker on one SQLite file, with a shared fake clock."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.clock = Clock()
        self.store = Store(settings.storage.path)
        self.alerting = Alerting(self.store, lambda: self.settings, clock=self.clock)
        self.worker = OutboxWorker(self.alerting.db, lambda: self.settings, clock=self.clock)

    def result(self, instance: str, check: str, status: str, minute: float) -> None:
        at = T0 + minute * 60
        kind = None if status == "up" else Kind.TIMEOUT
        self.store.record(
            Result(instance, check, Status(status), kind, f"{status} at {minute}", started_at=at)
        )
        self.store.flush()
        self.alerting.catch_up(instance, check)

    async def rounds(self, n: int, step: float = 60.0) -> None:
        for _ in range(n):
            await self.worker.run_once()
            self.clock.advance(step)

    def rows(self, sql: str, *args):
        return self.store.db.execute(sql, args).fetchall()

    async def close(self) -> None:
        await self.worker.stop()
        self.store.close()


@pytest.fixture
async def rig(tmp_path, receiver):  # noqa: F811
    r = Rig(make_settings(tmp_path, receiver.url))
    yield r
    await r.close()


async def test_receiver_down_then_up_gets_every_alert_once_in_order_per_instance(rig, receiver):  # noqa: F811
    receiver.down()
    for check in ("live", "totp"):  # two incidents of home, one after the other
        rig.result("home", check, "down", 0)
        rig.result("home", check, "up", 1)
    rig.result("home", "live", "down", 2)
    rig.result("work", "live", "down", 2)
    await rig.rounds(4)
    # every attempt failed and was recorded; only the oldest of each instance was tried
    attempts = rig.rows(
        "select o.instance, a.outcome, a.error from delivery_attempts a join outbox o on o.id = a.outbox_id"
    )
    assert attempts and all(
        outcome == "retry" and "cannot reach the receiver" in error for _, outcome, error in attempts
    )
    tried = rig.rows("select distinct o.id from delivery_attempts a join outbox o on o.id = a.outbox_id")
    assert len(tried) == 2
    receiver.up()
    await rig.rounds(10)
    bodies = receiver.bodies()
    assert [(b["check"], b["event"]) for b in bodies if b["instance"] == "home"] == [
        ("live", "down"),
        ("live", "resolved"),
        ("totp", "down"),
        ("totp", "resolved"),
        ("live", "down"),
    ]
    assert [(b["check"], b["event"]) for b in bodies if b["instance"] == "work"] == [("live", "down")]
    assert len({b["id"] for b in bodies}) == len(bodies) == 6
    assert rig.rows("select state, count(*) from outbox group by state") == [("delivered", 6)]
    delivered = rig.rows("select status, outcome from delivery_attempts where outcome = 'delivered'")
    assert delivered == [(200, "delivered")] * 6


async def test_backoff_waits_grow_and_stay_bounded(rig, receiver):  # noqa: F811
    receiver.down()
    rig.result("home", "live", "down", 0)
    waits = []
    for _ in range(8):
        await rig.worker.run_once()
        [(next_at, attempts)] = rig.rows("select next_attempt_at, attempts from outbox")
        waits.append(next_at - rig.clock())
        rig.clock.t = next_at
    assert len(waits) == 8 and attempts == 8
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20 and 20 <= waits[2] <= 40
    assert all(30 <= w <= 60 for w in waits[3:])  # backoff_max 1m, jittered down to half


@pytest.mark.parametrize(
    ("attempts", "low", "high"), [(1, 2.5, 5), (2, 5, 10), (3, 10, 20), (10, 150, 300), (60, 150, 300)]
)
def test_backoff_doubles_with_jitter_up_to_the_bound(attempts, low, high):
    delivery = config.Delivery(backoff_initial=5, backoff_max=300)
    assert backoff(attempts, delivery, rand=0.0) == low
    assert backoff(attempts, delivery, rand=1.0) == high


def test_retry_after_is_honoured_within_the_bound():
    delivery = config.Delivery(backoff_initial=5, backoff_max=300)
    assert backoff(1, delivery, retry_after=120, rand=0.0) == 120
    assert backoff(1, delivery, retry_after=10_000, rand=0.0) == 300


async def test_a_permanent_refusal_fails_at_once_and_does_not_block_the_next_alert(rig, receiver):  # noqa: F811
    receiver.status = 410
    rig.result("home", "live", "down", 0)
    await rig.rounds(1)
    receiver.status = 200
    rig.result("home", "live", "up", 1)
    await rig.rounds(2)
    assert rig.rows("select state, attempts, last_status, last_error from outbox order by id") == [
        ("failed", 1, 410, "HTTP 410: {}"),
        ("delivered", 1, 200, None),
    ]
    assert [b["event"] for b in receiver.bodies()] == ["down", "resolved"]
    failed = alerts.deliveries(rig.store, "home")["failed"]
    assert [(d["event"], d["notifier"], d["last_error"]) for d in failed] == [("down", "ops", "HTTP 410: {}")]


async def test_gives_up_after_max_attempts_or_give_up_after(tmp_path, receiver):  # noqa: F811
    receiver.status = 503
    rig = Rig(make_settings(tmp_path, receiver.url, delivery={"max_attempts": 3}))
    try:
        rig.result("home", "live", "down", 0)
        await rig.rounds(6, step=3600)
        assert rig.rows("select state, attempts from outbox") == [("failed", 3)]
        assert [o for (o,) in rig.rows("select outcome from delivery_attempts order by id")] == [
            "retry",
            "retry",
            "failed",
        ]
    finally:
        await rig.close()
    rig = Rig(make_settings(tmp_path, receiver.url, delivery={"give_up_after": "1h"}))
    try:
        rig.result("work", "live", "down", 0)
        await rig.rounds(4, step=1800)
        assert rig.rows("select state from outbox where instance = 'work'") == [("failed",)]
    finally:
        await rig.close()


async def test_a_restart_never_resends_what_was_delivered(tmp_path, receiver):  # noqa: F811
    settings = make_settings(tmp_path, receiver.url)
    rig = Rig(settings)
    rig.result("home", "live", "down", 0)
    await rig.rounds(2)
    await rig.close()
    assert len(receiver.requests) == 1
    again = Rig(settings)
    try:
        assert again.alerting.reconcile() == []  # nothing was due and unwritten
        await again.rounds(3)
        assert len(receiver.requests) == 1
        assert again.alerting.states[("home", "live")].alerted == "down"
    finally:
        await again.close()


async def test_secrets_reach_neither_the_database_nor_the_metrics(rig, receiver):  # noqa: F811
    receiver.down()
    rig.result("home", "live", "down", 0)
    rig.result("work", "live", "down", 0)
    await rig.rounds(2)
    receiver.up()
    receiver.status = 400
    await rig.rounds(2)
    dump = "\n".join(sqlite3.connect(rig.settings.storage.path).iterdump())
    for secret in (URL_TOKEN, SECRET, "hdr-secret-4242", receiver.url):
        assert secret not in dump
    assert "'ops'" in dump  # the notifier is known by its name
    rig.worker.refresh_counts()
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(rig.worker))
    text = generate_latest(registry).decode()
    assert 'twofauth_monitor_alert_deliveries{notifier="ops",state="failed"} 2.0' in text
    assert 'twofauth_monitor_alert_deliveries{notifier="ops",state="pending"} 0.0' in text
    assert 'twofauth_monitor_alert_delivery_attempts_total{notifier="ops",outcome="retry"} 4.0' in text
    assert 'twofauth_monitor_alert_delivery_attempts_total{notifier="ops",outcome="failed"} 2.0' in text
    assert SECRET not in text and URL_TOKEN not in text


async def test_an_alert_and_its_outbox_rows_are_written_together(rig):
    """A write that fails half-way leaves neither the alert nor the new state; the next try makes both."""
    rig.store.db.conn.execute(
        "create trigger refuse before insert on outbox begin select raise(abort, 'disk full'); end"
    )
    rig.store.record(Result("home", "live", Status.DOWN, Kind.TIMEOUT, "x", started_at=T0))
    rig.store.flush()
    with pytest.raises(sqlite3.IntegrityError):
        rig.alerting.catch_up("home", "live")
    assert rig.rows("select count(*) from alert_events") == [(0,)]
    assert rig.rows("select count(*) from alert_state") == [(0,)]
    rig.store.db.conn.execute("drop trigger refuse")
    [event] = rig.alerting.catch_up("home", "live")
    assert event.event == "down"
    assert rig.rows("select count(*) from alert_events") == [(1,)]
    assert rig.rows("select count(*), min(state) from outbox") == [(1, "pending")]


async def test_first_start_on_an_old_history_alerts_only_for_the_current_state(tmp_path, receiver):  # noqa: F811
    settings = make_settings(tmp_path, receiver.url)
    store = Store(settings.storage.path)  # history written before alerting was configured
    for minute, (check, status) in enumerate([("live", "down"), ("live", "up")] + [("totp", "down")] * 5):
        store.record(Result("home", check, Status(status), started_at=T0 + minute * 60))
    store.close()
    rig = Rig(settings)
    try:
        assert [(e.check, e.event) for e in rig.alerting.reconcile()] == [("totp", "down")]
        await rig.rounds(1)
        assert receiver.bodies() == []  # held: live has not run since the TOTP flow failed
        rig.result("home", "live", "up", 7)  # it answers: nothing else is failing
        await rig.rounds(1)
        assert [(b["check"], b["event"], b["since"]) for b in receiver.bodies()] == [
            ("totp", "down", "2027-01-15T08:02:00Z")
        ]
    finally:
        await rig.close()

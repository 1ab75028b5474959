"""History: results, rollups, incidents, retention, and writes that survive a locked database."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.models import DAY, Kind, Result, Status, Step
from monitor.store import Store, StoreError

T0 = 1_780_000_000.0 // DAY * DAY  # a UTC midnight


def res(status="up", at=T0, check="live", latency=10.0, kind=None, message="", instance="home") -> Result:
    return Result(
        instance,
        check,
        Status(status),
        Kind(kind) if kind else None,
        message,
        latency_ms=latency,
        started_at=at,
        steps=[Step("live", "GET", "/up", 200, latency, "ok")],
    )


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "m.db")
    yield s
    s.close()


def test_transitions_and_incidents(store):
    assert store.record(res("up", T0)).old_status is None
    assert store.record(res("up", T0 + 60)) is None
    down = store.record(res("down", T0 + 120, kind="connect", message="refused"))
    assert (down.old_status, down.new_status, down.since) == ("up", "down", T0)
    assert store.record(res("down", T0 + 180, kind="connect", message="still refused")) is None
    degraded = store.record(res("degraded", T0 + 240, kind="clock_skew"))
    assert (degraded.old_status, degraded.new_status) == ("down", "degraded")
    store.record(res("up", T0 + 300))
    store.flush()
    incidents = store.incidents("home")
    assert [(i["status"], i["started_at"], i["ended_at"]) for i in incidents] == [
        ("degraded", T0 + 240, T0 + 300),
        ("down", T0 + 120, T0 + 240),
    ]
    assert incidents[1]["last_message"] == "still refused"
    state = store.states()[("home", "live")]
    assert (state.status, state.since, state.consecutive) == ("up", T0 + 300, 1)


def test_rollups_count_and_uptime_excludes_maintenance(store):
    for i in range(10):
        store.record(res("up", T0 + i * 60, latency=10 + i))
    for i in range(10, 13):
        store.record(res("down", T0 + i * 60, kind="connect", latency=None))
    for i in range(13, 20):
        store.record(res("down", T0 + i * 60, kind="connect"), maintenance=True)
    store.flush()
    hour = store.rollups("home", "live", T0, daily=False)[0]
    assert (hour["count"], hour["up"], hour["down"], hour["maintenance"]) == (20, 10, 3, 7)
    assert (hour["latency_min"], hour["latency_max"]) == (10, 19)
    up = store.uptime("home", "live", DAY, now=T0 + 3600)
    assert up["uptime"] == pytest.approx(10 / 13)
    day = store.daily_bars("home", "live", days=3, now=T0 + 3600)
    assert [d["count"] for d in day] == [0, 0, 20]
    assert day[-1]["incidents"] == 1
    assert day[-1]["uptime"] == pytest.approx(10 / 13)


def test_daily_bars_split_downtime_across_days(store):
    store.record(res("up", T0 - 3600))
    store.record(res("down", T0 - 1800, kind="timeout"))
    store.record(res("up", T0 + 1800))
    store.flush()
    bars = store.daily_bars("home", "live", days=2, now=T0 + 7200)
    assert [b["downtime_s"] for b in bars] == [1800, 1800]
    assert [b["incidents"] for b in bars] == [1, 1]


def test_prune_keeps_rollups_longer_than_raw_rows(store):
    old, recent = T0 - 30 * DAY, T0 - DAY
    store.record(res("down", old, kind="connect"))
    store.record(res("up", old + 60))
    store.record(res("up", recent))
    store.flush()
    deleted = store.prune(raw_retention=14 * DAY, rollup_retention=400 * DAY, now=T0)
    assert deleted["results"] == 2
    assert [r["started_at"] for r in store.recent_results("home")] == [recent]
    assert store.uptime("home", "live", 90 * DAY, now=T0)["count"] == 3  # daily rollups kept
    assert store.incidents("home")  # incidents kept with the rollups
    store.prune(raw_retention=14 * DAY, rollup_retention=20 * DAY, now=T0)
    assert store.uptime("home", "live", 90 * DAY, now=T0)["count"] == 1


def test_messages_and_steps_are_stored_and_read_back(store):
    store.record(res("down", T0, kind="connect", message="cannot connect: refused"))
    store.flush()
    row = store.recent_results("home")[0]
    assert row["message"] == "cannot connect: refused"
    assert row["steps"] == [
        {"name": "live", "method": "GET", "path": "/up", "status": 200, "duration_ms": 10.0, "outcome": "ok"}
    ]


def test_locked_database_keeps_results_in_memory_and_recovers(tmp_path):
    store = Store(tmp_path / "m.db")
    store.db.conn.execute("pragma busy_timeout = 50")
    blocker = sqlite3.connect(tmp_path / "m.db", timeout=0.05)
    blocker.execute("begin exclusive")
    store.record(res("up", T0))
    assert store.flush() is False
    assert not store.healthy and "locked" in store.writer.last_error
    store.record(res("down", T0 + 60, kind="connect"))
    assert len(store.writer.pending) == 2
    blocker.rollback()
    blocker.close()
    assert store.flush() is True
    assert store.healthy
    assert len(store.recent_results("home")) == 2
    store.close()


def test_reopen_restores_state_and_schema_is_migrated_once(tmp_path):
    s1 = Store(tmp_path / "m.db")
    s1.record(res("down", T0, kind="connect"))
    s1.close()
    s2 = Store(tmp_path / "m.db")
    assert s2.states()[("home", "live")].status == "down"
    assert s2.record(res("down", T0 + 60, kind="connect")) is None  # no new transition after restart
    applied = [r["name"] for r in s2.db.query("select name from _sqlite_migrations")]
    assert applied.count("m001_initial") == 1
    assert s2.integrity_ok()
    assert s2.db.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    s2.close()


def test_unopenable_path_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "file" / "m.db")
    assert "cannot open the database" in str(err.value)
    assert "\n" not in str(err.value)


def test_up_runs_keep_their_steps_only_as_the_latest(store):
    store.record(res("up", T0))
    store.record(res("down", T0 + 60, kind="connect", message="refused"))
    store.record(res("up", T0 + 120))
    store.flush()
    rows = {r["started_at"]: r["steps"] for r in store.recent_results("home")}
    assert rows[T0] == [] and rows[T0 + 120] == []  # up: no steps in the raw row
    assert rows[T0 + 60][0]["path"] == "/up"  # a failure keeps its steps
    state = store.states()[("home", "live")]
    assert '"path": "/up"' in state.steps and state.last_at == T0 + 120
    reader = Store(store.path, read_only=True)
    assert reader.states()[("home", "live")].steps == state.steps
    reader.db.conn.close()


def test_success_retention_keeps_failures_longer(store):
    store.record(res("up", T0 - 5 * DAY))
    store.record(res("down", T0 - 5 * DAY + 60, kind="timeout"))
    store.record(res("up", T0 - DAY))
    store.flush()
    store.prune(raw_retention=14 * DAY, rollup_retention=400 * DAY, success_retention=2 * DAY, now=T0)
    kept = [(r["status"], r["started_at"]) for r in store.recent_results("home")]
    assert kept == [("up", T0 - DAY), ("down", T0 - 5 * DAY + 60)]
    assert store.uptime("home", "live", 30 * DAY, now=T0)["count"] == 3  # the rollups still count them


def test_a_full_queue_drops_the_oldest_result_and_says_so(store, caplog):
    """While the database cannot be written, results queue up to a bound; past it the oldest goes,
    and the log says so instead of losing it silently."""
    store.writer.max_pending = 2
    for i in range(3):
        store.writer.record(res("up", T0 + i * 60))
    assert [p.row[2] for p in store.writer.pending] == [T0 + 60, T0 + 120]
    assert "the oldest is dropped" in caplog.text


def test_figures_a_hostile_answer_makes_are_stored_without_breaking_the_write(store):
    """A server's generated_at of 1e400 parses as inf: the write goes on, the figure is dropped."""
    odd = [float("inf"), float("nan"), 1e300, -2.5]
    for i, skew in enumerate(odd):
        result = res("up", T0 + i * 60, check="totp")
        result.skew_s, result.cert_days = skew, 12.25
        store.record(result)
    assert store.flush()
    rows = store.recent_results("home", "totp", limit=10)
    assert [r["skew_s"] for r in reversed(rows)] == [None, None, 2**62 / 1000, -2.5]
    assert {r["cert_days"] for r in rows} == {12.25}

"""The monitor killed with SIGKILL at random moments, again and again: the database stays sound,
nothing committed is lost, and every due alert is delivered exactly once after de-duplication.

CI runs a small count; the full 50 kills: `MONITOR_CRASH_KILLS=50 .venv/bin/pytest tests/test_crash.py`.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time

from .conftest import instance_config, wait_for
from .receiver import Receiver

KILLS = int(os.environ.get("MONITOR_CRASH_KILLS", "8"))


def snapshot(db) -> tuple[set[tuple], set[tuple]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        results = set(conn.execute('select instance, "check", started_at, status from results'))
        incidents = set(conn.execute('select instance, "check", started_at, status from incidents'))
        return results, incidents
    finally:
        conn.close()


def test_sigkill_loop_loses_nothing_committed(sim, write_config, start_monitor, tmp_path):
    rng = random.Random(2026)
    receiver = Receiver()
    instances = [
        instance_config(sim.url, name="a", interval="1s", timeout="1s"),
        instance_config(sim.url_for("b"), name="b", interval="1s", timeout="1s", token=False),
    ]
    config = {
        "storage": {"path": str(tmp_path / "monitor.db"), "prune_interval": "1s"},
        "instances": instances,
        "notifiers": [
            {"name": "hook", "type": "webhook", "url": receiver.url + "/hook", "secret": "crash-test-key"}
        ],
        "alerts": {
            "failure_threshold": 1,
            "success_threshold": 1,
            "notify": ["hook"],
            "delivery": {"backoff_initial": "1s", "backoff_max": "2s"},
        },
    }
    path = write_config(config)
    db = tmp_path / "monitor.db"
    seen_results: set[tuple] = set()
    seen_incidents: set[tuple] = set()
    faults = [[], ["wrong_codes"], ["server_error"], [], ["clock_skew"]]
    try:
        for i in range(KILLS):
            sim.set_faults(faults[i % len(faults)])
            sim.set_faults(faults[(i + 1) % len(faults)], instance="b")
            receiver.refusing = i % 3 == 1  # sometimes the receiver is down when the kill comes
            mon = start_monitor(path)
            time.sleep(rng.uniform(0.3, 2.0))
            mon.stop(signal.SIGKILL)
            results, incidents = snapshot(db)
            assert seen_results <= results, f"kill {i}: committed results lost"
            assert seen_incidents <= incidents, f"kill {i}: incidents lost"
            seen_results, seen_incidents = results, incidents
        assert len(seen_results) >= KILLS
        assert seen_incidents, "the faults made no incident"
        # a last clean run on the file every kill left: it goes on writing and drains the outbox
        sim.set_faults([])
        sim.set_faults([], instance="b")
        receiver.refusing = False
        mon = start_monitor(path)
        wait_for(lambda: len(snapshot(db)[0]) > len(seen_results), message="writes after the kills")
        wait_for(lambda: not pending(db), timeout=30, message="the outbox drained")
        assert mon.stop() == 0
        assert "Traceback" not in mon.output()
    finally:
        receiver.close()
    decided = delivery_ids(db)
    assert decided, "no alert was decided"
    received = [r["headers"].get("x-monitor-delivery") for r in receiver.requests]
    assert set(received) == decided  # every due alert arrived, and nothing else
    assert len(received) - len(set(received)) <= KILLS  # repeats only from kills mid-send


def pending(db) -> list:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select id from outbox where state != 'delivered'").fetchall()
    finally:
        conn.close()


def delivery_ids(db) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("select delivery_id from outbox")}
    finally:
        conn.close()

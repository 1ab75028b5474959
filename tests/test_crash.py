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
    instances = [
        instance_config(sim.url, name="a", interval="1s", timeout="1s"),
        instance_config(sim.url_for("b"), name="b", interval="1s", timeout="1s", token=False),
    ]
    config = {
        "storage": {"path": str(tmp_path / "monitor.db"), "prune_interval": "1s"},
        "instances": instances,
    }
    path = write_config(config)
    db = tmp_path / "monitor.db"
    seen_results: set[tuple] = set()
    seen_incidents: set[tuple] = set()
    faults = [[], ["wrong_codes"], ["server_error"], [], ["clock_skew"]]
    for i in range(KILLS):
        sim.set_faults(faults[i % len(faults)])
        sim.set_faults(faults[(i + 1) % len(faults)], instance="b")
        mon = start_monitor(path)
        time.sleep(rng.uniform(0.3, 2.0))
        mon.stop(signal.SIGKILL)
        results, incidents = snapshot(db)
        assert seen_results <= results, f"kill {i}: committed results lost"
        assert seen_incidents <= incidents, f"kill {i}: incidents lost"
        seen_results, seen_incidents = results, incidents
    assert len(seen_results) >= KILLS
    assert seen_incidents, "the faults made no incident"
    # a last clean run: the monitor starts on the file every kill left, and goes on writing
    mon = start_monitor(path)
    wait_for(lambda: len(snapshot(db)[0]) > len(seen_results), message="writes after the kills")
    assert mon.stop() == 0
    assert "Traceback" not in mon.output()

"""The system clock jumping back or forward does not stop the checks (libfaketime moves the wall
clock of the monitor process only; its monotonic clock is left alone, as on a real host)."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from .conftest import instance_config, wait_for

LIB = next(
    (
        p
        for p in (
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        )
        if shutil.os.path.exists(p)
    ),
    None,
)


def count(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select count(*) from results").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("jump", ["-1h", "+1h"])
def test_checks_keep_running_after_a_clock_jump(jump, sim, write_config, start_monitor, tmp_path):
    assert LIB, "libfaketime is missing: ./dev test installs the Debian package faketime"
    offset_file = tmp_path / "faketime"
    offset_file.write_text("+0\n")
    env = {
        "LD_PRELOAD": LIB,
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    inst = instance_config(sim.url, token=False, interval="1s", timeout="1s")
    inst["checks"] = {"ready": {"enabled": False}}
    db = tmp_path / "monitor.db"
    mon = start_monitor(write_config({"instances": [inst]}), env=env)
    wait_for(lambda: count(db) >= 3, message="runs before the jump")
    offset_file.write_text(f"{jump}\n")
    before = count(db)
    wait_for(lambda: "the system clock jumped" in mon.output(), timeout=10, message="the jump noticed")
    wait_for(lambda: count(db) >= before + 4, timeout=10, message="runs after the jump")
    time.sleep(2)
    after = count(db)
    assert after - before < 12, "a burst of catch-up runs after the jump"
    assert mon.proc.poll() is None

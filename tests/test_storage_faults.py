"""Storage faults on a running monitor: disk full, read-only, locked. A clear error, /ready 503,
checks go on in memory, and everything queued is written once the fault clears."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from monitor.models import Result, Status
from monitor.store import Store

from .conftest import instance_config, wait_for


def mount_tmpfs(path: Path, size: str = "2m") -> bool:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk):
        pytest.skip(
            "this machine does not allow mounting a tmpfs; test_disk_full_simulated covers the writer"
        )
    yield disk
    subprocess.run(["mount", "-o", "remount,rw", str(disk)], capture_output=True)
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("select count(*) from results").fetchone()[0]
    finally:
        conn.close()


def ready(mon) -> httpx.Response:
    return httpx.get(mon.url + "/ready", timeout=5)


def start(sim, write_config, start_monitor, db: Path):
    inst = instance_config(sim.url, token=False, interval="1s", timeout="1s")
    inst["checks"] = {"ready": {"enabled": False}}
    path = write_config({"storage": {"path": str(db)}, "instances": [inst]})
    mon = start_monitor(path)
    wait_for(lambda: ready(mon).status_code == 200, message="/ready 200")
    wait_for(lambda: count(db) >= 2, message="first results")
    return mon


def assert_outage_then_recovery(mon, db: Path, clear) -> None:
    response = wait_for(lambda: (r := ready(mon)).status_code == 503 and r, timeout=10, message="/ready 503")
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database:writable"][0]["status"] == "fail"
    outage_started = time.time()
    time.sleep(3)  # checks keep running while the database cannot be written
    clear()
    wait_for(lambda: ready(mon).status_code == 200, timeout=15, message="/ready 200 again")
    conn = sqlite3.connect(db)
    during = conn.execute(
        "select count(*) from results where started_at between ? and ?", (outage_started, outage_started + 3)
    ).fetchone()[0]
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert during >= 2, "results made during the outage were lost"
    assert mon.proc.poll() is None
    assert "cannot write the database" in mon.output()
    assert "database writable again" in mon.output()
    assert "Traceback" not in mon.output()


def test_disk_full(small_disk, sim, write_config, start_monitor):
    db = small_disk / "monitor.db"
    mon = start(sim, write_config, start_monitor, db)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        for _ in range(4096):  # bounded: at most 4 MiB into a 2 MiB disk
            os.write(fd, b"\0" * 1024)
    os.close(fd)
    assert_outage_then_recovery(mon, db, clear=filler.unlink)
    assert "full" in mon.output()


def test_read_only_database_file(tmp_path, sim, write_config, start_monitor):
    """The database file made immutable (root ignores permission bits, not the immutable flag)."""
    db = tmp_path / "monitor.db"
    mon = start(sim, write_config, start_monitor, db)
    files = [str(db), f"{db}-wal"]  # never the -shm file: it is memory-mapped
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable flag")
    try:
        assert_outage_then_recovery(
            mon, db, clear=lambda: subprocess.run(["chattr", "-i", *files], check=True)
        )
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)


def test_database_locked_by_another_process(tmp_path, sim, write_config, start_monitor):
    db = tmp_path / "monitor.db"
    mon = start(sim, write_config, start_monitor, db)
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('begin exclusive')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"

        def release():
            locker.stdin.write("\n")
            locker.stdin.flush()
            locker.wait(5)

        assert_outage_then_recovery(mon, db, clear=release)
        assert "locked" in mon.output()
    finally:
        if locker.poll() is None:
            locker.kill()


def test_disk_full_simulated(tmp_path):
    """Where no tmpfs can be mounted: SQLite's own page limit makes the same SQLITE_FULL error."""
    store = Store(tmp_path / "m.db")
    pages = store.db.conn.execute("pragma page_count").fetchone()[0]
    store.db.conn.execute(f"pragma max_page_count = {pages}")
    for i in range(300):
        store.record(Result("home", "live", Status.UP, message="x" * 500, started_at=1_780_000_000 + i))
    assert store.flush() is False
    assert "full" in store.writer.last_error
    assert len(store.writer.pending) == 300
    store.db.conn.execute("pragma max_page_count = 1073741823")
    assert store.flush() is True
    assert len(store.recent_results("home", limit=1000)) == 300
    store.close()

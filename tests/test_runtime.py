"""monitor/runtime.py: the parts of `run` start in order and stop in reverse, and a part that
cannot start stops the ones already running."""

from __future__ import annotations

import logging
import socket
import sqlite3

import httpx
import pytest

from monitor import config
from monitor.config import ConfigError
from monitor.runtime import Runtime

ORDER = ["store", "alerting", "socket", "scheduler", "web"]


def settings(tmp_path, listen: str) -> config.Settings:
    raw = {
        "storage": {"path": str(tmp_path / "monitor.db")},
        "web": {"listen": listen},
        "instances": [{"name": "home", "url": "http://127.0.0.1:9", "interval": "1h"}],
    }
    return config.from_mapping(raw, env={})


async def test_the_parts_start_in_order_and_stop_in_reverse(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime = Runtime(settings(tmp_path, f"127.0.0.1:{port}"), None)
    monitor = await runtime.start()
    try:
        assert runtime.running == ORDER
        async with httpx.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.1:{port}/live")
        assert page.status_code == 200
        # the alert tables are there from the start, migrated by the store itself
        assert monitor.store is not None and "outbox" in monitor.store.db.table_names()
    finally:
        await runtime.stop()
    stopped = [
        r.getMessage().removeprefix("stopping the ")
        for r in caplog.records
        if "stopping the" in r.getMessage()
    ]
    assert stopped == ORDER[::-1]
    assert runtime.running == []
    assert not monitor.scheduler.running
    with pytest.raises(sqlite3.ProgrammingError):  # the store is closed
        monitor.store.db.execute("select 1")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/live", timeout=2)


async def test_a_taken_port_stops_what_started_before_any_check_runs(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = Runtime(settings(tmp_path, f"127.0.0.1:{port}"), None)
        with pytest.raises(ConfigError, match=f"web.listen: cannot listen on 127.0.0.1:{port}"):
            await runtime.start()
    assert runtime.running == []
    assert runtime.monitor is not None and not runtime.monitor.scheduler.running
    assert runtime.monitor.latest == {}  # no check ran
    with pytest.raises(sqlite3.ProgrammingError):
        runtime.monitor.store.db.execute("select 1")  # type: ignore[union-attr]

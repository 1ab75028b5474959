"""/ready over real HTTP: 503 with IETF health JSON naming the failing part, when the database
cannot be written or the scheduler has not run recently; 200 again once both recover."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from monitor import config
from monitor.models import Result, Status
from monitor.scheduler import Monitor
from monitor.store import Store
from monitor.web import create_app
from tests.conftest import free_port, wait_for


class ServedMonitor:
    """A Monitor (never started: no checks run) and its web app, served by uvicorn in a thread.

    The store is opened on the server's thread, which owns the SQLite connection, as in `run`.
    """

    def __init__(self, build: Callable[[], Monitor]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.monitor: Monitor | None = None
        self.server: uvicorn.Server | None = None
        self._build = build
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.monitor = self._build()
        cfg = uvicorn.Config(
            create_app(self.monitor), host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
        )
        self.server = uvicorn.Server(cfg)
        await self.server.serve()

    def start(self) -> ServedMonitor:
        self.thread.start()
        wait_for(lambda: self.server is not None and self.server.started, timeout=10, message="uvicorn")
        return self

    def call(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., ServedMonitor]]:
    started: list[ServedMonitor] = []

    def serve(*, idle_for: float = 0.0, busy_timeout_ms: int | None = None) -> ServedMonitor:
        settings = config.from_mapping(
            {
                "instances": [
                    {"name": "home", "url": "http://127.0.0.1:9", "interval": "10s", "timeout": "2s"}
                ],
                "storage": {"path": str(tmp_path / "monitor.db")},
            }
        )

        def build() -> Monitor:
            store = Store(settings.storage.path)
            if busy_timeout_ms is not None:  # fail fast on a lock instead of waiting 5 s
                store.db.conn.execute(f"pragma busy_timeout = {busy_timeout_ms}")
            monitor = Monitor(settings, store)
            monitor.stats.started_monotonic -= idle_for
            return monitor

        server = ServedMonitor(build).start()
        started.append(server)
        return server

    yield serve
    for server in started:
        server.stop()


def test_ready_while_recently_started(served) -> None:
    response = httpx.get(served().url + "/ready", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "pass"


def test_ready_names_the_scheduler_when_no_check_ran_recently(served) -> None:
    response = httpx.get(served(idle_for=3600).url + "/ready", timeout=5)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert body["status"] == "fail" and body["output"] == "failing: scheduler"
    assert body["checks"]["scheduler:recent-run"][0]["status"] == "fail"
    assert body["checks"]["database:writable"][0]["status"] == "pass"
    assert httpx.get(served(idle_for=3600).url + "/live", timeout=5).status_code == 200  # alive all the same


def test_ready_names_the_database_when_it_cannot_be_written_and_recovers(served, tmp_path: Path) -> None:
    server = served(busy_timeout_ms=300)
    assert server.monitor is not None
    blocker = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    blocker.execute("begin exclusive")
    try:
        server.call(server.monitor.handle_result(Result("home", "live", Status.UP, latency_ms=5.0)))
        response = httpx.get(server.url + "/ready", timeout=5)
        assert response.status_code == 503
        body = response.json()
        assert body["output"] == "failing: database"
        database = body["checks"]["database:writable"][0]
        assert database["status"] == "fail" and "locked" in database["output"]
        assert httpx.get(server.url + "/live", timeout=5).status_code == 200
    finally:
        blocker.execute("rollback")
        blocker.close()
    server.call(server.monitor.handle_result(Result("home", "live", Status.UP, started_at=time.time())))
    server.call(server.monitor._retry_flush())  # the scheduler's periodic retry, every 5 s in `run`
    again = httpx.get(server.url + "/ready", timeout=5)
    assert again.status_code == 200, again.text

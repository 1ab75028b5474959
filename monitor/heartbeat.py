"""The monitor watched from outside: a dead man's switch such as a Healthchecks check.

Every `interval`, GET {url} while the monitor is ready (the same two conditions as its /ready: the
database writable, a check run recently), GET {url}/fail when it is not. When the monitor dies or
its loop stalls, the pings stop and the receiver raises the alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from monitor import __version__
from monitor.config.push import Heartbeat as HeartbeatSettings
from monitor.push import PushError, join_path, send_once

if TYPE_CHECKING:
    from monitor.scheduler import Monitor

log = logging.getLogger("monitor.heartbeat")


def readiness(monitor: Monitor) -> str | None:
    """None when the monitor is ready, else why not (one line, no secret): what /ready checks."""
    store = monitor.store
    if store is not None and not store.healthy:
        return "database not writable"
    if not monitor.scheduler_fresh():
        return "checks overdue"
    return None


class Heartbeat:
    def __init__(self, cfg: HeartbeatSettings, problem: Callable[[], str | None]) -> None:
        self.cfg = cfg
        self.problem = problem
        self.sent = 0
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._last_problem: str | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._task = asyncio.create_task(self._run())
        log.info("heartbeat every %gs", self.cfg.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.cfg.interval)

    async def beat(self) -> None:
        """One ping: {url} when ready, {url}/fail otherwise. Never raises."""
        assert self._client is not None
        problem = self.problem()
        if problem != self._last_problem:
            if problem:
                log.warning("heartbeat: reporting failure (%s)", problem)
            elif self._last_problem:
                log.info("heartbeat: ready again")
            self._last_problem = problem
        url = self.cfg.target_url()
        if problem:
            url = join_path(url, "/fail")
        headers = {"User-Agent": f"2fauth-monitor/{__version__}", "Accept-Encoding": "identity"}
        try:
            await send_once(self._client, "GET", url, headers, b"", self.cfg.timeout)
        except PushError as exc:
            if not self._failing:
                log.warning("heartbeat ping failed: %s", exc)
            self._failing = True
            return
        except Exception:
            log.exception("heartbeat ping failed")
            return
        self.sent += 1
        if self._failing:
            log.info("heartbeat ping delivered again")
            self._failing = False

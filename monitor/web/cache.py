"""The status page and its JSON, built off the event loop and kept for a few seconds.

With many instances a page reads tens of thousands of rollup rows and renders megabytes: done
on the event loop, that would hold up every check for as long. Pages are therefore built in one
worker thread with its own read-only SQLite connection (SQLite runs queries without the GIL, and
WAL lets a reader work beside the writer), and each built page is served for `max_age` seconds.
Concurrent requests for the same page share one build.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client.core import Metric, SummaryMetricFamily

from monitor.scheduler import Monitor
from monitor.store import Store, StoreError
from monitor.web.source import Source

MAX_AGE = 5.0  # seconds a built page is served before it is built again


class PageCache:
    def __init__(self, monitor: Monitor, max_age: float = MAX_AGE) -> None:
        self.monitor = monitor
        self.max_age = max_age
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._building: dict[Any, asyncio.Future[Any]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-builder")
        self._local = threading.local()
        self.builds = 0
        self.build_seconds = 0.0

    def _reader(self) -> Source:
        """A Source on this worker thread's own read-only connection."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.monitor.settings.storage.path, read_only=True)
            self._local.store = store
        return Source(self.monitor.settings, store)

    def _threaded(self) -> bool:
        store = self.monitor.store
        return store is not None and store.path != ":memory:"

    async def get(self, key: Any, build: Callable[[Source], Any]) -> Any:
        """The page for `key`, built by `build(source)` at most once every `max_age` seconds."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.max_age:
            return entry[1]
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            started = time.perf_counter()
            value = await self._build(build)
            self.builds += 1
            self.build_seconds += time.perf_counter() - started
            self._entries[key] = (time.monotonic(), value)
            if len(self._entries) > 256:  # windows x instances: bounded all the same
                self._entries.pop(next(iter(self._entries)))
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a build nobody else awaits is not logged
            raise
        finally:
            del self._building[key]

    async def _build(self, build: Callable[[Source], Any]) -> Any:
        if not self._threaded():
            return build(Source.of(self.monitor))
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: build(self._reader())
            )
        except StoreError:
            return build(Source.of(self.monitor))  # no file to read yet: build from the live store

    def collect(self) -> Iterator[Metric]:
        """For /metrics: how many page builds, and how long they took."""
        yield SummaryMetricFamily(
            "twofauth_monitor_page_build_seconds",
            "Time to build the status page or its JSON (in a worker thread, then served for a few seconds)",
            count_value=self.builds,
            sum_value=self.build_seconds,
        )

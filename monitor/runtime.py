"""The one place that builds the running parts, starts them in order and stops them in reverse.

`run` and `demo` both go through `serve`. The parts, in the order they start:

1. the store: the SQLite file, with every migration (history and alerting tables);
2. the scheduler (`Monitor`), built but not yet running;
3. alerting: the maintenance hook, the alerts that were due at the last stop, the listener and the
   outbox worker;
4. metrics: the /metrics registry, handed the page cache's and the outbox's collectors;
5. push targets (a listener) and the heartbeat, when configured;
6. the status page's socket (bound before any check runs, so a taken port fails at once);
7. the scheduler's jobs;
8. the web server (uvicorn) on that socket.

Each part that needs stopping pushes its stop onto a stack as it starts; `stop` pops them, so
they stop in reverse: the web server, the scheduler (in-flight checks finish, queued writes go
out), alerting (retries end, unsent deliveries stay in the outbox), the store. A part that fails
to start stops the ones already running the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

try:
    from uvloop import new_event_loop as LOOP_FACTORY
except ImportError:  # no wheel for this platform: asyncio's own loop
    LOOP_FACTORY = None  # type: ignore[assignment]

from monitor import alerts
from monitor import config as configuration
from monitor.config import ConfigError, Settings
from monitor.heartbeat import Heartbeat, readiness
from monitor.push import Pusher
from monitor.scheduler import Monitor
from monitor.store import Store, StoreError
from monitor.web import connections, create_app
from monitor.web.cache import PageCache
from monitor.web.metrics import MonitorMetrics

log = logging.getLogger("monitor")

SCHEDULER_STOP_SECONDS = 5.0  # in-flight checks get this long to finish at a stop
WEB_STOP_SECONDS = 3.0  # requests in flight get this long

T = TypeVar("T")


class QuietServer(uvicorn.Server):
    """uvicorn's Server without its own signal handling: `serve` owns SIGINT, SIGTERM and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind(listen: str) -> socket.socket:
    """The status page's listening socket, or a one-line ConfigError saying why not."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError([f"web.listen: cannot listen on {listen}: {exc.strerror or exc}"]) from None
    # accepted connections inherit it: uvicorn writes a response's head and body separately, and
    # Nagle's algorithm then holds a small body back for the client's delayed ACK (about 40 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def open_store(settings: Settings) -> Store:
    try:
        # a short busy timeout: the store is written from the event loop, which must not stall
        # for long behind another process's lock; the queue is retried every 2 s
        return Store(settings.storage.path, busy_timeout=0.25)
    except StoreError as exc:
        raise ConfigError([f"storage.path: {exc}"]) from None


class Runtime:
    """The parts of one running monitor; `start` and `stop` them from the event loop."""

    def __init__(self, settings: Settings, config_path: str | None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.monitor: Monitor | None = None
        self.metrics: MonitorMetrics | None = None
        self.server: QuietServer | None = None
        self.server_task: asyncio.Task[None] | None = None
        self._stops: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    async def start(self) -> Monitor:
        """Build and start every part in order; on a failure, stop what started and raise."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> Monitor:
        # visitors' connections must never take the descriptors the checks need
        open_files = connections.raise_open_file_limit()
        store = open_store(self.settings)
        self._push("store", _async(store.close))
        monitor = self.monitor = Monitor(self.settings, store)
        running = alerts.start(monitor)
        if running is not None:
            self._push("alerting", running.stop)
        cache = PageCache(monitor)
        collectors: list[Any] = [cache] + ([running.collector] if running is not None else [])
        self.metrics = MonitorMetrics(monitor, collectors)
        await self._start_reporting(monitor)
        sock = bind(self.settings.web.listen) if self.settings.web.enabled else None
        if sock is not None:
            self._push("socket", _async(sock.close))
        await monitor.start()
        self._push("scheduler", lambda: monitor.stop(timeout=SCHEDULER_STOP_SECONDS))
        if sock is not None:
            self._start_web(monitor, cache, sock, open_files)
        return monitor

    async def _start_reporting(self, monitor: Monitor) -> None:
        """Push targets hear every result; the heartbeat tells an outside watcher we are alive."""
        if self.settings.push:
            pusher = Pusher(self.settings, monitor.latest)
            monitor.listeners.append(pusher.listener)
            await pusher.start()
            self._push("push targets", pusher.stop)
        if self.settings.heartbeat is not None:
            heartbeat = Heartbeat(self.settings.heartbeat, lambda: readiness(monitor))
            await heartbeat.start()
            self._push("heartbeat", heartbeat.stop)

    def _start_web(self, monitor: Monitor, cache: PageCache, sock: socket.socket, open_files: int) -> None:
        app = create_app(monitor, self.metrics, cache)
        self.server = QuietServer(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=int(WEB_STOP_SECONDS),
                server_header=False,
                **connections.uvicorn_settings(open_files),
            )
        )
        self.server_task = asyncio.create_task(self.server.serve(sockets=[sock]))
        self._push("web", self._stop_web)
        log.info("status page on http://%s/", self.settings.web.listen)

    async def _stop_web(self) -> None:
        assert self.server is not None and self.server_task is not None
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server_task, timeout=WEB_STOP_SECONDS)

    def _push(self, name: str, stop: Callable[[], Awaitable[None]]) -> None:
        log.debug("started the %s", name)
        self._stops.append((name, stop))

    @property
    def running(self) -> list[str]:
        """The parts started and not yet stopped, in the order they started."""
        return [name for name, _ in self._stops]

    async def stop(self) -> None:
        """Stop the started parts in reverse order; one part's failure does not keep the rest running."""
        while self._stops:
            name, stop = self._stops.pop()
            log.debug("stopping the %s", name)
            try:
                await stop()
            except Exception:
                log.exception("stopping the %s failed", name)

    def reload(self) -> None:
        """SIGHUP: read the configuration again; a bad one is refused and the running one kept."""
        try:
            new = configuration.load_any(self.config_path)
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload refused: %s", line)
            log.error("reload refused: the running configuration is kept")
            return
        assert self.monitor is not None
        changes = self.monitor.apply(new)
        log.info("configuration reloaded: %s", "; ".join(changes) or "no change to checks")


def _async(close: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        close()

    return run


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` in a new event loop until it returns: uvloop's where it is installed (its
    transports and timers in C: about 4% less CPU per check, measured side by side), else asyncio's."""
    with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
        return runner.run(main)


async def serve(
    settings: Settings, config_path: str | None, *, on_started: Callable[[Monitor], Any] | None = None
) -> int:
    """Run every part in one event loop until SIGINT or SIGTERM (or the web server ends)."""
    runtime = Runtime(settings, config_path)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, runtime.reload)
    monitor = await runtime.start()
    if on_started is not None:
        on_started(monitor)
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if runtime.server_task is not None:
        waiters.append(runtime.server_task)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing in-flight checks and writes")
    await runtime.stop()
    waiters[0].cancel()
    log.info("stopped")
    return 0

"""Serving the simulator with uvicorn: blocking `run()`, and `start_in_thread()` for tests.

We bind the listening socket ourselves so that `down` on the default instance can make the port
really refuse: the listener is closed (connect() then gets ECONNREFUSED) and re-opened on the
same port when the fault is cleared through the Python handle. `down` set over HTTP, or on a
`/s/<name>` instance, cannot close a shared port: those connections are reset instead (app.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from .accounts import Account
from .app import SimulatorApp, create_app
from .faults import DEFAULT_INSTANCE, FaultSpec, Flavour, Registry, Release
from .tokens import DEFAULT_TOKEN

logger = logging.getLogger("monitor.simulator")
T = TypeVar("T")
START_TIMEOUT = 10.0


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _SimServer(uvicorn.Server):
    """A uvicorn server that can stop and resume listening, for a `down` that really refuses."""

    def __init__(self, config: uvicorn.Config, registry: Registry, address: tuple[str, int]) -> None:
        super().__init__(config)
        self.registry = registry
        self.address = address
        self.listening = True
        self.loop: asyncio.AbstractEventLoop | None = None
        # uvicorn's `started` turns true inside its startup, before a `down` at start has closed the
        # port: callers wait for `ready`, so that their first set_faults comes after that close
        self.ready = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.registry.get(DEFAULT_INSTANCE).has("down"):
            await self.set_listening(False)
        self.ready = True

    async def set_listening(self, on: bool) -> None:
        """Close the listening socket (connections refused) or open a new one on the same port."""
        if on == self.listening:
            return
        if not on:
            for server in self.servers:
                server.close()
            self.listening = False
            return
        factory = functools.partial(
            self.config.http_protocol_class,  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        server = await asyncio.get_running_loop().create_server(factory, sock=_listen(*self.address))
        self.servers.append(server)
        self.listening = True


def _server(
    app: Starlette, host: str, port: int, *, log_level: str, in_thread: bool
) -> tuple[_SimServer, socket.socket]:
    assert isinstance(app, SimulatorApp)
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        access_log=False,  # one debug line per request comes from the app instead
        log_level=log_level,
        log_config=None if in_thread else LOGGING_CONFIG,
        server_header=False,
        date_header=False,  # the app sends Date from the (possibly skewed) instance clock
        timeout_graceful_shutdown=1 if in_thread else 5,
    )
    return _SimServer(config, app.registry, (host, sock.getsockname()[1])), sock


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    flavour: Flavour = "upstream",
    faults: FaultSpec = (),
    tokens: Iterable[str] = (DEFAULT_TOKEN,),
    accounts: Iterable[Account] | None = None,
    throttle: int = 60,
    release: Release = "8.0.1",
    version: str | None = None,
    encryption: bool = True,
    skew: float = 120,
    delay: float = 3.0,
    log_level: str = "warning",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. With `down` on the default instance the port refuses throughout.

    `on_listening` gets the base URL once the port is bound (a port of 0 is resolved by then).
    """
    app = create_app(
        flavour=flavour,
        faults=faults,
        tokens=tokens,
        accounts=accounts,
        throttle=throttle,
        release=release,
        version=version,
        encryption=encryption,
        skew=skew,
        delay=delay,
    )
    server, sock = _server(app, host, port, log_level=log_level, in_thread=False)
    if on_listening is not None:
        on_listening(_base_url(host, sock.getsockname()[1]))
    server.run(sockets=[sock])


class SimHandle:
    """A simulator running in a background thread; every call hops onto the server's event loop."""

    def __init__(
        self, server: _SimServer, thread: threading.Thread, app: SimulatorApp, host: str, port: int
    ) -> None:
        self._server = server
        self._thread = thread
        self.app = app
        self.host = host
        self.port = port
        self.url = _base_url(host, port)

    def url_for(self, name: str) -> str:
        """The base URL of a named instance (`/s/<name>`); "default" is the bare root."""
        return self.url if name == DEFAULT_INSTANCE else f"{self.url}/s/{name}"

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._server.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._server.loop).result(timeout=START_TIMEOUT)

    def set_faults(
        self,
        faults: Iterable[str],
        instance: str = DEFAULT_INSTANCE,
        *,
        delay: float | None = None,
        skew: float | None = None,
        refuse: bool = True,
    ) -> dict[str, Any]:
        """Replace an instance's faults. `down` on "default" closes the port unless `refuse=False`."""
        names = [faults] if isinstance(faults, str) else list(faults)

        async def apply() -> dict[str, Any]:
            target = self.app.registry.get(instance)
            target.set_faults(names, delay=delay, skew=skew)
            if instance == DEFAULT_INSTANCE:
                await self._server.set_listening(not (refuse and target.has("down")))
            return target.snapshot()

        return self._call(apply())

    def state(self, instance: str = DEFAULT_INSTANCE) -> dict[str, Any]:
        """Faults and counters of one instance, as `GET /__sim/state` shows them."""

        async def read() -> dict[str, Any]:
            return self.app.registry.get(instance).snapshot()

        return self._call(read())

    def reset(self, instance: str | None = None) -> None:
        """Clear faults, counters and accounts of one instance, or of all; listen again if refused."""

        async def clear() -> None:
            self.app.registry.reset(instance)
            await self._server.set_listening(True)

        self._call(clear())

    def stop(self) -> None:
        """Stop serving and wait for the thread (a few seconds at most)."""
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_until_serving(handle: SimHandle, thread: threading.Thread, server: _SimServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not server.ready:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    if not server.listening:
        return
    while True:
        try:
            httpx.get(f"{handle.url}/__sim/state", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def start_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    flavour: Flavour = "upstream",
    faults: FaultSpec = (),
    tokens: Iterable[str] = (DEFAULT_TOKEN,),
    accounts: Iterable[Account] | None = None,
    throttle: int = 60,
    release: Release = "8.0.1",
    version: str | None = None,
    encryption: bool = True,
    skew: float = 120,
    delay: float = 3.0,
    log_level: str = "warning",
) -> SimHandle:
    """Serve on a free loopback port in a daemon thread; return once it answers."""
    app = create_app(
        flavour=flavour,
        faults=faults,
        tokens=tokens,
        accounts=accounts,
        throttle=throttle,
        release=release,
        version=version,
        encryption=encryption,
        skew=skew,
        delay=delay,
    )
    assert isinstance(app, SimulatorApp)
    server, sock = _server(app, host, port, log_level=log_level, in_thread=True)
    bound_port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"2fauth-sim-{bound_port}", daemon=True
    )
    thread.start()
    handle = SimHandle(server, thread, app, host, bound_port)
    try:
        _wait_until_serving(handle, thread, server)
    except BaseException:
        handle.stop()
        raise
    return handle

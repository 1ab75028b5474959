"""The status server's connections: visitors can never starve the monitor's own checks.

Each connection must send a complete request head within HEADER_TIMEOUT (a half-open or dripping
connection is closed), idle keep-alive connections close after KEEP_ALIVE, and above
`max_connections` the oldest connection still waiting for its head is closed to make room. The
process's open-file limit is raised to its hard limit at start, and the cap stays well under it,
so the checks always have file descriptors for their own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("monitor.web")

HEADER_TIMEOUT = 10.0  # seconds for a request's head to arrive
KEEP_ALIVE = 5.0  # seconds an idle keep-alive connection stays open
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_CONNECTIONS = 1000
RESERVED_FDS = 256  # file descriptors kept for the checks, the database and the notifiers


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def connection_cap(open_files: int) -> int:
    """How many status-page connections may be open at once, leaving RESERVED_FDS for the rest."""
    return max(16, min(MAX_CONNECTIONS, open_files - RESERVED_FDS))


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head and a cap on connections."""

    max_connections = MAX_CONNECTIONS
    waiting: OrderedDict[GuardedH11, None] = OrderedDict()  # connections waiting for a head, oldest first

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()
        while len(self.connections) > self.max_connections and len(self.waiting) > 1:
            oldest = next(iter(self.waiting))
            if oldest is self:
                break
            oldest._close("too many connections")

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        if self.cycle is not None and self.cycle is not before:
            self._stop_waiting()  # a whole head arrived: the request runs
        elif self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._wait_for_head()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        self._stop_waiting()
        self.waiting[self] = None
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._close, "no request head in time")

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.waiting.pop(self, None)

    def _close(self, why: str) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_settings(open_files: int) -> dict[str, Any]:
    """The uvicorn.Config arguments that bound what visitors can hold."""
    GuardedH11.max_connections = connection_cap(open_files)
    return {
        "http": GuardedH11,
        "timeout_keep_alive": KEEP_ALIVE,
        "h11_max_incomplete_event_size": MAX_HEAD,
        "limit_concurrency": GuardedH11.max_connections + 64,  # 503 beyond, never an accept failure
        "backlog": 2048,
        "proxy_headers": False,  # X-Forwarded-For is read by guard.ForwardedFor, per web.trusted_proxies
    }

"""The status server: every route it answers, and the guard in front of them all."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.scheduler import Monitor
from monitor.web import openapi
from monitor.web.cache import PageCache
from monitor.web.guard import BasicAuthGate, ForwardedFor, RequestLimits, SecurityHeaders
from monitor.web.handlers import Handlers
from monitor.web.metrics import MonitorMetrics
from monitor.web.render import STATIC

READ = ["GET", "HEAD"]  # the server only reads: every GET also answers HEAD


def routes(h: Handlers) -> list[BaseRoute]:
    return [
        Route("/", h.index, methods=READ),
        Route("/instances/{name}", h.instance, methods=READ),
        Route("/instances/{name}/screenshots/{file}", h.screenshot, methods=READ),
        Route("/api/v1/status", h.api_status, methods=READ),
        Route("/api/v1/instances/{name}/history", h.api_history, methods=READ),
        Route(openapi.PATH, h.api_contract, methods=READ),
        Route("/badge/{name}/{kind}.{fmt}", h.badge, methods=READ),
        Route("/feed.atom", h.feed_atom, methods=READ),
        Route("/metrics", h.metrics, methods=READ),
        Route("/logo", h.logo, methods=READ),
        Route("/live", h.live, methods=READ),
        Route("/ready", h.ready, methods=READ),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(
    monitor: Monitor, scrape: MonitorMetrics | None = None, cache: PageCache | None = None
) -> Starlette:
    """The ASGI app serving one running monitor's page, API, badges, feed and /metrics."""
    handlers = Handlers(monitor, scrape, cache)
    return Starlette(
        routes=routes(handlers),
        middleware=[  # the settings are read per request: a SIGHUP reload may change them
            Middleware(ForwardedFor, trusted=lambda: monitor.settings.web.trusted_proxies),
            Middleware(SecurityHeaders),
            Middleware(RequestLimits),
            Middleware(
                BasicAuthGate,
                settings=lambda: monitor.settings.web.basic_auth,
                realm=lambda: monitor.settings.web.title,
            ),
        ],
        exception_handlers={HTTPException: handlers.error},
    )

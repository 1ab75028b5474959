"""Routes only: each maps a request onto monitor.status, pages, badges, feed or metrics.

Handlers are `async def` on purpose: they run on the event loop's thread, which owns the
SQLite connection. The monitor's own /live and /ready stay cheap and open, for Docker's
HEALTHCHECK and Kubernetes probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor import badges, feed, metrics, openapi, pages, status
from monitor.pagecache import PageCache
from monitor.webguard import BasicAuthGate, ForwardedFor, RequestLimits, SecurityHeaders

if TYPE_CHECKING:
    from monitor.scheduler import Monitor

HEALTH_JSON = "application/health+json"
NO_CACHE = {"Cache-Control": "no-cache"}
BADGE_CACHE = {"Cache-Control": "max-age=60, s-maxage=60", "Access-Control-Allow-Origin": "*"}


def create_app(monitor: Monitor) -> Starlette:
    scrape = metrics.attach(monitor)
    cache = PageCache(monitor)
    metrics.EXTRA_COLLECTORS[:] = [c for c in metrics.EXTRA_COLLECTORS if not isinstance(c, PageCache)]
    metrics.EXTRA_COLLECTORS.append(cache)

    def source() -> status.Source:
        return status.Source.of(monitor)

    def window(request: Request) -> str:
        try:
            return status.parse_window(
                request.query_params.get("window"), monitor.settings.web.default_window
            )
        except status.WindowError as exc:
            raise HTTPException(400, str(exc)) from None

    def page_headers(request: Request) -> dict[str, str]:
        refresh = status.refresh_seconds(monitor.settings)
        off = request.query_params.get("refresh") == "0"
        return {**NO_CACHE, **({"Refresh": str(refresh)} if refresh and not off else {})}

    async def html(
        request: Request, template: str, window_: str, instance_: str | None = None, root: str = "", **kw: Any
    ) -> HTMLResponse:
        refresh_off = request.query_params.get("refresh") == "0"

        def build(src: status.Source) -> str:
            ctx = status.page_context(src, window=window_, instance=instance_)
            links = pages.links_for(src.settings, ctx["window"], root=root, refresh_off=refresh_off, **kw)
            return pages.render(template, ctx, links)

        body = await cache.get((template, window_, instance_, refresh_off), build)
        return HTMLResponse(body, headers=page_headers(request))

    def known(name: str) -> str:
        if monitor.settings.instance(name) is None:
            raise HTTPException(404, f"there is no instance named '{name[:64]}'")
        return name

    async def index(request: Request) -> HTMLResponse:
        return await html(request, "index.html", window(request))

    async def instance(request: Request) -> HTMLResponse:
        name = known(request.path_params["name"])
        return await html(request, "instance.html", window(request), name, root="../", instance_page=name)

    async def api_status(request: Request) -> Response:
        win = window(request)
        body = await cache.get(
            ("api", win), lambda src: JSONResponse(status.page_context(src, window=win)).body
        )
        return Response(body, media_type="application/json", headers=NO_CACHE)

    async def api_history(request: Request) -> JSONResponse:
        name = known(request.path_params["name"])
        check = request.query_params.get("check") or None
        if check is not None and check not in monitor.settings.instance(name).enabled_checks():  # type: ignore[union-attr]
            raise HTTPException(400, f"check must be one of the instance's checks, not '{check[:20]}'")
        body = status.history(source(), name, check, window(request))
        return JSONResponse(body, headers=NO_CACHE)

    async def api_contract(request: Request) -> JSONResponse:
        return JSONResponse(openapi.document(), headers=NO_CACHE)

    async def badge(request: Request) -> Response:
        name, kind, fmt = request.path_params["name"], request.path_params["kind"], request.path_params["fmt"]
        if fmt == "json" and kind == "shields":
            kind = request.query_params.get("type", "status")
        elif fmt != "svg":
            raise HTTPException(
                404, "badges are /badge/{instance}/{status,uptime,latency}.svg or shields.json"
            )
        try:
            data = badges.badge(
                source(),
                name,
                kind,
                request.query_params.get("window"),
                label=request.query_params.get("label"),
            )
        except (badges.BadgeError, status.WindowError) as exc:
            raise HTTPException(400, str(exc)) from None
        code = 200 if data is not None else 404
        data = data or badges.not_found(name)
        if fmt == "json":
            return JSONResponse(badges.shields_json(data), status_code=code, headers=BADGE_CACHE)
        svg = badges.render_svg(data)
        return Response(svg, status_code=code, media_type="image/svg+xml", headers=BADGE_CACHE)

    async def feed_atom(request: Request) -> Response:
        body = feed.render_feed(source())  # absolute links only from web.base_url
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=NO_CACHE)

    async def metrics_route(request: Request) -> Response:
        body, content_type = scrape.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type, headers=NO_CACHE)

    async def logo(request: Request) -> Response:
        path: Path | None = monitor.settings.web.logo
        media = pages.LOGO_TYPES.get(path.suffix.lower()) if path else None
        if path is None or media is None or not path.is_file():
            raise HTTPException(404, "no logo is configured")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    async def live(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    async def ready(request: Request) -> JSONResponse:
        checks: dict[str, list[dict[str, str]]] = {}
        failing = []
        store = monitor.store
        db_ok = store is not None and store.healthy
        checks["database:writable"] = [
            {
                "componentName": "database",
                "status": "pass" if db_ok else "fail",
                **(
                    {}
                    if db_ok
                    else {"output": (store.writer.last_error if store else "no database") or "not writable"}
                ),
            }
        ]
        if not db_ok:
            failing.append("database")
        fresh = monitor.scheduler_fresh()
        checks["scheduler:recent-run"] = [
            {"componentName": "scheduler", "status": "pass" if fresh else "fail"}
        ]
        if not fresh:
            failing.append("scheduler")
        body = {"status": "fail" if failing else "pass", "checks": checks}
        if failing:
            body["output"] = f"failing: {', '.join(failing)}"
        return JSONResponse(body, status_code=503 if failing else 200, media_type=HEALTH_JSON)

    async def error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"error": detail}, status_code=code, headers=getattr(exc, "headers", None))
        ctx: dict[str, Any] = {
            "title": monitor.settings.web.title,
            "window": monitor.settings.web.default_window,
        }
        ctx |= {"generated_at": None, "refresh": 0, "description": "", "notice": ""}
        depth = request.url.path.count("/") - 1
        links = pages.links_for(monitor.settings, ctx["window"], root="../" * depth)
        heading = {404: "Not found", 400: "Bad request", 405: "Method not allowed"}.get(code, "Error")
        body = pages.render("error.html", ctx, links, code=code, heading=heading, message=detail)
        return HTMLResponse(body, status_code=code, headers=getattr(exc, "headers", None))

    return Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/instances/{name}", instance, methods=["GET", "HEAD"]),
            Route("/api/v1/status", api_status, methods=["GET", "HEAD"]),
            Route("/api/v1/instances/{name}/history", api_history, methods=["GET", "HEAD"]),
            Route(openapi.PATH, api_contract, methods=["GET", "HEAD"]),
            Route("/badge/{name}/{kind}.{fmt}", badge, methods=["GET", "HEAD"]),
            Route("/feed.atom", feed_atom, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_route, methods=["GET", "HEAD"]),
            Route("/logo", logo, methods=["GET", "HEAD"]),
            Route("/live", live, methods=["GET", "HEAD"]),
            Route("/ready", ready, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
        ],
        middleware=[
            Middleware(ForwardedFor, trusted=lambda: monitor.settings.web.trusted_proxies),
            Middleware(SecurityHeaders),
            Middleware(RequestLimits),
            Middleware(
                BasicAuthGate,
                settings=lambda: monitor.settings.web.basic_auth,
                realm=lambda: monitor.settings.web.title,
            ),
        ],
        exception_handlers={HTTPException: error},
    )

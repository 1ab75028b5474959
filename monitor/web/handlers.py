"""The request handlers: each maps a request onto the status context, a badge, the feed or /metrics.

Handlers are `async def` on purpose: they run on the event loop's thread, which owns the
SQLite connection. The monitor's own /live and /ready stay cheap and open, for Docker's
HEALTHCHECK and Kubernetes probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response

from monitor.checks import SPECS, artifacts_dir, browser_files
from monitor.scheduler import Monitor
from monitor.web import badges, context, feed, metrics, openapi, render
from monitor.web.cache import PageCache
from monitor.web.source import Source

HEALTH_JSON = "application/health+json"
NO_CACHE = {"Cache-Control": "no-cache"}
BADGE_CACHE = {"Cache-Control": "max-age=60, s-maxage=60", "Access-Control-Allow-Origin": "*"}
ERROR_HEADINGS = {404: "Not found", 400: "Bad request", 405: "Method not allowed"}


class Handlers:
    """One running monitor's handlers, sharing its page cache and its metrics registry."""

    def __init__(
        self, monitor: Monitor, scrape: metrics.MonitorMetrics | None = None, cache: PageCache | None = None
    ) -> None:
        """`scrape` and `cache` as monitor/runtime.py builds them; without them (a test's app) a
        cache of its own, and metrics that report its page builds."""
        self.monitor = monitor
        self.cache = cache if cache is not None else PageCache(monitor)
        self.scrape = scrape if scrape is not None else metrics.MonitorMetrics(monitor, [self.cache])

    # --- what several handlers share ---------------------------------------------------------

    def _source(self) -> Source:
        return Source.of(self.monitor)

    def _window(self, request: Request) -> str:
        try:
            return context.parse_window(
                request.query_params.get("window"), self.monitor.settings.web.default_window
            )
        except context.WindowError as exc:
            raise HTTPException(400, str(exc)) from None

    def _known(self, name: str) -> str:
        if self.monitor.settings.instance(name) is None:
            raise HTTPException(404, f"there is no instance named '{name[:64]}'")
        return name

    def _page_headers(self, request: Request) -> dict[str, str]:
        refresh = context.refresh_seconds(self.monitor.settings)
        off = request.query_params.get("refresh") == "0"
        return {**NO_CACHE, **({"Refresh": str(refresh)} if refresh and not off else {})}

    async def _html(
        self,
        request: Request,
        template: str,
        window: str,
        instance: str | None = None,
        extra: dict[str, Any] | None = None,
        **links: Any,
    ) -> HTMLResponse:
        """A page from the cache, built from the context of `window` (and `instance`) when stale."""
        refresh_off = request.query_params.get("refresh") == "0"

        def build(src: Source) -> str:
            ctx = context.page_context(src, window=window, instance=instance)
            page_links = render.links_for(src.settings, ctx["window"], refresh_off=refresh_off, **links)
            return render.render(template, ctx, page_links, **(extra or {}))

        body = await self.cache.get((template, window, instance, refresh_off), build)
        return HTMLResponse(body, headers=self._page_headers(request))

    # --- the pages and the API ---------------------------------------------------------------

    async def index(self, request: Request) -> HTMLResponse:
        return await self._html(request, "index.html", self._window(request))

    async def instance(self, request: Request) -> HTMLResponse:
        name = self._known(request.path_params["name"])
        window = self._window(request)
        shots = {n: f"{name}/screenshots/{n}" for n, _ in browser_files.listed(self._screenshots(), name)}
        extra = {"shots": shots, "shot_name": browser_files.screenshot_name}
        return await self._html(request, "instance.html", window, name, extra, root="../", instance_page=name)

    def _screenshots(self) -> Path | None:
        return artifacts_dir(self.monitor.settings.storage.path)

    async def screenshot(self, request: Request) -> Response:
        """A failed browser journey's screenshot, behind the same basic auth as the instance page."""
        name = self._known(request.path_params["name"])
        path = browser_files.find(self._screenshots(), name, request.path_params["file"])
        if path is None:
            raise HTTPException(404, "no such screenshot: only the latest failures' are kept")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    async def api_status(self, request: Request) -> Response:
        win = self._window(request)
        body = await self.cache.get(
            ("api", win), lambda src: JSONResponse(context.page_context(src, window=win)).body
        )
        return Response(body, media_type="application/json", headers=NO_CACHE)

    async def api_history(self, request: Request) -> JSONResponse:
        name = self._known(request.path_params["name"])
        check = request.query_params.get("check") or None
        # a check type the instance does not run (now) has an empty history, or the one it ran before
        if check is not None and check not in SPECS:
            raise HTTPException(400, f"check must be one of {', '.join(SPECS)}, not '{check[:20]}'")
        body = context.history(self._source(), name, check, self._window(request))
        return JSONResponse(body, headers=NO_CACHE)

    async def api_contract(self, request: Request) -> JSONResponse:
        return JSONResponse(openapi.document(), headers=NO_CACHE)

    # --- badges, feed, metrics, logo ---------------------------------------------------------

    async def badge(self, request: Request) -> Response:
        name, kind, fmt = request.path_params["name"], request.path_params["kind"], request.path_params["fmt"]
        if fmt == "json" and kind == "shields":
            kind = request.query_params.get("type", "status")
        elif fmt != "svg":
            raise HTTPException(
                404, "badges are /badge/{instance}/{status,uptime,latency}.svg or shields.json"
            )
        try:
            data = badges.badge(
                self._source(),
                name,
                kind,
                request.query_params.get("window"),
                label=request.query_params.get("label"),
            )
        except (badges.BadgeError, context.WindowError) as exc:
            raise HTTPException(400, str(exc)) from None
        code = 200 if data is not None else 404
        data = data or badges.not_found(name)
        if fmt == "json":
            return JSONResponse(badges.shields_json(data), status_code=code, headers=BADGE_CACHE)
        svg = badges.render_svg(data)
        return Response(svg, status_code=code, media_type="image/svg+xml", headers=BADGE_CACHE)

    async def feed_atom(self, request: Request) -> Response:
        body = feed.render_feed(self._source())  # absolute links only from web.base_url
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=NO_CACHE)

    async def metrics(self, request: Request) -> Response:
        body, content_type = self.scrape.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type, headers=NO_CACHE)

    async def logo(self, request: Request) -> Response:
        path: Path | None = self.monitor.settings.web.logo
        media = render.LOGO_TYPES.get(path.suffix.lower()) if path else None
        if path is None or media is None or not path.is_file():
            raise HTTPException(404, "no logo is configured")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    # --- the monitor's own health ------------------------------------------------------------

    async def live(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    async def ready(self, request: Request) -> JSONResponse:
        """Health Check Response Format (draft RFC): the database writable, the scheduler running."""
        database, scheduler = self._database_check(), self._scheduler_check()
        checks = {"database:writable": [database], "scheduler:recent-run": [scheduler]}
        failing = [c["componentName"] for c in (database, scheduler) if c["status"] == "fail"]
        body: dict[str, Any] = {"status": "fail" if failing else "pass", "checks": checks}
        if failing:
            body["output"] = f"failing: {', '.join(failing)}"
        return JSONResponse(body, status_code=503 if failing else 200, media_type=HEALTH_JSON)

    def _database_check(self) -> dict[str, str]:
        store = self.monitor.store
        if store is not None and store.healthy:
            return {"componentName": "database", "status": "pass"}
        output = (store.writer.last_error if store else "no database") or "not writable"
        return {"componentName": "database", "status": "fail", "output": output}

    def _scheduler_check(self) -> dict[str, str]:
        fresh = self.monitor.scheduler_fresh()
        return {"componentName": "scheduler", "status": "pass" if fresh else "fail"}

    # --- errors ------------------------------------------------------------------------------

    async def error(self, request: Request, exc: Exception) -> Response:
        """JSON for the API and for clients that do not ask for HTML; else the error page."""
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        headers = getattr(exc, "headers", None)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"error": detail}, status_code=code, headers=headers)
        web = self.monitor.settings.web
        ctx: dict[str, Any] = {"title": web.title, "window": web.default_window}
        ctx |= {"generated_at": None, "refresh": 0, "description": "", "notice": ""}
        depth = request.url.path.count("/") - 1
        links = render.links_for(self.monitor.settings, ctx["window"], root="../" * depth)
        heading = ERROR_HEADINGS.get(code, "Error")
        body = render.render("error.html", ctx, links, code=code, heading=heading, message=detail)
        return HTMLResponse(body, status_code=code, headers=headers)

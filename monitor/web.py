"""Routes only. The monitor's own /live and /ready (the status page joins them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from monitor.scheduler import Monitor

HEALTH_JSON = "application/health+json"


def create_app(monitor: Monitor) -> Starlette:
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

    return Starlette(
        routes=[
            Route("/live", live, methods=["GET", "HEAD"]),
            Route("/ready", ready, methods=["GET", "HEAD"]),
        ]
    )

"""The live and ready checks, and how to tell a health endpoint from the 2FAuth web page.

Upstream 2FAuth has only /up and answers /live and /ready with its web app and 200; `auto`
tries /live and /ready first and falls back to /up and to readiness through the API.
"""

from __future__ import annotations

import re
import time
from typing import Any

from monitor import sanitize
from monitor.checks import release
from monitor.checks.http import (
    CheckFailure,
    Fetched,
    InstanceContext,
    classify_status,
    fetch,
    is_invalid,
)
from monitor.models import Kind, Result, Status, Step

REDISCOVER_AFTER = 3600.0  # seconds; re-probe /live and /ready in auto mode

_VERSION = re.compile(r"""appVersion['"]?\s*[:=]\s*['"]v?(\d+\.\d+[^'"\s<]*)['"]""")
_UP_PAGE = re.compile(r"HTTP request received|<h1[^>]*>[^<]{0,80}\bup\s*</h1>", re.IGNORECASE)
_SPA = re.compile(r"appVersion|<div id=\"app\"|2fauth", re.IGNORECASE)

PASS, WARN, FAIL = "pass", "warn", "fail"
_NORMAL = {
    **dict.fromkeys(("pass", "ok", "up", "healthy", "true", "green"), PASS),
    **dict.fromkeys(("warn", "warning", "degraded", "yellow"), WARN),
    **dict.fromkeys(
        ("fail", "failed", "failure", "crashed", "down", "error", "unhealthy", "false", "red"), FAIL
    ),
}


def page_kind(fetched: Fetched) -> str:
    """'json', 'up_page' (Laravel's /up), 'spa' (the 2FAuth web app), 'html' or 'text'."""
    ctype = fetched.content_type
    head = fetched.body[:64].lstrip()
    if "json" in ctype or head[:1] in (b"{", b"["):
        return "json"
    text = fetched.text[:20000]
    if _UP_PAGE.search(text) and "appVersion" not in text:
        return "up_page"
    if "html" in ctype or head[:1] == b"<":
        return "spa" if _SPA.search(text) else "html"
    return "text"


def extract_version(fetched: Fetched) -> str | None:
    match = _VERSION.search(fetched.text[:50000])
    return sanitize.version(match.group(1)) if match else None


def normalise(value: Any) -> str | None:
    if isinstance(value, bool):
        return PASS if value else FAIL
    return _NORMAL.get(str(value).strip().lower()) if value is not None else None


def parse_health(data: Any) -> tuple[str | None, dict[str, str]]:
    """Overall status and per-component statuses from IETF health JSON or a list of named checks."""
    components: dict[str, str] = {}

    def add(name: Any, status: Any) -> None:
        state = normalise(status)
        if name and state:
            key = str(name)[:60]
            worse = max(components.get(key, PASS), state, key=[PASS, WARN, FAIL].index)
            components[key] = worse

    overall = None
    entries: list[Any] = []
    if isinstance(data, dict):
        overall = normalise(data.get("status"))
        checks = data.get("checks")
        if isinstance(checks, dict):  # IETF: {"component:measure": [{...}]}
            for key, items in checks.items():
                for item in items if isinstance(items, list) else [items]:
                    if isinstance(item, dict):
                        add(item.get("componentName") or str(key).split(":")[0], item.get("status"))
                    else:
                        add(str(key).split(":")[0], item)
        elif isinstance(checks, list):
            entries = checks
        if isinstance(data.get("checkResults"), list):  # spatie/laravel-health
            entries = data["checkResults"]
    elif isinstance(data, list):
        entries = data
    for item in entries:
        if isinstance(item, dict):
            add(item.get("label") or item.get("name") or item.get("componentName"), item.get("status"))
    if overall is None and components:
        overall = max(components.values(), key=[PASS, WARN, FAIL].index)
    return overall, components


def _result(ctx: InstanceContext, check: str, steps: list[Step], started: float, wall: float) -> Result:
    return Result(
        instance=ctx.inst.name,
        check=check,
        status=Status.UP,
        steps=steps,
        started_at=wall,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        version=ctx.version,
    )


def evaluate_health(fetched: Fetched, check: str) -> tuple[Status, Kind | None, str, dict[str, str]]:
    """What a health endpoint's answer means. Raises CheckFailure for non-health answers."""
    what = f"GET {fetched.path}"
    kind = page_kind(fetched)
    if kind == "spa":
        raise CheckFailure(
            Kind.NOT_A_HEALTH_ENDPOINT,
            f"{what} answered {fetched.status} with the 2FAuth web page, not a health status: upstream 2FAuth "
            f"has no {fetched.path}; use path: /up for liveness, or path: auto",
            http_status=fetched.status,
        )
    if kind == "json":
        data = fetched.json()
        if is_invalid(data):
            raise CheckFailure(
                Kind.BAD_RESPONSE, f"{what}: the body is not valid JSON", http_status=fetched.status
            )
        overall, components = parse_health(data)
        if overall is not None:
            failing = sorted(n for n, s in components.items() if s == FAIL)
            warning = sorted(n for n, s in components.items() if s == WARN)
            if overall == FAIL or (fetched.status >= 500 and overall != WARN):
                names = f": {', '.join(failing)} failing" if failing else ""
                return Status.DOWN, Kind.NOT_READY, f"{what} reports fail{names}", components
            if overall == WARN:
                names = f": {', '.join(warning or failing)}" if (warning or failing) else ""
                return Status.DEGRADED, Kind.NOT_READY, f"{what} reports warn{names}", components
            if fetched.status >= 300:
                failure = classify_status(fetched, what)
                assert failure is not None
                raise failure
            return Status.UP, None, f"{what}: pass", components
    failure = classify_status(fetched, what)
    if failure:
        raise failure
    return Status.UP, None, f"{what}: {fetched.status}", {}


def _conclusive(fetched: Fetched) -> bool:
    """A health endpoint answered (not a web page, not a bare error page)."""
    kind = page_kind(fetched)
    if kind == "json":
        return parse_health(fetched.json())[0] is not None
    return kind in ("text", "up_page") and 200 <= fetched.status < 300


async def _probe_design_endpoint(ctx: InstanceContext, steps: list[Step], path: str) -> Fetched | None:
    """GET /live or /ready; None when it is the web app's catch-all (upstream 2FAuth)."""
    fetched = await fetch(ctx, steps, f"probe {path}", "GET", path)
    if page_kind(fetched) == "spa" and fetched.status == 200:
        ctx.version = extract_version(fetched) or ctx.version
        ctx.discovered_at = time.time()
        return None
    if _conclusive(fetched):
        ctx.discovered_at = time.time()
    return fetched


async def _read_version(ctx: InstanceContext, steps: list[Step]) -> None:
    """Read the 2FAuth version from its web page, once (the design's /live never shows the page)."""
    if time.time() < ctx.version_tried_at + REDISCOVER_AFTER:
        return
    ctx.version_tried_at = time.time()
    try:
        page = await fetch(ctx, steps, "version", "GET", "/")
    except CheckFailure:
        return  # the version is a nicety: its failure never fails the live check
    if page_kind(page) == "spa":
        ctx.version = extract_version(page)


def _fallback_fresh(ctx: InstanceContext, mode: str | None, fallback: str) -> bool:
    return mode == fallback and time.time() - ctx.discovered_at <= REDISCOVER_AFTER


async def run_live(ctx: InstanceContext, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    cfg = ctx.inst.checks.live
    note = ""
    if cfg.path != "auto":
        fetched = await fetch(ctx, steps, "live", "GET", cfg.path)
    elif _fallback_fresh(ctx, ctx.live_path, "/up"):
        fetched = await fetch(ctx, steps, "live", "GET", "/up")
    else:
        probed = await _probe_design_endpoint(ctx, steps, "/live")
        ctx.live_path = "/live" if probed is not None else "/up"
        fetched = probed or await fetch(ctx, steps, "live", "GET", "/up")
    if cfg.path == "auto" and ctx.live_path == "/up":
        note = " (upstream 2FAuth: /live is the web page, so /up is used)"
    if page_kind(fetched) == "spa":
        ctx.version = extract_version(fetched) or ctx.version
    status, kind, message, components = evaluate_health(fetched, "live")
    result = _result(ctx, "live", steps, started, wall)  # latency without the version read below
    if status == Status.UP and ctx.version is None:
        await _read_version(ctx, steps)
        result.version = ctx.version
    result.status, result.kind, result.message = status, kind, message + note
    result.http_status, result.path, result.components = fetched.status, fetched.path, components
    result.cert_days = fetched.cert_days
    return result


async def run_ready(ctx: InstanceContext, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    cfg = ctx.inst.checks.ready
    if cfg.path != "auto":
        fetched = await fetch(ctx, steps, "ready", "GET", cfg.path)
    elif _fallback_fresh(ctx, ctx.ready_mode, "api"):
        return await _ready_through_api(ctx, steps, started, wall)
    else:
        probed = await _probe_design_endpoint(ctx, steps, "/ready")
        if probed is None:
            ctx.ready_mode = "api"
            return await _ready_through_api(ctx, steps, started, wall)
        ctx.ready_mode = "endpoint"
        fetched = probed
    status, kind, message, components = evaluate_health(fetched, "ready")
    result = _result(ctx, "ready", steps, started, wall)
    result.status, result.kind, result.message = status, kind, message
    result.http_status, result.path, result.components = fetched.status, fetched.path, components
    result.cert_days = fetched.cert_days
    return result


async def _ready_through_api(ctx: InstanceContext, steps: list[Step], started: float, wall: float) -> Result:
    path = "/api/v1/twofaccounts/count"
    if not ctx.token:
        raise CheckFailure(
            Kind.CONFIG,
            "upstream 2FAuth has no /ready and no token is set, so readiness cannot be checked: set a token "
            "(readiness then comes from the API) or set checks.ready.enabled: false",
            status=Status.DEGRADED,
        )
    fetched = await fetch(ctx, steps, "ready (API)", "GET", path, auth=True)
    failure = classify_status(fetched, f"GET {path}")
    if failure:
        if failure.kind == Kind.SERVER_ERROR:
            failure.message += " while the web server answers: the database or the OAuth keys are broken"
        raise failure
    data = fetched.json()
    # {"count": N} in 2FAuth v5 and v6, {"owned", "shared", "total"} from v7
    field = next((f for f in ("total", "count") if isinstance(data, dict) and _is_count(data.get(f))), None)
    if field is None:
        raise CheckFailure(
            Kind.BAD_RESPONSE,
            f"GET {path}: expected JSON with a count (2FAuth v5, v6) or a total (v7 and later)",
            http_status=fetched.status,
        )
    release.note_readiness(ctx, field)
    await release.probe_unknown_api_path(ctx, steps)
    result = _result(ctx, "ready", steps, started, wall)
    result.message = (
        "the API reads the database (upstream 2FAuth has no /ready, so readiness comes from the API)"
    )
    result.http_status, result.path, result.cert_days = fetched.status, path, fetched.cert_days
    result.components = {"database": PASS}
    return result


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

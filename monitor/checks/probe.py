"""What the live and ready checks share: their settings, and how to tell a health endpoint from
the 2FAuth web page.

Upstream 2FAuth has only /up and answers /live and /ready with its web app and 200; `auto`
tries /live and /ready first and falls back to /up and to readiness through the API.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import field_validator

from monitor import sanitize
from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, Fetched, classify_status, fetch, is_invalid
from monitor.checks.spec import CheckSettings
from monitor.models import Kind, Result, Status, Step, default_status

REDISCOVER_AFTER = 3600.0  # seconds; re-probe /live and /ready in auto mode

_VERSION = re.compile(r"""appVersion['"]?\s*[:=]\s*['"]v?(\d+\.\d+[^'"\s<]*)['"]""")
_UP_PAGE = re.compile(r"HTTP request received|<h1[^>]*>[^<]{0,80}\bup\s*</h1>", re.IGNORECASE)
_SPA = re.compile(r"appVersion|<div id=\"app\"|2fauth", re.IGNORECASE)


class ProbeCheck(CheckSettings):
    """A live or ready check: `auto` finds the endpoint, any other value is a path."""

    path: str = "auto"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value != "auto" and not value.startswith("/"):
            raise ValueError("use auto or a path starting with /, such as /live or /up")
        return value


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


def up_result(ctx: InstanceContext, check: str, steps: list[Step], started: float, wall: float) -> Result:
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
                return (
                    default_status(Kind.NOT_READY),
                    Kind.NOT_READY,
                    f"{what} reports fail{names}",
                    components,
                )
            if overall == WARN:
                names = f": {', '.join(warning or failing)}" if (warning or failing) else ""
                warned = default_status(Kind.NOT_READY, warn=True)
                return warned, Kind.NOT_READY, f"{what} reports warn{names}", components
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


async def probe_design_endpoint(ctx: InstanceContext, steps: list[Step], path: str) -> Fetched | None:
    """GET /live or /ready; None when it is the web app's catch-all (upstream 2FAuth)."""
    fetched = await fetch(ctx, steps, f"probe {path}", "GET", path)
    if page_kind(fetched) == "spa" and fetched.status == 200:
        ctx.version = extract_version(fetched) or ctx.version
        ctx.discovered_at = time.time()
        return None
    if _conclusive(fetched):
        ctx.discovered_at = time.time()
    return fetched


async def read_version(ctx: InstanceContext, steps: list[Step]) -> None:
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


def fallback_fresh(ctx: InstanceContext, mode: str | None, fallback: str) -> bool:
    return mode == fallback and time.time() - ctx.discovered_at <= REDISCOVER_AFTER

"""The ready check: are the app, database and cache ready? `auto` tries the design's /ready; on
upstream 2FAuth (no /ready) readiness comes from an API read of the database, which needs a token."""

from __future__ import annotations

import time
from typing import Any

from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, classify_status, fetch
from monitor.checks.probe import (
    PASS,
    ProbeCheck,
    evaluate_health,
    fallback_fresh,
    probe_design_endpoint,
    up_result,
)
from monitor.checks.release import note_readiness, probe_unknown_api_path
from monitor.checks.spec import CheckSpec
from monitor.models import Kind, Result, Step


class ReadyCheck(ProbeCheck):
    def api_requests_per_run(self) -> float:
        return 1.0 if self.path == "auto" else 0.0  # upstream 2FAuth: readiness through the API


async def run_ready(ctx: InstanceContext, cfg: ReadyCheck, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    if cfg.path != "auto":
        fetched = await fetch(ctx, steps, "ready", "GET", cfg.path)
    elif fallback_fresh(ctx, ctx.ready_mode, "api"):
        return await _ready_through_api(ctx, steps, started, wall)
    else:
        probed = await probe_design_endpoint(ctx, steps, "/ready")
        if probed is None:
            ctx.ready_mode = "api"
            return await _ready_through_api(ctx, steps, started, wall)
        ctx.ready_mode = "endpoint"
        fetched = probed
    status, kind, message, components = evaluate_health(fetched, "ready")
    result = up_result(ctx, "ready", steps, started, wall)
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
    note_readiness(ctx, field)
    await probe_unknown_api_path(ctx, steps)
    result = up_result(ctx, "ready", steps, started, wall)
    result.message = (
        "the API reads the database (upstream 2FAuth has no /ready, so readiness comes from the API)"
    )
    result.http_status, result.path, result.cert_days = fetched.status, path, fetched.cert_days
    result.components = {"database": PASS}
    return result


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _through_api(ctx: InstanceContext) -> bool:
    return ctx.ready_mode == "api"


SPEC = CheckSpec(
    name="ready",
    label="Readiness",
    description="app, database and cache ready",
    settings=ReadyCheck,
    runner=run_ready,
    uses_api=_through_api,
    dash="6 4",
    demo_latency_ms=41.0,
)

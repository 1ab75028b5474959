"""The live check: does the web server answer? `auto` tries the design's /live, then upstream's /up."""

from __future__ import annotations

import time

from monitor.checks.context import InstanceContext
from monitor.checks.http import fetch
from monitor.checks.probe import (
    ProbeCheck,
    evaluate_health,
    extract_version,
    fallback_fresh,
    page_kind,
    probe_design_endpoint,
    read_version,
    up_result,
)
from monitor.checks.spec import CheckSpec
from monitor.models import Result, Status, Step


async def run_live(ctx: InstanceContext, cfg: ProbeCheck, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    note = ""
    if cfg.path != "auto":
        fetched = await fetch(ctx, steps, "live", "GET", cfg.path)
    elif fallback_fresh(ctx, ctx.live_path, "/up"):
        fetched = await fetch(ctx, steps, "live", "GET", "/up")
    else:
        probed = await probe_design_endpoint(ctx, steps, "/live")
        ctx.live_path = "/live" if probed is not None else "/up"
        fetched = probed or await fetch(ctx, steps, "live", "GET", "/up")
    if cfg.path == "auto" and ctx.live_path == "/up":
        note = " (upstream 2FAuth: /live is the web page, so /up is used)"
    if page_kind(fetched) == "spa":
        ctx.version = extract_version(fetched) or ctx.version
    status, kind, message, components = evaluate_health(fetched, "live")
    result = up_result(ctx, "live", steps, started, wall)  # latency without the version read below
    if status == Status.UP and ctx.version is None:
        await read_version(ctx, steps)
        result.version = ctx.version
    result.status, result.kind, result.message = status, kind, message + note
    result.http_status, result.path, result.components = fetched.status, fetched.path, components
    result.cert_days = fetched.cert_days
    return result


SPEC = CheckSpec(
    name="live",
    label="Web server",
    description="answers HTTP",
    settings=ProbeCheck,
    runner=run_live,
    dash="",
    demo_latency_ms=24.0,
)

"""Check runners: one signature, a name -> runner dict, and one wrapper that turns every outcome,
including timeouts and our own bugs, into a Result. A check never raises."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from monitor.checks import release
from monitor.checks.http import CheckFailure, InstanceContext, make_context
from monitor.checks.probe import run_live, run_ready
from monitor.checks.totp import run_totp
from monitor.models import Kind, Result, Status, Step
from monitor.sanitize import bound_result
from monitor.secrets import redact

__all__ = ["RUNNERS", "InstanceContext", "make_context", "run_check"]

log = logging.getLogger("monitor.checks")

Runner = Callable[[InstanceContext, list[Step]], Awaitable[Result]]
RUNNERS: dict[str, Runner] = {"live": run_live, "ready": run_ready, "totp": run_totp}
API_CHECKS = {"totp"}  # checks that spend the 2FAuth API rate limit (ready may, in API mode)


def _cert_owner(ctx: InstanceContext) -> str | None:
    """The one check that reports certificate expiry, so one certificate makes one alert."""
    enabled = ctx.inst.enabled_checks()
    return enabled[0] if enabled else None


async def run_check(ctx: InstanceContext, check: str) -> Result:
    """Run one check within the instance's timeout; always returns a Result."""
    wall, started = time.time(), time.perf_counter()
    now = time.time()
    if ctx.rate_limited_until > now and (
        check in API_CHECKS or (check == "ready" and ctx.ready_mode == "api")
    ):
        return Result(
            ctx.inst.name,
            check,
            Status.DEGRADED,
            Kind.RATE_LIMITED,
            f"skipped: 2FAuth asked to wait {ctx.rate_limited_until - now:.0f}s more (Retry-After)",
            started_at=wall,
            retry_after=ctx.rate_limited_until - now,
        )
    steps: list[Step] = []
    try:
        async with asyncio.timeout(ctx.inst.timeout):
            result = await RUNNERS[check](ctx, steps)
    except CheckFailure as exc:
        result = Result(
            ctx.inst.name,
            check,
            exc.status,
            exc.kind,
            exc.message,
            http_status=exc.http_status,
            started_at=wall,
            retry_after=exc.retry_after,
        )
        if exc.retry_after:
            ctx.rate_limited_until = time.time() + exc.retry_after
    except TimeoutError:
        result = Result(
            ctx.inst.name,
            check,
            Status.DOWN,
            Kind.TIMEOUT,
            f"no complete answer within {ctx.inst.timeout:g}s",
            started_at=wall,
        )
    except Exception as exc:  # a bug of ours or an answer nobody foresaw: report it, never crash
        log.exception("check %s/%s failed unexpectedly", ctx.inst.name, check)
        result = Result(
            ctx.inst.name,
            check,
            Status.DOWN,
            Kind.BAD_RESPONSE,
            redact(f"unexpected answer: {type(exc).__name__}: {exc}")[:300],
            started_at=wall,
        )
    if result.latency_ms is None:
        result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    result.steps = steps
    result.version = result.version or ctx.version
    result.release = result.release or release.describe(ctx)
    if result.path is None and result.steps:
        result.path = result.steps[-1].path
    _apply_cert_expiry(ctx, check, result)
    return bound_result(result)


def _apply_cert_expiry(ctx: InstanceContext, check: str, result: Result) -> None:
    if result.cert_days is None or _cert_owner(ctx) != check or result.status != Status.UP:
        return
    limit_days = ctx.inst.cert_expiry_warning / 86400
    if result.cert_days < limit_days:
        result.status, result.kind = Status.DEGRADED, Kind.CERT_EXPIRY
        result.message = f"the TLS certificate expires in {result.cert_days:.1f} days; renew it"

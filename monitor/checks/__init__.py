"""The check types, one spec each (monitor/checks/spec.py), and one wrapper that turns every outcome,
including timeouts and our own bugs, into a Result. A check never raises.

A new check type is one module beside live.py, ready.py and totp.py, and one line in SPECS."""

from __future__ import annotations

import asyncio
import logging
import time

from monitor.checks import browser, live, ready, totp
from monitor.checks.context import Clients, InstanceContext, InstanceSettings, artifacts_dir, make_context
from monitor.checks.http import CheckFailure, with_release_hint
from monitor.checks.neterrors import host_port
from monitor.checks.release import describe as describe_release
from monitor.checks.spec import CheckSettings, CheckSpec
from monitor.models import Kind, Result, Status, Step, default_status
from monitor.sanitize import bound_result
from monitor.secrets import redact

__all__ = [
    "SPECS",
    "CheckSettings",
    "CheckSpec",
    "Clients",
    "InstanceContext",
    "InstanceSettings",
    "artifacts_dir",
    "make_context",
    "run_check",
]

log = logging.getLogger("monitor.checks")

# Every check type, in the order the page shows them and an instance runs them.
SPECS: dict[str, CheckSpec] = {s.name: s for s in (live.SPEC, ready.SPEC, totp.SPEC, browser.SPEC)}


def _cert_owner(ctx: InstanceContext) -> str | None:
    """The one check that reports certificate expiry, so one certificate makes one alert."""
    enabled = ctx.inst.enabled_checks()
    return enabled[0] if enabled else None


async def run_check(ctx: InstanceContext, check: str) -> Result:
    """Run one check within its timeout (the instance's, unless the check has its own); always
    returns a Result."""
    wall, started = time.time(), time.perf_counter()
    now = time.time()
    spec = SPECS[check]
    if ctx.rate_limited_until > now and spec.uses_api(ctx):
        return Result(
            ctx.inst.name,
            check,
            default_status(Kind.RATE_LIMITED),
            Kind.RATE_LIMITED,
            f"skipped: 2FAuth asked to wait {ctx.rate_limited_until - now:.0f}s more (Retry-After)",
            started_at=wall,
            retry_after=ctx.rate_limited_until - now,
        )
    steps: list[Step] = []
    cfg = ctx.inst.check_settings(check)
    limit = cfg.check_timeout() or ctx.inst.timeout
    try:
        async with asyncio.timeout(limit):
            result = await spec.runner(ctx, cfg, steps)
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
            default_status(Kind.TIMEOUT),
            Kind.TIMEOUT,
            f"no complete answer from {host_port(ctx.inst.url)} within {limit:g}s",
            started_at=wall,
        )
    except Exception as exc:  # a bug of ours or an answer nobody foresaw: report it, never crash
        log.exception("check %s/%s failed unexpectedly", ctx.inst.name, check)
        result = Result(
            ctx.inst.name,
            check,
            default_status(Kind.BAD_RESPONSE),
            Kind.BAD_RESPONSE,
            redact(f"unexpected answer: {type(exc).__name__}: {exc}")[:300],
            started_at=wall,
        )
    return _finish(ctx, check, cfg, result, steps, started)


def _finish(
    ctx: InstanceContext, check: str, cfg: CheckSettings, result: Result, steps: list[Step], started: float
) -> Result:
    """What every result gets after its runner: timing, steps, release, slowness, certificate expiry."""
    if result.latency_ms is None:
        result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    result.steps = steps
    result.version = result.version or ctx.version
    if result.kind == Kind.AUTH and result.http_status == 401:
        result.message = with_release_hint(result.message, result.version)
    result.release = result.release or describe_release(ctx)
    if result.path is None and result.steps:
        result.path = result.steps[-1].path
    _apply_slow(cfg, result)
    _apply_cert_expiry(ctx, check, result)
    return bound_result(result)


def _apply_slow(cfg: CheckSettings, result: Result) -> None:
    """An up result that took longer than the check's slow_after is degraded/slow."""
    limit = cfg.slow_threshold()
    if result.status != Status.UP or not limit or result.latency_ms is None:
        return
    if result.latency_ms <= limit * 1000:
        return
    result.status, result.kind = default_status(Kind.SLOW), Kind.SLOW
    took = f"answered correctly in {result.latency_ms / 1000:.2f}s, slower than slow_after ({limit:g}s)"
    result.message = f"{took}; {result.message}" if result.message else took


def _apply_cert_expiry(ctx: InstanceContext, check: str, result: Result) -> None:
    if result.cert_days is None or _cert_owner(ctx) != check or result.status != Status.UP:
        return
    limit_days = ctx.inst.cert_expiry_warning / 86400
    if result.cert_days < limit_days:
        result.status, result.kind = default_status(Kind.CERT_EXPIRY), Kind.CERT_EXPIRY
        result.message = f"the TLS certificate expires in {result.cert_days:.1f} days; renew it"

"""Plausible past results for the demo, written through the real store (`store.record`), so the
demo page shows months of bars, a chart and a few incidents from the first second.

Every generated message ends with "(simulated)"; the demo also sets `web.notice` to
`monitor.demo.DEMO_NOTICE`, so nobody mistakes the history for a real one.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from monitor.checks import SPECS
from monitor.config import Settings
from monitor.models import DAY, Kind, Result, Status
from monitor.store import Store

BASE_LATENCY_MS = {name: spec.demo_latency_ms for name, spec in SPECS.items()}


@dataclass(frozen=True)
class Episode:
    """A stretch of trouble: which checks, how they fail, and why."""

    days_ago: float
    minutes: float
    checks: tuple[str, ...]
    status: Status
    kind: Kind
    message: str
    maintenance: bool = False


def episodes(rng: random.Random, days: int) -> list[Episode]:
    """A few incidents of the kinds 2FAuth self-hosters meet, at places that vary per instance."""
    every = tuple(SPECS)
    found = [
        Episode(
            rng.uniform(9, 14),
            rng.choice((35, 50, 80)),
            every,
            Status.DOWN,
            Kind.CONNECT,
            "cannot connect: connection refused (the container was restarting)",
        ),
        Episode(
            rng.uniform(28, 36),
            rng.choice((180, 360)),
            ("totp",),
            Status.DEGRADED,
            Kind.CLOCK_SKEW,
            "the server clock is off by +47s (more than 15s): its codes are valid at the wrong time; "
            "fix NTP on the 2FAuth host",
        ),
        # planned work: runs count as maintenance, neither up nor down, and open no incident
        Episode(rng.uniform(18, 24), 45, every, Status.UP, Kind.MAINTENANCE, "", maintenance=True),
        Episode(
            rng.uniform(55, 70),
            rng.choice((20, 30)),
            ("ready", "totp"),
            Status.DOWN,
            Kind.SERVER_ERROR,
            "GET /api/v1/user answered 500: the database is unreachable",
        ),
        Episode(rng.uniform(1, 3), 10, ("totp",), Status.DOWN, Kind.TIMEOUT, "no complete answer within 10s"),
    ]
    return [e for e in found if e.days_ago < days]


def _latency(rng: random.Random, check: str, at: float, factor: float) -> float:
    hour = (at % DAY) / 3600
    daytime = 1 + 0.25 * math.sin((hour - 8) / 24 * 2 * math.pi)  # busier in the afternoon
    return round(BASE_LATENCY_MS[check] * factor * daytime * rng.lognormvariate(0, 0.18), 1)


def seed_history(
    store: Store,
    settings: Settings,
    days: int = 90,
    now: float | None = None,
    *,
    step: float = 1800.0,
    recent_step: float = 300.0,
) -> int:
    """Write `days` of past results for every configured check, ending a minute ago; returns the count.

    One result per `step` seconds (finer, `recent_step`, over the last two days) keeps the demo's
    start quick while the rollups, bars and chart look like a monitor that has run all along.
    """
    now = time.time() if now is None else now
    end, start = now - 60, now - days * DAY
    written = 0
    for inst in settings.instances:
        rng = random.Random(f"demo-history:{inst.name}")
        factor = rng.uniform(0.8, 1.6)
        trouble = episodes(rng, days)
        for check in inst.enabled_checks():
            at = start + rng.uniform(0, step)
            while at < end:
                result, maintenance = _result(inst.name, check, at, now, trouble, rng, factor)
                store.record(result, maintenance=maintenance)
                written += 1
                if written % 5000 == 0:
                    store.flush()
                at += recent_step if end - at < 2 * DAY else step
    store.flush()
    return written


def _result(
    instance: str,
    check: str,
    at: float,
    now: float,
    trouble: list[Episode],
    rng: random.Random,
    factor: float,
) -> tuple[Result, bool]:
    latency = _latency(rng, check, at, factor)
    for episode in trouble:
        began = now - episode.days_ago * DAY
        if check in episode.checks and began <= at < began + episode.minutes * 60:
            if episode.status == Status.UP:
                return Result(
                    instance, check, Status.UP, latency_ms=latency, started_at=at
                ), episode.maintenance
            slow = episode.kind in (Kind.TIMEOUT, Kind.CONNECT)
            return (
                Result(
                    instance,
                    check,
                    episode.status,
                    episode.kind,
                    f"{episode.message} (simulated)",
                    latency_ms=10_000.0 if episode.kind == Kind.TIMEOUT else (3.0 if slow else latency * 1.5),
                    started_at=at,
                    skew_s=47.0 if episode.kind == Kind.CLOCK_SKEW else None,
                ),
                episode.maintenance,
            )
    return Result(instance, check, Status.UP, latency_ms=latency, started_at=at), False
